"""The outbox's database and SMTP servers (:mod:`tests.mail.outbox_support`), for the alerts."""

from tests.mail.outbox_support import sessions, smtp_factory, tls_files  # noqa: F401
