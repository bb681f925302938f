"""An unreadable stored token (application.errors.TokenDecryptionError) is FAILED_PRECONDITION."""

from __future__ import annotations

import grpc
import pytest

from adapters.driven.storage.crypto import TokenCipher
from adapters.driving.grpc_api.errors import status_for
from application.errors import TokenDecryptionError
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from tests.adapters.driving.grpc_api.conftest import RunningServer


def decryption_error(user_id: int) -> TokenDecryptionError:
    """The real error, raised the real way: a row encrypted under one key, read with another."""
    stored = TokenCipher(bytes(range(32))).encrypt("access-token-value", user_id)
    with pytest.raises(TokenDecryptionError) as raised:
        TokenCipher(bytes(range(100, 132))).decrypt(stored, user_id)
    return raised.value


def test_a_token_that_cannot_be_decrypted_maps_to_failed_precondition_with_its_own_message() -> None:
    code, message = status_for(decryption_error(7))

    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "user 7" in message and "TOKEN_ENCRYPTION_KEY" in message
    assert "access-token-value" not in message


async def test_a_refresh_that_meets_an_undecryptable_token_fails_failed_precondition(
    grpc_server: RunningServer,
) -> None:
    grpc_server.use_cases.failures["check"] = decryption_error(7)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=7))

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot be decrypted" in (raised.value.details() or "")
