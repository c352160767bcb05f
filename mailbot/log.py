"""Structured logging with structlog: JSON lines for journald, or console output for people.

Every record passes through :func:`redact` before it is rendered, so secrets
(passwords, tokens, private keys, raw letters, certificate bodies) and personal
data (SNILS, INN) never reach a log line, whatever a caller binds.
Use :func:`bind_letter` to give every line about one letter the same context.

When stderr is systemd's journal stream, each line starts with its syslog
priority (``<4>`` for a warning), which journald strips and records, so that
``journalctl -p warning`` finds warnings and errors.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from mailbot.config.secrets import known_secret_values

REDACTED = "[redacted]"

#: Keys whose values are never logged, compared case-insensitively as substrings.
_SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "private_key",
    "privkey",
    "cookie",
)
#: Keys whose values are bulk content that must not be copied into logs.
_CONTENT_KEYS = frozenset({"raw", "raw_letter", "body", "der", "certificate_der", "pem", "payload"})
#: Keys holding personal identifiers; only the last two digits survive.
_PERSONAL_KEYS = frozenset({"snils", "inn", "subscriber_snils", "certificate_snils"})
#: A logged string is cut to this many characters (after scrubbing, so no secret
#: is cut in half): a stranger's letter must not turn into megabyte log lines.
MAX_LOGGED_CHARS = 16 * 1024

# Passwords in URLs (postgresql://user:pw@host) and PEM private key blocks.
# The scheme is bounded (RFC 3986 schemes are short): unbounded, every position
# of a long run of letters started an attempt scanning to the run's end, and a
# stranger's 80 KB From address took over a minute to log.
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]{0,31}://[^/\s:@]*):[^@\s/]*@", re.IGNORECASE
)
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL
)


def mask_identifier(value: object) -> str:
    """Keep only the last two digits of a SNILS/INN: enough to tell records apart."""
    digits = re.sub(r"\D", "", str(value))
    if not digits:
        return ""
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def _scrub_text(text: str) -> str:
    text = _URL_PASSWORD.sub(r"\g<scheme>:" + REDACTED + "@", text)
    text = _PRIVATE_KEY_BLOCK.sub(REDACTED, text)
    for secret in known_secret_values():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _bounded(text: str) -> str:
    if len(text) <= MAX_LOGGED_CHARS:
        return text
    return f"{text[:MAX_LOGGED_CHARS]}…[{len(text) - MAX_LOGGED_CHARS} more characters]"


def _scrub_value(key: str, value: Any) -> Any:
    lowered = key.lower()
    if any(part in lowered for part in _SECRET_KEY_PARTS):
        return REDACTED
    if lowered in _CONTENT_KEYS:
        size = len(value) if isinstance(value, bytes | bytearray | str) else None
        return f"[{size} bytes withheld]" if size is not None else REDACTED
    if lowered in _PERSONAL_KEYS:
        return mask_identifier(value)
    if isinstance(value, bytes | bytearray):
        return f"[{len(value)} bytes withheld]"
    if isinstance(value, str):
        return _bounded(_scrub_text(value))
    if isinstance(value, dict):
        return {k: _scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(key, v) for v in value]
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: withhold secrets, bulk content and personal identifiers."""
    for key in list(event_dict):
        event_dict[key] = _scrub_value(key, event_dict[key])
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of writing.

    Binding the object found at configuration time breaks when it is later
    replaced and closed (pytest's capture, a daemon re-opening its streams).
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


#: syslog(3) priorities of the level names structlog and stdlib records carry.
SYSLOG_PRIORITIES = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}


def is_journal_stream(stream: object) -> bool:
    """Whether *stream* writes to the journal stream systemd named in ``$JOURNAL_STREAM``.

    systemd sets ``JOURNAL_STREAM=device:inode`` of the stream it connected to
    the journal; sd-daemon(3) says to compare it with the descriptor's ``fstat``,
    since a variable inherited through a redirection would name another file.
    """
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        expected = (int(device), int(inode))
        found = os.fstat(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):  # no descriptor (StringIO, pytest's capture)
        return False
    return (found.st_dev, found.st_ino) == expected


def journal_prefix(level: str, stream: object) -> str:
    """``<N>`` for a line of *level* written outside structlog to *stream*, if it is the journal."""
    return f"<{SYSLOG_PRIORITIES[level]}>" if is_journal_stream(stream) else ""


class _PriorityPrefixed:
    """A renderer whose every line starts ``<N>``: journald's level prefix (SyslogLevelPrefix=).

    journald removes the prefix, so ``journalctl -o cat`` still shows the bare JSON.
    """

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        # Read before rendering: the console renderer pops the level out of the dict.
        priority = SYSLOG_PRIORITIES.get(str(event_dict.get("level", "")))
        text = str(self.renderer(logger, method, event_dict))
        if priority is None:
            return text
        # Each line is a journal entry of its own (a console traceback has many).
        return "\n".join(f"<{priority}>{line}" for line in text.split("\n"))


def configure_logging(
    log_format: str = "console", level: str = "info", stream: TextIO | None = None
) -> None:
    """Set up structlog (and route stdlib logging through the same renderer).

    ``log_format`` is ``json`` (one JSON object a line, for journald) or ``console``.
    Written to the journal (see :func:`is_journal_stream`), each line gets its
    syslog priority as a ``<N>`` prefix.
    """
    output: Any = stream if stream is not None else _CurrentStderr()
    numeric_level = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    if is_journal_stream(stream if stream is not None else sys.stderr):
        renderer = _PriorityPrefixed(renderer)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=output),
        cache_logger_on_first_use=False,
    )
    # Libraries (aioimaplib, sqlalchemy, apscheduler) log through stdlib logging.
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    quiet_libraries(numeric_level)


#: Libraries whose INFO lines are chatter for an administrator: alembic's
#: "Context impl SQLiteImpl" on every command, APScheduler's "Running job" every
#: 30 seconds. Their warnings and errors still come through.
CHATTY_LIBRARIES = ("alembic", "apscheduler", "sqlalchemy", "aiosmtplib")
#: Never below WARNING: aioimaplib logs every protocol line at DEBUG, LOGIN arguments too.
SECRET_LEAKING_LIBRARIES = ("aioimaplib",)


def quiet_libraries(level: int) -> None:
    """Hold library loggers at WARNING unless *level* is DEBUG (then they follow the root)."""
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(
            logging.NOTSET if level <= logging.DEBUG else logging.WARNING
        )
    for name in SECRET_LEAKING_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger, optionally named after its module."""
    return structlog.get_logger(name) if name else structlog.get_logger()


@contextmanager
def bind_letter(**context: Any) -> Iterator[None]:
    """Bind context (letter id, UID, Message-ID, sender, ...) to every line logged inside."""
    with structlog.contextvars.bound_contextvars(**context):
        yield
