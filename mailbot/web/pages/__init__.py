"""The console's pages, one module per page group, each exposing ``PAGES`` (a PageGroup).

To add a page group: write ``mailbot/web/pages/<group>.py`` with ``PAGES = PageGroup()``
and its handlers (see :mod:`mailbot.web.guard`), its templates in ``templates/web/``,
and add the module here. Links in the menu are in ``templates/web/base.html``.
"""

from __future__ import annotations

#: Mounted in this order by :func:`mailbot.web.app.create_app`.
PAGE_MODULES: tuple[str, ...] = (
    "mailbot.web.pages.login",
    "mailbot.web.pages.dashboard",
    "mailbot.web.pages.journal",
    "mailbot.web.pages.users",
    "mailbot.web.pages.audit",
)
