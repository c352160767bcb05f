"""The web console: ``mailbot web serve``, a Starlette application rendered with Jinja2.

Layout (one job per module):

* :mod:`~mailbot.web.app` builds the application from the page modules;
* :mod:`~mailbot.web.pages` holds one module per page group, each exposing ``PAGES``;
* :mod:`~mailbot.web.guard` wraps every page: session, role, CSRF, security headers;
* :mod:`~mailbot.web.sessions` signs the session cookie; :mod:`~mailbot.web.throttle`
  limits login attempts; :mod:`~mailbot.web.accounts` keeps the accounts;
  :mod:`~mailbot.web.audit` journals every change; :mod:`~mailbot.web.rendering` renders
  the templates of ``templates/web``.
"""
