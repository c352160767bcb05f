"""Headers, cookie flags, CSRF and role refusals, and the reverse proxy's trust."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from mailbot.directory import migrate
from mailbot.directory.models import AuditEntry, WebUser
from mailbot.directory.session import database
from testkit.web import WebServer, add_web_user, csrf_token, web_server
from tests.web.conftest import write_web_config


def _user(server: WebServer, name: str) -> WebUser:
    with database(server.config) as sessions, sessions() as session:
        user = session.scalar(select(WebUser).where(WebUser.name == name))
        assert user is not None
        return user


def test_pages_carry_a_strict_content_security_policy_and_the_other_headers(
    server: WebServer,
) -> None:
    with server.client() as client:
        for response in (client.get("/login"), client.get("/"), client.get("/static/mailbot.css")):
            headers = response.headers
            policy = headers["content-security-policy"]
            assert "default-src 'self'" in policy
            assert "frame-ancestors 'none'" in policy
            assert "unsafe-inline" not in policy
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
    with server.login("viewer") as client:
        page = client.get("/")
    assert page.headers["cache-control"] == "no-store"
    # No inline script or style for the policy to forbid: nothing but the stylesheet.
    assert "<script" not in page.text
    assert "style=" not in page.text


def test_the_session_cookie_is_httponly_and_strict_and_not_secure_over_plain_http(
    server: WebServer,
) -> None:
    with server.client() as client:
        cookie = client.get("/login").headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/" in cookie
    assert "secure" not in cookie


def test_a_forged_cookie_is_no_session(server: WebServer) -> None:
    with server.login("admin") as client:
        value = client.cookies["mailbot_session"]
        client.cookies.clear()
        client.cookies.set("mailbot_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
        assert client.get("/").status_code == 303


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_a_post_without_the_sessions_csrf_token_is_refused(
    server: WebServer, token: str | None
) -> None:
    with server.login("admin") as client:
        data = {"active": "0"} if token is None else {"active": "0", "csrf_token": token}
        response = client.post("/users/viewer/active", data=data)
        assert response.status_code == 403
        assert "Форма устарела или подделана" in response.text
        # The logout (a POST too) is refused the same way: the session stays.
        assert client.post("/logout", data={"csrf_token": "x"}).status_code == 403
        assert client.get("/").status_code == 200
    assert _user(server, "viewer").active


def test_a_token_of_another_session_is_refused(server: WebServer) -> None:
    with server.login("viewer") as other:
        foreign = csrf_token(other.get("/").text)
    with server.login("admin") as client:
        response = client.post("/users/viewer/active", data={"active": "0", "csrf_token": foreign})
    assert response.status_code == 403
    assert _user(server, "viewer").active


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_an_admin_action_is_refused_to_lesser_roles_and_changes_nothing(
    server: WebServer, role: str
) -> None:
    with server.login(role) as client:
        token = csrf_token(client.get("/").text)
        response = client.post("/users/admin/active", data={"active": "0", "csrf_token": token})
        assert response.status_code == 403
        assert "Недостаточно прав" in response.text
        assert client.get("/users").status_code == 403
        assert client.get("/audit").status_code == 403
    assert _user(server, "admin").active


def test_an_admin_disables_an_account_and_the_change_is_audited(server: WebServer) -> None:
    with server.login("viewer") as victim:
        assert victim.get("/").status_code == 200
        with server.login("admin") as client:
            token = csrf_token(client.get("/users").text)
            response = client.post(
                "/users/viewer/active", data={"active": "0", "csrf_token": token}
            )
            assert response.status_code == 303
            audit_page = client.get("/audit")
        # The disabled account's open session ends at its next request.
        assert victim.get("/").status_code == 303
    assert not _user(server, "viewer").active
    with database(server.config) as sessions, sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "web_user.disable")
        ).one()
    assert (entry.actor, entry.target) == ("admin", "web_user:viewer")
    assert "web_user.disable" in audit_page.text


def _proxied_server(tmp_path: Path, engine: Engine, database_url: str, proxies: str) -> Path:
    migrate.upgrade(engine)
    return write_web_config(
        tmp_path, database_url,
        f'trusted_proxies = [{proxies}]\nproxy_user_header = "X-Remote-User"\n',
    )  # fmt: skip


def test_a_trusted_proxys_user_header_and_tls_are_believed(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    config = _proxied_server(tmp_path, engine, database_url, '"127.0.0.1"')
    with web_server(config) as server:
        add_web_user(server, "alice", "operator")
        with server.client(headers={"X-Remote-User": "alice"}) as client:
            page = client.get("/", headers={"X-Forwarded-Proto": "https"})
            assert page.status_code == 200
            assert "alice (оператор)" in page.text
            assert "secure" in page.headers["set-cookie"].lower()
            # The header cannot make someone of a name without an account.
            assert client.get("/", headers={"X-Remote-User": "mallory"}).status_code == 303


def test_an_untrusted_peers_proxy_headers_count_for_nothing(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    config = _proxied_server(tmp_path, engine, database_url, '"192.0.2.1"')
    with web_server(config) as server:
        add_web_user(server, "alice", "admin")
        with server.client() as client:
            response = client.get(
                "/", headers={"X-Remote-User": "alice", "X-Forwarded-Proto": "https"}
            )
    assert response.status_code == 303
    assert "secure" not in response.headers["set-cookie"].lower()


def _raw_post(server: WebServer, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One POST over a plain socket (a client httpx would not be), the server's answer."""
    import socket
    import urllib.parse

    url = urllib.parse.urlsplit(server.base_url)
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(head.encode() + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_body_declared_over_the_cap_is_refused_before_it_is_sent(server: WebServer) -> None:
    from mailbot.web.body_limit import MAX_BODY_BYTES

    headers = {
        "Content-Type": "multipart/form-data; boundary=x",
        "Content-Length": str(MAX_BODY_BYTES + 1),
    }
    answer = _raw_post(server, "/directory/import", headers, b"")  # not one byte follows
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_stranger_cannot_post_more_than_a_login_form(server: WebServer) -> None:
    with server.client() as client:
        token = csrf_token(client.get("/login").text)
        big = client.post(
            "/login",
            data={"csrf_token": token, "name": "admin", "password": "x" * (70 * 1024)},
        )
        assert big.status_code == 403
        assert "Слишком большой запрос" in big.text
    chunked = _raw_post(
        server,
        "/login",
        {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"},
        b"5\r\nname=\r\n0\r\n\r\n",
    )
    assert chunked.startswith(b"HTTP/1.1 403 ")  # no length declared: not parsed at all


def test_a_streamed_body_is_cut_off_at_the_cap(server: WebServer) -> None:
    from mailbot.web.body_limit import MAX_BODY_BYTES

    with server.login("operator") as client:
        token = csrf_token(client.get("/").text)

        def chunks() -> Iterator[bytes]:
            yield f"csrf_token={token}&x=".encode()
            piece = b"a" * (1024 * 1024)
            for _ in range(MAX_BODY_BYTES // len(piece) + 2):
                yield piece

        try:
            response = client.post(
                "/logout",
                content=chunks(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code in (403, 413)
        except httpx.HTTPError:
            pass  # the server may close the connection while the client still sends
        assert client.get("/").status_code == 200  # the session survives, nothing logged out
