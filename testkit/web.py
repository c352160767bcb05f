"""The web console as a real uvicorn server on a free loopback port, and clients logged in to it.

    with web_server(config_path) as server:             # or clock=PinnedClock(...)
        add_web_user(server, "alice", "admin")            # password: PASSWORD
        with server.login("alice") as client:             # an httpx.Client, logged in
            page = client.get("/journal")
            client.post("/logout", data={"csrf_token": csrf_token(page.text)})

Nothing is mocked: HTTP goes over TCP to uvicorn, which runs the application in
a thread of the test process (so a test can pin its clock).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from mailbot.config import Config, load_config
from mailbot.directory.session import database
from mailbot.web.accounts import add_user
from mailbot.web.app import create_app
from mailbot.web.roles import Role
from testkit.ports import free_port

#: The password :func:`add_web_user` gives unless told otherwise.
PASSWORD = "correct horse battery"  # noqa: S105 (a test account's)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class PinnedClock:
    """A clock that stands still until moved (pass it to :func:`web_server`)."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move on by ``timedelta(**delta)``."""
        self.now += dt.timedelta(**delta)


@dataclass
class WebServer:
    """A running console: its configuration, URL, and helpers to log in."""

    config: Config
    base_url: str

    def client(self, **kwargs: object) -> httpx.Client:
        """A client of this server without a session (does not follow redirects)."""
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def login(self, name: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
        """A client logged in as *name* (fails the test when the login does not succeed)."""
        with self.client() as client:
            response = login(client, name, password)
            assert response.status_code == 303, response.text
            yield client


def csrf_token(html: str) -> str:
    """The CSRF token of the first form in a page."""
    found = _CSRF.search(html)
    assert found is not None, "no csrf_token field in the page"
    return found.group(1)


def login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    """Open the login page and submit it; returns the POST's response (303 on success)."""
    form = client.get("/login")
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": csrf_token(form.text)},
    )


def add_web_user(
    server: WebServer | Config, name: str, role: str, password: str = PASSWORD
) -> None:
    """Create an active account directly in the server's database."""
    config = server.config if isinstance(server, WebServer) else server
    with database(config) as sessions, sessions() as session:
        add_user(session, name, Role(role), password)
        session.commit()


@contextlib.contextmanager
def web_server(config: Path | Config, clock: PinnedClock | None = None) -> Iterator[WebServer]:
    """``mailbot web serve``'s application under uvicorn on a free port, stopped on exit.

    The database must be migrated already. With *clock*, the application's time is pinned.
    """
    loaded = load_config(config) if isinstance(config, Path) else config
    port = free_port()
    with database(loaded) as sessions:
        app = create_app(loaded, sessions, clock=clock) if clock else create_app(loaded, sessions)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, proxy_headers=False, log_level="warning",
                access_log=False, lifespan="off",
            )
        )  # fmt: skip
        thread = threading.Thread(target=server.run, name=f"web-{port}", daemon=True)
        thread.start()
        try:
            for _ in range(1000):
                if server.started or not thread.is_alive():
                    break
                threading.Event().wait(0.01)
            assert server.started, "the web console did not start"
            yield WebServer(loaded, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(30)
