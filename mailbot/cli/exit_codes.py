"""What an error ends a command with: one line for a person and a sysexits(3) code.

The one place mapping exceptions to exit codes, so that systemd
(``RestartPreventExitStatus=78``), cron and the admin guide agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from mailbot.config import ConfigError, SecretError
from mailbot.directory.session import SchemaNotCurrent
from mailbot.mail.imap import MailboxError

#: Success.
EX_OK = 0
#: A generic failure (a command's own refusal, a failed check).
EX_FAILURE = 1
#: Wrong command-line usage.
EX_USAGE = 2
#: A bug: an exception nobody expected (run with --debug for the traceback).
EX_SOFTWARE = 70
#: A file could not be read or written.
EX_IOERR = 74
#: A temporary failure (a timeout): the same command may work in a minute.
EX_TEMPFAIL = 75
#: A service is unavailable: IMAP unreachable or login refused, database unreachable.
EX_UNAVAILABLE = 69
#: The configuration is wrong: invalid file, missing file, unreadable password.
EX_CONFIG = 78
#: Interrupted by Ctrl-C.
EX_INTERRUPTED = 130

#: For ``mailbot --help``: the codes a script or a unit may act on.
EXIT_CODES_HELP = f"""exit codes:
  {EX_OK}   success
  {EX_FAILURE}   the command failed (a check failed, a refusal explained on stderr)
  {EX_USAGE}   wrong command-line usage
  {EX_UNAVAILABLE}  a service is unavailable: IMAP server or database (retry later)
  {EX_SOFTWARE}  internal error (rerun with --debug and report the traceback)
  {EX_IOERR}  a file could not be read or written
  {EX_TEMPFAIL}  temporary failure (a timeout); retry later
  {EX_CONFIG}  configuration error: invalid or missing config file, unreadable password,
      database schema not migrated; restarting will not help (systemd does not)
  {EX_INTERRUPTED} interrupted"""

#: A message longer than this is cut: stderr goes to the journal, one line an error.
_MAX_REASON = 300


class CliError(Exception):
    """An error shown to the user as one line, without a traceback."""

    def __init__(self, message: str, exit_code: int = EX_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Failure:
    """How a command ends after an exception: the stderr text and the exit code."""

    message: str
    exit_code: int


#: Exceptions that are not bugs, in the order they are tried (subclasses before their
#: bases): the type, what failed (the line's prefix; none when the text says it all),
#: the exit code.
_KNOWN_FAILURES: tuple[tuple[type[BaseException], str, int], ...] = (
    (ConfigError, "configuration is invalid", EX_CONFIG),
    (SecretError, "cannot read a password", EX_CONFIG),
    # Restarting will not help: someone must run `mailbot db upgrade`.
    (SchemaNotCurrent, "", EX_CONFIG),
    (MailboxError, "IMAP server", EX_UNAVAILABLE),
    # Connection refused, authentication failed, server gone.
    (OperationalError, "database", EX_UNAVAILABLE),
    (SQLAlchemyError, "database error", EX_FAILURE),
    (TimeoutError, "timed out", EX_TEMPFAIL),
    (ConnectionError, "connection failed", EX_UNAVAILABLE),
    (OSError, "file error", EX_IOERR),
)


def failure_for(exc: BaseException) -> Failure:
    """The message (without the ``mailbot:`` prefix) and exit code for *exc*."""
    if isinstance(exc, CliError):
        # Written for people already, and its code is deliberate.
        return Failure(str(exc), exc.exit_code)
    for kind, what, exit_code in _KNOWN_FAILURES:
        if isinstance(exc, kind):
            reason = _reason(exc)
            if isinstance(exc, TimeoutError) and not reason:
                reason = "no answer in time"  # asyncio's timeouts carry no text
            return Failure(f"{what}: {reason}" if what else reason, exit_code)
    name = type(exc).__name__
    return Failure(
        f"internal error: {name}: {_reason(exc)} (rerun with --debug for the traceback)",
        EX_SOFTWARE,
    )


def _reason(exc: BaseException) -> str:
    """The first line of the exception's text, bounded (SQL errors quote whole statements)."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    if len(first) > _MAX_REASON:
        first = first[: _MAX_REASON - 1] + "…"
    return first
