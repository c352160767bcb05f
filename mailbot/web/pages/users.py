"""The accounts page (admins): who may use the console; disable or enable an account."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from mailbot.web.accounts import find_user, list_users
from mailbot.web.context import PageRequest
from mailbot.web.guard import PageGroup
from mailbot.web.roles import Role

PAGES = PageGroup()


@PAGES.get("/users", role=Role.ADMIN)
def users(page: PageRequest) -> Response:
    """Every account with its role and state."""
    with page.db() as session:
        accounts = list_users(session)
    return page.render("users.html", accounts=accounts, error=None)


@PAGES.post("/users/{name}/active", role=Role.ADMIN)
def set_active(page: PageRequest) -> Response:
    """Disable (``active=0``) or enable (``active=1``) an account; not one's own."""
    name = page.request.path_params["name"]
    active = page.form.get("active") == "1"
    with page.db() as session:
        user = find_user(session, name)
        if user is None:
            return page.render("not_found.html", status_code=404, what=f"Пользователь {name}")
        if user.id == page.user.id:
            return page.render("users.html", status_code=409, accounts=list_users(session),
                               error="Свою учётную запись отключить нельзя.")  # fmt: skip
        if user.active != active:
            user.active = active
            action = "web_user.enable" if active else "web_user.disable"
            page.audit(session, action, f"web_user:{name}")
            session.commit()
    return RedirectResponse("/users", status_code=303)
