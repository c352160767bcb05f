"""Who gets in: redirects without a session, login, throttling, session timeouts, logout."""

from __future__ import annotations

import importlib
import re

import pytest
from sqlalchemy import select

from mailbot.directory.models import AuditEntry, WebUser
from mailbot.directory.session import database
from mailbot.web.accounts import hash_password
from mailbot.web.pages import PAGE_MODULES
from mailbot.web.roles import Role
from testkit.web import PASSWORD, PinnedClock, WebServer, csrf_token, login


def declared_pages() -> list[tuple[str, str, Role | None]]:
    """Every route the console declares: (method, path with its parameters filled, role)."""
    found = []
    for module_name in PAGE_MODULES:
        for page in importlib.import_module(module_name).PAGES.pages:
            path = re.sub(r"\{[^}]+\}", "1", page.path)
            found.extend((method, path, page.role) for method in page.methods)
    return found


#: Every page but the login, by method: all of them, as the page modules declare them.
GUARDED = [(method, path) for method, path, role in declared_pages() if role is not None]


def test_the_walk_finds_every_page_group() -> None:
    paths = {path for _method, path in GUARDED}
    for expected in ("/", "/journal", "/quarantine", "/cas", "/organisations", "/users"):
        assert expected in paths
    assert len(GUARDED) > 30


def test_every_page_but_login_redirects_to_login_without_a_session(server: WebServer) -> None:
    with server.client() as client:
        for method, path in GUARDED:
            response = client.request(method, path)
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next="), (method, path)


def test_a_viewer_is_refused_every_change(server: WebServer) -> None:
    """Every POST above the viewer's role answers 403, with a valid CSRF token even."""
    changes = [
        (method, path) for method, path, role in declared_pages()
        if method == "POST" and role is not None and role is not Role.VIEWER
    ]  # fmt: skip
    assert len(changes) > 15
    with server.login("viewer") as client:
        token = csrf_token(client.get("/").text)
        for method, path in changes:
            response = client.request(method, path, data={"csrf_token": token})
            assert response.status_code == 403, (method, path)
        assert client.get("/").status_code == 200  # still logged in


def test_login_page_and_static_files_need_no_session(server: WebServer) -> None:
    with server.client() as client:
        assert client.get("/login").status_code == 200
        css = client.get("/static/mailbot.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]


def test_login_succeeds_with_the_password_and_goes_where_it_was_asked(server: WebServer) -> None:
    with server.client() as client:
        first = client.get("/journal?sender=a%40b.example")
        target = first.headers["location"]
        form = client.get(target)
        response = client.post("/login", data={
            "name": "viewer", "password": PASSWORD, "csrf_token": csrf_token(form.text),
            "next": "/journal?sender=a%40b.example",
        })  # fmt: skip
        assert response.status_code == 303
        assert response.headers["location"] == "/journal?sender=a%40b.example"
        page = client.get("/journal")
    assert page.status_code == 200
    assert "viewer (наблюдатель)" in page.text


def test_login_never_redirects_off_the_site(server: WebServer) -> None:
    with server.client() as client:
        form = client.get("/login")
        response = client.post("/login", data={
            "name": "viewer", "password": PASSWORD, "csrf_token": csrf_token(form.text),
            "next": "//evil.example/",
        })  # fmt: skip
    assert response.headers["location"] == "/"


@pytest.mark.parametrize(
    ("name", "password"), [("viewer", "wrong password!"), ("nobody", PASSWORD)]
)
def test_login_fails_with_a_wrong_password_or_an_unknown_name(
    server: WebServer, name: str, password: str
) -> None:
    with server.client() as client:
        response = login(client, name, password)
        assert response.status_code == 401
        assert "Неверное имя пользователя или пароль" in response.text
        assert client.get("/").status_code == 303


def test_a_disabled_account_cannot_log_in(server: WebServer) -> None:
    with database(server.config) as sessions, sessions() as session:
        user = session.scalar(select(WebUser).where(WebUser.name == "operator"))
        assert user is not None
        user.active = False
        session.commit()
    with server.client() as client:
        assert login(client, "operator", PASSWORD).status_code == 401


def test_logins_are_throttled_per_user_name_after_the_failures(
    server: WebServer, clock: PinnedClock
) -> None:
    """login_max_failures = 3 in 5 minutes: the 4th try is refused even with the password."""
    with server.client() as client:
        for _ in range(3):
            assert login(client, "admin", "wrong password!").status_code == 401
        refused = login(client, "admin", PASSWORD)
        assert refused.status_code == 429
        assert "Слишком много неудачных попыток" in refused.text
        # Another name from the same address is refused too (the address counts).
        assert login(client, "viewer", PASSWORD).status_code == 429
    clock.advance(minutes=5, seconds=1)
    with server.client() as client:
        assert login(client, "admin", PASSWORD).status_code == 303


def test_the_login_form_needs_its_csrf_token(server: WebServer) -> None:
    with server.client() as client:
        client.get("/login")
        response = client.post("/login", data={"name": "admin", "password": PASSWORD})
    assert response.status_code == 403


def test_a_session_ends_after_the_idle_timeout(server: WebServer, clock: PinnedClock) -> None:
    """session_idle_minutes = 10: a request within it keeps the session, a pause longer ends it."""
    with server.login("viewer") as client:
        clock.advance(minutes=9)
        assert client.get("/").status_code == 200
        clock.advance(minutes=9)
        assert client.get("/").status_code == 200
        clock.advance(minutes=10, seconds=1)
        response = client.get("/journal")
    assert response.status_code == 303
    assert "expired=1" in response.headers["location"]


def test_a_session_ends_after_the_absolute_timeout(server: WebServer, clock: PinnedClock) -> None:
    """session_absolute_hours = 1: even a busy session ends an hour after the login."""
    with server.login("viewer") as client:
        for _ in range(6):
            clock.advance(minutes=9, seconds=50)
            assert client.get("/").status_code == 200
        clock.advance(seconds=61)
        assert client.get("/").status_code == 303


def test_logout_ends_the_session(server: WebServer) -> None:
    with server.login("viewer") as client:
        page = client.get("/")
        response = client.post("/logout", data={"csrf_token": csrf_token(page.text)})
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        assert client.get("/").status_code == 303


def test_a_new_password_ends_the_sessions_signed_before(server: WebServer) -> None:
    with server.login("operator") as client:
        assert client.get("/").status_code == 200
        with database(server.config) as sessions, sessions() as session:
            user = session.scalar(select(WebUser).where(WebUser.name == "operator"))
            assert user is not None
            user.password_hash = hash_password("another long password")
            session.commit()
        assert client.get("/").status_code == 303


def test_a_login_is_audited(server: WebServer) -> None:
    with server.login("viewer"):
        pass
    with database(server.config) as sessions, sessions() as session:
        entries = session.scalars(select(AuditEntry)).all()
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("viewer", "login", "web_user:viewer")
    ]
