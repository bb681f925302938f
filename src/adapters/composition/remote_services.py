"""The services the application calls over the network: the Bytemark APIs and Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from dependency_injector import containers, providers
from slack_sdk.web.async_client import AsyncWebClient

from adapters.composition.settings import Settings
from adapters.driven.bytemark_api.client import BytemarkClient
from adapters.driven.bytemark_api.rate_limit import RateLimiter
from adapters.driven.bytemark_api.retry import RetryPolicy
from adapters.driven.bytemark_api.session import bytemark_session
from adapters.driven.observability.metrics import observe_bytemark_call
from adapters.driven.slack.client import slack_client
from adapters.driven.slack.notifier import NullNotifier, SlackNotifier


async def _http_session(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    # Enough sockets for every bulk worker's two concurrent list fetches.
    session = bytemark_session(max_connections=max(100, settings.bulk_concurrency * 2 + 16))
    try:
        yield session
    finally:
        await session.close()


async def _slack_client(settings: Settings) -> AsyncIterator[AsyncWebClient]:
    assert settings.slack_bot_token is not None
    client = slack_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url, timeout=5)
    try:
        yield client
    finally:
        if client.session is not None:
            await client.session.close()


def _bytemark_client(settings: Settings, session: aiohttp.ClientSession) -> BytemarkClient:
    settings.require("BYTEMARK_CUSTOMER_API_URL", "BYTEMARK_ACCOUNT_API_URL")
    secret = settings.bytemark_client_secret
    return BytemarkClient(
        session,
        str(settings.bytemark_customer_api_url),
        str(settings.bytemark_account_api_url),
        settings.bytemark_client_id or "",
        secret.get_secret_value() if secret else "",
        timeout_seconds=settings.bytemark_timeout_seconds,
        retry_policy=RetryPolicy(max_attempts=settings.bytemark_max_attempts),
        rate_limiter=RateLimiter(settings.bytemark_rate_limit_rps or None),
        on_call=observe_bytemark_call,
    )


def _notifier_backend(settings: Settings) -> str:
    return "slack" if settings.slack_enabled else "none"


class RemoteServices(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    http_session = providers.Resource(_http_session, settings)
    slack_client = providers.Resource(_slack_client, settings)

    bytemark = providers.Singleton(_bytemark_client, settings, http_session)
    notifier = providers.Selector(
        providers.Callable(_notifier_backend, settings),
        slack=providers.Singleton(
            SlackNotifier,
            slack_client,
            settings.provided.slack_channel_id,
            settings.provided.project_name,
            settings.provided.project_stage,
        ),
        none=providers.Singleton(NullNotifier),
    )
