"""``mailbot web serve``: the console under uvicorn until SIGTERM."""

from __future__ import annotations

import uvicorn

from mailbot.config import Config
from mailbot.directory.session import database
from mailbot.log import get_logger
from mailbot.web.app import create_app

log = get_logger(__name__)


def serve(config: Config) -> None:
    """Serve the console on ``web.listen``; returns when uvicorn stops (SIGTERM, SIGINT)."""
    host, port = config.web.address
    with database(config) as sessions:
        app = create_app(config, sessions)
        log.info("web console listening", listen=config.web.listen)
        uvicorn.run(
            app,
            host=host,
            port=port,
            # X-Forwarded-* is read by mailbot.web.guard, from web.trusted_proxies only.
            proxy_headers=False,
            server_header=False,
            access_log=False,
            log_level="warning",
        )
