"""Logging in and out."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from mailbot.log import get_logger
from mailbot.web import audit, sessions
from mailbot.web.accounts import authenticate, credential_stamp
from mailbot.web.context import PageRequest
from mailbot.web.guard import LOGIN_PATH, PageGroup, safe_next
from mailbot.web.roles import Role

log = get_logger(__name__)
PAGES = PageGroup()


@PAGES.get(LOGIN_PATH, role=None)
def login_form(page: PageRequest) -> Response:
    """The login form (a logged-in user goes straight on)."""
    target = safe_next(page.request.query_params.get("next"))
    if page.account is not None:
        return RedirectResponse(target, status_code=303)
    expired = page.request.query_params.get("expired") == "1"
    return page.render("login.html", next=target, error=None, expired=expired, name="")


@PAGES.post(LOGIN_PATH, role=None)
def login(page: PageRequest) -> Response:
    """Check the password, counting failures per client address and per user name."""
    name = page.form.get("name", "").strip()[:100]
    password = page.form.get("password", "")
    target = safe_next(page.form.get("next"))
    keys = [f"address:{page.client}", f"user:{name.lower()}"]
    now = page.now.timestamp()
    throttle = page.web.throttle
    if throttle.blocked(keys, now):
        log.warning("web login throttled", client=page.client)
        return page.render(
            "login.html", status_code=429, next=target, expired=False, name=name,
            error="Слишком много неудачных попыток входа. Повторите позже.",
        )  # fmt: skip
    with page.db() as session:
        user = authenticate(session, name, password)
        if user is None:
            throttle.failed(keys, now)
            log.warning("web login failed", client=page.client)
            return page.render(
                "login.html", status_code=401, next=target, expired=False, name=name,
                error="Неверное имя пользователя или пароль.",
            )  # fmt: skip
        throttle.succeeded(keys)
        page.new_session = sessions.logged_in(user.id, credential_stamp(user), now)
        # By the user now logging in (the request had no account yet).
        audit.record(session, user.name, "login", f"web_user:{user.name}",
                     {"client": page.client}, at=page.now)  # fmt: skip
        session.commit()
    return RedirectResponse(target, status_code=303)


@PAGES.post("/logout", role=Role.VIEWER)
def logout(page: PageRequest) -> Response:
    """End the session: the browser gets an anonymous cookie."""
    page.new_session = sessions.anonymous()
    return RedirectResponse(LOGIN_PATH, status_code=303)
