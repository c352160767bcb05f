"""The console's ASGI application, built from the page modules."""

from __future__ import annotations

import importlib

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from mailbot.config import Config
from mailbot.web.body_limit import BodyLimit
from mailbot.web.context import Clock, WebContext, system_clock
from mailbot.web.guard import PageGroup, route
from mailbot.web.headers import SecurityHeaders
from mailbot.web.pages import PAGE_MODULES
from mailbot.web.rendering import environment, web_dir
from mailbot.web.sessions import CookieSigner, load_or_create_key
from mailbot.web.throttle import LoginThrottle


def create_app(
    config: Config, sessions: sessionmaker[Session], clock: Clock = system_clock
) -> Starlette:
    """The console on *config*'s database (*sessions*, schema already checked).

    *clock* gives the current UTC time (tests pin it to expire sessions).
    """
    web = WebContext(
        config=config,
        sessions=sessions,
        signer=CookieSigner(load_or_create_key(config.web_secret_key_file)),
        templates=environment(),
        throttle=LoginThrottle(config.web.login_max_failures, config.web.login_window_minutes * 60),
        clock=clock,
    )
    routes: list[BaseRoute] = []
    for module_name in PAGE_MODULES:
        group = importlib.import_module(module_name).PAGES
        assert isinstance(group, PageGroup), module_name
        routes.extend(route(page, web) for page in group.pages)
    routes.append(Mount("/static", StaticFiles(directory=web_dir() / "static"), name="static"))
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders), Middleware(BodyLimit)])
    app.state.web = web
    return app
