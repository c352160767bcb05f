"""The console's pages, one module per page group, each exposing ``PAGES`` (a PageGroup).

Adding a page group ``things``:

1. ``mailbot/web/pages/things.py``::

       PAGES = PageGroup()

       @PAGES.get("/things")                                   # least role: viewer
       def things(page: PageRequest) -> Response:
           with page.db() as session:
               rows = list_things(session)                     # a query from mailbot/app
           return page.render("things.html", rows=rows)

       @PAGES.post("/things/{thing_id:int}/close", role=Role.OPERATOR)
       def close(page: PageRequest) -> Response:               # CSRF already checked
           with page.db() as session:
               close_thing(session, ...)                       # the same code path as the CLI
               page.audit(session, "thing.close", f"thing:{thing_id}", {"reason": ...})
               session.commit()                                # the change and its entry together
           return RedirectResponse("/things", status_code=303)  # POST-redirect-GET

   ``get`` defaults to :attr:`Role.VIEWER`, ``post`` to :attr:`Role.OPERATOR`; a role
   below the page's gets 403, no session a redirect to the login. Handlers are
   synchronous (they run in a thread); ``page.form`` holds the POSTed fields,
   ``page.user`` the account, ``page.now`` the (testable) clock, ``page.snils(v)``
   a SNILS as the user may see it.
2. ``templates/web/things.html`` extending ``base.html``; every ``<form method="post">``
   carries ``{{ csrf_field() }}``; no inline script or style (the CSP refuses them).
3. The module's name in :data:`PAGE_MODULES` below; a menu link in ``base.html``.
4. Tests in ``tests/web`` with :mod:`testkit.web` (``server.login(role)`` gives an
   httpx client logged in; ``csrf_token(page.text)`` the token for a POST).
"""

from __future__ import annotations

#: Mounted in this order by :func:`mailbot.web.app.create_app`.
PAGE_MODULES: tuple[str, ...] = (
    "mailbot.web.pages.login",
    "mailbot.web.pages.dashboard",
    "mailbot.web.pages.journal",
    "mailbot.web.pages.quarantine",
    "mailbot.web.pages.cas",
    "mailbot.web.pages.directory",
    "mailbot.web.pages.directory_csv",
    "mailbot.web.pages.users",
    "mailbot.web.pages.audit",
)
