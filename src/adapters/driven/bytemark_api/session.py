"""The one aiohttp session every Bytemark call goes through, configured for many short calls."""

from __future__ import annotations

import aiohttp


def bytemark_session(max_connections: int) -> aiohttp.ClientSession:
    """Pooled keep-alive connections (`max_connections` at most), no cookie jar and no aiohttp
    timer per request:

    - Bytemark authenticates by bearer token; a jar would only cost a filter and an update per
      request, and could carry one rider's cookie into another rider's request;
    - every attempt is already bounded by the client's own timeout (which excludes our loop's
      lateness), so aiohttp's default 5-minute timer would only add a timer handle per request.
    """
    connector = aiohttp.TCPConnector(limit=max_connections)
    return aiohttp.ClientSession(
        connector=connector,
        raise_for_status=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
    )
