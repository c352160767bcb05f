"""Fixtures of the mail tests: a private Dovecot for the IMAP client, the outbox's database
and SMTP servers, and the intake's database directory (for the From address tests)."""

from tests.mail.imap_support import imap_server, user  # noqa: F401
from tests.mail.outbox_support import sessions, smtp_factory, tls_files  # noqa: F401
from tests.regulation.conftest import db_directory  # noqa: F401
