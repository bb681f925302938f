"""The tokens file (GRPC_AUTH_TOKENS_FILE): parsing, scopes per method, reloads that keep the
last good set, and GRPC_AUTH_TOKEN as one `operate` token."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from adapters.driving.grpc_api.credentials import (
    CredentialsFile,
    CredentialsFileError,
    Scope,
    parse_credentials,
    required_scope,
)
from tests.adapters.driving.grpc_api.conftest import RunningServer, serve
from tests.adapters.driving.grpc_api.fake_use_cases import FakeUseCases
from tests.adapters.driving.grpc_api.test_security import METHODS, call_method

READER, OPERATOR, NEXT_OPERATOR = "reader-token-1a2b", "operator-token-3c4d", "operator-token-5e6f"
GOOD_FILE = f"""
# dashboards
read {READER}

operate {OPERATOR}
operate {NEXT_OPERATOR}
read san:dashboard.internal
"""


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_each_token_and_certificate_name_grants_its_scope() -> None:
    credentials = parse_credentials(GOOD_FILE)

    assert credentials.granted_scope(bearer(READER)) is Scope.READ
    assert credentials.granted_scope(bearer(OPERATOR)) is Scope.OPERATE
    assert credentials.granted_scope(bearer(NEXT_OPERATOR)) is Scope.OPERATE
    assert credentials.granted_scope(None, ["dashboard.internal"]) is Scope.READ
    assert credentials.granted_scope(bearer(READER), ["unknown.internal"]) is Scope.READ


def test_unknown_tokens_names_and_schemes_grant_nothing() -> None:
    credentials = parse_credentials(GOOD_FILE)

    assert credentials.granted_scope(bearer("guess")) is None
    assert credentials.granted_scope(bearer(READER[:-1])) is None
    assert credentials.granted_scope(f"Basic {READER}") is None
    assert credentials.granted_scope(None) is None
    assert credentials.granted_scope(None, ["other.internal"]) is None
    assert credentials.granted_scope(bearer("san:dashboard.internal")) is None  # a name is no token


def test_a_token_and_a_certificate_name_together_grant_the_higher_scope() -> None:
    credentials = parse_credentials(f"read {READER}\noperate san:ops.internal\n")

    assert credentials.granted_scope(bearer(READER), ["ops.internal"]) is Scope.OPERATE


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"{READER}\n", "line 1: expected `<scope> <token>`"),
        (f"# c\nwrite {READER}\n", "line 2: the scope must be `read` or `operate`"),
        (f"read {READER} extra\n", "line 1: expected"),
        ("read san:\n", "line 1: `san:` needs a certificate name"),
        (f"read {READER}\noperate {READER}\n", "line 2: the same credential is listed under two scopes"),
        ("# only comments\n\n", "no credentials in the file"),
    ],
)
def test_a_bad_line_is_named_by_number_without_echoing_the_token(text: str, problem: str) -> None:
    with pytest.raises(CredentialsFileError) as error:
        parse_credentials(text)

    assert problem in str(error.value)
    assert READER not in str(error.value)


@pytest.mark.parametrize(
    "method", ["GetTicketCache", "GetSyncStatus", "ListSyncStatuses", "WatchChanges", "ServerReflectionInfo"]
)
def test_read_methods_need_only_the_read_scope(method: str) -> None:
    assert required_scope(f"/bytemark.ticketcache.v1.TicketCacheService/{method}") is Scope.READ


@pytest.mark.parametrize(
    "method",
    [
        "BuildTicketCache",
        "CheckTicketCache",
        "UpdateTicketCache",
        "CheckTicketCacheTimeout",
        "BuildCacheIfEmpty",
        "RefreshStaleCaches",
        "PurgeOrphanedCaches",
        "SomeMethodAddedLater",
    ],
)
def test_every_other_method_needs_operate(method: str) -> None:
    assert required_scope(f"/bytemark.ticketcache.v1.TicketCacheService/{method}") is Scope.OPERATE


def test_the_single_auth_token_is_an_operate_token_beside_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"read {READER}\n")
    both = CredentialsFile(path, operate_token="single-token")
    alone = CredentialsFile(None, operate_token="single-token")

    assert both.granted_scope(bearer("single-token")) is Scope.OPERATE
    assert both.granted_scope(bearer(READER)) is Scope.READ
    assert alone.granted_scope(bearer("single-token")) is Scope.OPERATE
    assert alone.granted_scope(bearer(READER)) is None


def test_a_rewritten_file_takes_effect_on_reload(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"operate {OPERATOR}\n")
    credentials = CredentialsFile(path)

    unchanged = credentials.reload()
    path.write_text(f"operate {OPERATOR}\noperate {NEXT_OPERATOR}\n")  # the rotation's overlap
    overlap = credentials.reload()
    overlap_grants = [credentials.granted_scope(bearer(t)) for t in (OPERATOR, NEXT_OPERATOR)]
    path.write_text(f"operate {NEXT_OPERATOR}\n")
    credentials.reload()

    assert unchanged is False and overlap is True
    assert overlap_grants == [Scope.OPERATE, Scope.OPERATE]
    assert credentials.granted_scope(bearer(OPERATOR)) is None
    assert credentials.granted_scope(bearer(NEXT_OPERATOR)) is Scope.OPERATE


def test_a_kubernetes_style_symlink_swap_is_seen(tmp_path: Path) -> None:
    """The kubelet writes a new `..<timestamp>` directory and swaps the `..data` symlink."""
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "tokens").write_text(f"operate {OPERATOR}\n")
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "tokens").symlink_to("..data/tokens")
    credentials = CredentialsFile(tmp_path / "tokens")

    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "tokens").write_text(f"operate {NEXT_OPERATOR}\n")
    (tmp_path / "..data_tmp").symlink_to("v2")
    (tmp_path / "..data_tmp").replace(tmp_path / "..data")

    assert credentials.reload() is True
    assert credentials.granted_scope(bearer(NEXT_OPERATOR)) is Scope.OPERATE
    assert credentials.granted_scope(bearer(OPERATOR)) is None


def test_a_file_that_does_not_parse_keeps_the_last_good_set_and_logs_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"operate {OPERATOR}\n")
    credentials = CredentialsFile(path)

    path.write_text(f"operate {OPERATOR}\nbogus {NEXT_OPERATOR}\n")
    with caplog.at_level(logging.INFO):
        reloaded = credentials.reload()
    path.unlink()
    missing = credentials.reload()

    assert reloaded is False and missing is False
    assert credentials.granted_scope(bearer(OPERATOR)) is Scope.OPERATE
    assert credentials.granted_scope(bearer(NEXT_OPERATOR)) is None
    bad, gone = [r.__dict__["reason"] for r in caplog.records if "not reloaded" in r.getMessage()]
    assert bad.startswith("line 2: the scope must be") and gone == "FileNotFoundError"
    assert all(NEXT_OPERATOR not in str(r.__dict__) for r in caplog.records)


def test_a_file_that_does_not_parse_at_start_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"operate {OPERATOR}\nread\n")

    with pytest.raises(CredentialsFileError, match="line 2"):
        CredentialsFile(path)


def test_the_repr_shows_no_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(GOOD_FILE)

    shown = repr(CredentialsFile(path, operate_token="single-token"))

    assert READER not in shown and OPERATOR not in shown and "single-token" not in shown


# --- the interceptor: a read token on every method of a real in-process server -------------


@pytest.fixture
async def scoped_server(tmp_path: Path, use_cases: FakeUseCases) -> AsyncIterator[RunningServer]:
    path = tmp_path / "tokens"
    path.write_text(GOOD_FILE)
    async for running in serve(use_cases, credentials=CredentialsFile(path)):
        yield running


async def test_a_read_token_is_refused_on_every_operate_method_naming_the_scope(
    scoped_server: RunningServer,
) -> None:
    as_reader = (("authorization", bearer(READER)),)
    answers = {method: await call_method(scoped_server.channel, method, as_reader) for method in METHODS}
    operate_methods = {m for m in METHODS if required_scope(m) is Scope.OPERATE}
    refused = {m for m, code in answers.items() if code is grpc.StatusCode.PERMISSION_DENIED}

    assert len(operate_methods) == 7 and refused == operate_methods
    assert {name for name, _ in scoped_server.use_cases.calls} == {
        "get_cache", "get_sync_status", "list_sync_statuses", "watch_changes"
    }  # fmt: skip


async def test_an_operate_token_reaches_every_handler(scoped_server: RunningServer) -> None:
    denied = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
    for token in (OPERATOR, NEXT_OPERATOR):
        for method in METHODS:
            code = await call_method(scoped_server.channel, method, (("authorization", bearer(token)),))
            assert code not in denied

    assert len(scoped_server.use_cases.calls) == 2 * len(METHODS)
