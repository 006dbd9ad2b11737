"""An admin HTTPS session to a test server."""

from __future__ import annotations

import aiohttp

from controlplane.testing.server import ServerHandle


def admin_session(server: ServerHandle) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=server.url, connector=aiohttp.TCPConnector(ssl=server.admin_ssl_context()))
