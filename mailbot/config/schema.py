"""The configuration's shape: one frozen dataclass per TOML section.

Every field has a default except the few an administrator must decide. The
loader (:mod:`mailbot.config.loader`) turns a TOML document into these objects
and reports every problem with the file and the dotted key.
"""

from __future__ import annotations

import ipaddress
import sysconfig
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mailbot.config.secrets import SecretSource

LogFormat = Literal["json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]
ImapTls = Literal["implicit", "none"]
SmtpTls = Literal["implicit", "starttls", "none"]
CrlPolicy = Literal["defer", "reject", "accept"]
ReportPeriod = Literal["weekly", "daily"]
TrustListRegister = Literal["none", "accredited"]
DecideIn = Literal["process", "thread"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
#: :data:`Weekday` names in ``datetime.date.weekday()`` order (Monday is 0).
WEEKDAYS: tuple[str, ...] = typing.get_args(Weekday)

MIB = 1024 * 1024


@dataclass(frozen=True)
class GeneralConfig:
    """Process-wide settings."""

    #: Working directory for the database file, archive, caches and default store
    #: (the units' StateDirectory=; never the folder a command happens to start in).
    state_dir: Path = Path("/var/lib/mailbot")
    #: Time zone used for dates in replies and for "per day" limits.
    timezone: str = "Europe/Moscow"
    #: Where the daemon's leader lease and other instance-specific state is named.
    instance_name: str = "mailbot"


@dataclass(frozen=True)
class ImapConfig:
    """The reestrin@ mailbox the daemon reads."""

    host: str = "127.0.0.1"
    port: int = 993
    #: ``implicit`` = IMAPS; ``none`` = plain IMAP, allowed for loopback servers only.
    tls: ImapTls = "implicit"
    #: PEM file with the CA that signed the server's certificate (a private CA).
    ca_file: Path | None = None
    #: Verify the server's certificate and host name.
    verify_certificate: bool = True
    user: str = "reestrin"
    password: SecretSource = field(default_factory=SecretSource)
    mailbox: str = "INBOX"
    processed_folder: str = "Processed"
    rejected_folder: str = "Rejected"
    failed_folder: str = "Failed"
    #: IDLE is re-issued after this many seconds (RFC 2177 says under 29 minutes;
    #: NATs and firewalls drop idle connections much sooner).
    idle_seconds: int = 300
    #: Poll interval when the server lacks IDLE, and the safety resync interval.
    poll_seconds: int = 60
    #: Hard deadline for every single IMAP command.
    command_timeout_seconds: int = 30


@dataclass(frozen=True)
class SmtpConfig:
    """The server replies and alerts are sent through."""

    host: str = "127.0.0.1"
    port: int = 25
    tls: SmtpTls = "starttls"
    ca_file: Path | None = None
    verify_certificate: bool = True
    #: Empty: no AUTH.
    user: str = ""
    password: SecretSource = field(default_factory=SecretSource)
    #: The fund's address; replies carry it in From and as the envelope sender.
    from_address: str = "reestrin@localhost"
    #: Hard deadline for connecting and for sending one letter (MAIL FROM to the final 250).
    timeout_seconds: int = 30
    #: A letter the server did not take (4xx, connection trouble) is retried after this
    #: many seconds, doubling with every further attempt (with jitter, so that letters
    #: queued together do not hit a recovering server together) ...
    retry_base_seconds: int = 30
    #: ... but never waiting longer than this between two attempts.
    retry_max_seconds: int = 3600


@dataclass(frozen=True)
class DatabaseConfig:
    """Where the directories, the journal and the outbox live."""

    #: SQLAlchemy URL. Empty: an SQLite file ``mailbot.sqlite3`` in ``general.state_dir``.
    #: Never put a password here; use ``password_env`` or ``password_file``.
    url: str = ""
    password: SecretSource = field(default_factory=SecretSource)


@dataclass(frozen=True)
class PathsConfig:
    """Directories. Empty means "under ``general.state_dir``"."""

    certificate_store: Path | None = None
    quarantine_dir: Path | None = None
    archive_dir: Path | None = None
    crl_cache_dir: Path | None = None
    #: CRL files an administrator places by hand are picked up from here.
    crl_drop_dir: Path | None = None
    #: Routing rules by subject. Empty: the ``rules/`` folder shipped with mailbot.
    rules_dir: Path | None = None
    #: Reply templates. Empty: the ``templates/`` folder shipped with mailbot.
    templates_dir: Path | None = None


@dataclass(frozen=True)
class StoreConfig:
    """Installing a registered certificate into the server's store."""

    #: Optional command run after the DER file is written, as an argument list.
    #: Placeholders: {path}, {thumbprint}, {serial}.
    install_command: tuple[str, ...] = ()
    install_timeout_seconds: int = 60


@dataclass(frozen=True)
class AdminConfig:
    """Who receives administrative alerts."""

    alert_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class LimitsConfig:
    """Sizes and rates that keep hostile letters harmless."""

    max_letter_bytes: int = 25 * MIB
    max_attachment_bytes: int = 1 * MIB
    max_zip_entry_bytes: int = 1 * MIB
    max_compression_ratio: int = 100
    replies_per_sender_per_day: int = 20


@dataclass(frozen=True)
class CrlConfig:
    """Revocation checking."""

    #: What to do when no fresh CRL can be had: wait and retry, refuse, or accept.
    unavailable_policy: CrlPolicy = "defer"
    fetch_timeout_seconds: int = 20
    max_crl_bytes: int = 100 * MIB
    max_redirects: int = 3
    #: Proxy for CRL downloads, ``http://host:port`` or ``https://...``; "" = the
    #: environment's (``https_proxy``, ``http_proxy``, ``all_proxy``). ``no_proxy`` holds for both.
    proxy: str = ""
    #: Password for the user named in ``proxy`` (``http://user@host:port``).
    proxy_password: SecretSource = field(default_factory=SecretSource)
    #: A CRL is verified and indexed in a worker process killed after this many seconds.
    ingest_timeout_seconds: int = 60
    #: Tolerance around thisUpdate/nextUpdate for clock skew.
    grace_seconds: int = 300
    #: With ``defer``: how often a waiting letter is retried ...
    retry_minutes: int = 30
    #: ... and after how long administrators are alerted.
    alert_after_minutes: int = 240


@dataclass(frozen=True)
class SenderAuthConfig:
    """Optional check of our own MTA's Authentication-Results header (RFC 8601)."""

    require_authentication_results: bool = False
    #: authserv-ids of our own receiving MTA; headers stamped by others count for nothing.
    trusted_authserv_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DaemonConfig:
    """The long-running process."""

    #: A letter whose processing started this many times without finishing is a
    #: poison letter: it goes to the failed folder and administrators are alerted.
    max_attempts: int = 3
    #: How often the outbox is flushed besides right after each letter.
    outbox_interval_seconds: int = 30
    #: How often CRLs of registered CAs are refreshed ahead of their nextUpdate.
    crl_refresh_minutes: int = 60
    #: How often a standby daemon checks whether the active one is gone.
    lease_poll_seconds: int = 2
    #: Raw letters older than this are deleted from the archive (0 keeps them forever).
    archive_retention_days: int = 365
    #: Journal rows older than this are deleted (0 keeps them forever).
    journal_retention_days: int = 0
    #: Where letters are decided: ``process`` (a worker process beside the daemon, on a
    #: core of its own) or ``thread`` (in the daemon's process, one interpreter lock).
    decide_in: DecideIn = "process"


@dataclass(frozen=True)
class RemindersConfig:
    """Letters to participants before a registered certificate expires (beyond the regulation)."""

    enabled: bool = True
    #: Days before ``not_after`` at which a reminder is sent, once per threshold
    #: and certificate. When several are crossed at once only the nearest is sent.
    expiry_days: tuple[int, ...] = (30, 7)
    #: How often the daemon looks for due reminders (and marks expired certificates).
    interval_minutes: int = 60


@dataclass(frozen=True)
class ReportConfig:
    """The periodic report letter to ``admin.alert_addresses``: how the week (or day) went."""

    #: Off by default: it needs ``admin.alert_addresses``, and a new installation
    #: would otherwise mail a report of an empty period at its first start.
    enabled: bool = False
    #: ``weekly``: the 7 days before ``weekday``; ``daily``: the day before.
    period: ReportPeriod = "weekly"
    #: The day a weekly report is sent (and the first day of the week it covers).
    weekday: Weekday = "monday"
    #: The hour (0-23, ``general.timezone``) from which the report is due.
    hour: int = 8
    #: Certificates expiring within this many days are listed.
    expiring_days: int = 30
    #: How often the daemon checks whether the report is due.
    interval_minutes: int = 15


@dataclass(frozen=True)
class TrustListConfig:
    """The Ministry's list of accredited CAs (the "TSL"): where from, and what it may decide."""

    #: Where the daemon's refresh job downloads the list (through ``[crl]``'s proxy
    #: settings, a conditional GET); ``None``: no refresh, ``mailbot ca import-tsl`` only.
    url: str | None = None
    #: Hours between two refreshes.
    refresh_hours: int = 6
    #: Deadline of one download, connection and all bytes included.
    timeout_seconds: int = 300
    #: A larger download is refused (the list is tens of MiB).
    max_size_mib: int = 256
    #: ``none``: the list only informs (alerts, ``ca list``); ``accredited``: every key of
    #: every CA whose status is «Действует» is registered in the CA directory.
    register: TrustListRegister = "none"
    #: A certificate from an unregistered key that the list shows accredited is not
    #: quarantined: the key is registered from the list and the letter goes on.
    auto_register_unknown: bool = False

    @property
    def max_size(self) -> int:
        """``max_size_mib`` in bytes."""
        return self.max_size_mib * MIB


@dataclass(frozen=True)
class LoggingConfig:
    """Structured logs."""

    #: ``json`` lines for journald, ``console`` for people.
    format: LogFormat = "json"
    level: LogLevel = "info"


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus metrics over HTTP, for the local monitoring agent."""

    enabled: bool = False
    #: ``host:port`` on a loopback address (``127.0.0.1:9468`` or ``[::1]:9468``):
    #: the endpoint has no authentication, so it never listens on the network.
    listen: str = "127.0.0.1:9468"
    #: Timer mode: where ``mailbot run --once`` writes its metrics at the end of a run,
    #: for node_exporter's textfile collector (a ``*.prom`` file); ``None`` writes none.
    textfile: Path | None = None

    @property
    def address(self) -> tuple[str, int]:
        """``listen`` as ``(host, port)``; the loader has already checked it."""
        return parse_listen(self.listen)


@dataclass(frozen=True)
class WebConfig:
    """The web console (``mailbot web serve``), a separate process behind a TLS reverse proxy."""

    #: ``host:port`` (an IP literal). Plain HTTP: keep it on loopback and let a reverse
    #: proxy (nginx) terminate TLS; another address only for a proxy on another host.
    listen: str = "127.0.0.1:8080"
    #: The key that signs session cookies (created, mode 0600, at first start when missing).
    #: Empty: ``web-secret.key`` in ``general.state_dir``.
    secret_key_file: Path | None = None
    #: A session ends after this many minutes without a request ...
    session_idle_minutes: int = 30
    #: ... and this many hours after the login in any case.
    session_absolute_hours: int = 12
    #: Failed logins allowed per client address and per user name within the window.
    login_max_failures: int = 5
    login_window_minutes: int = 15
    #: Addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed.
    trusted_proxies: tuple[str, ...] = ()
    #: A header (e.g. ``X-Remote-User``) naming the user the trusted proxy authenticated;
    #: "" (the default) turns reverse-proxy authentication off.
    proxy_user_header: str = ""

    @property
    def address(self) -> tuple[str, int]:
        """``listen`` as ``(host, port)``; the loader has already checked it."""
        return parse_listen(self.listen, loopback_only=False)


def parse_listen(text: str, loopback_only: bool = True) -> tuple[str, int]:
    """Split ``host:port`` or ``[v6]:port`` into an IP literal and a port.

    *loopback_only* refuses other addresses (an endpoint without authentication).
    Raises :class:`ValueError` with a message for the administrator.
    """
    host, separator, port_text = text.rpartition(":")
    if not separator or not host or not port_text.isdigit():
        raise ValueError(f"{text!r} is not host:port (e.g. 127.0.0.1:9468 or [::1]:9468)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:9468")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # A name could resolve to anything (and differently tomorrow): IP literals only.
        raise ValueError(f"{text!r}: the host must be an IP address, not a name") from None
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"{text!r}: port must be 1-65535")
    if loopback_only and not address.is_loopback:
        raise ValueError(f"{text!r}: only a loopback address is allowed (no authentication)")
    return str(address), port


@dataclass(frozen=True)
class Config:
    """The whole configuration, with paths already resolved."""

    source: Path | None = None
    general: GeneralConfig = field(default_factory=GeneralConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    crl: CrlConfig = field(default_factory=CrlConfig)
    sender_auth: SenderAuthConfig = field(default_factory=SenderAuthConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    trust_list: TrustListConfig = field(default_factory=TrustListConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    web: WebConfig = field(default_factory=WebConfig)

    def needed_secrets(self) -> tuple[tuple[str, SecretSource], ...]:
        """The passwords the daemon reads, by TOML key: IMAP always, SMTP with a user,
        the database when a source is set."""
        needed = [("imap.password", self.imap.password)]
        if self.smtp.user:
            needed.append(("smtp.password", self.smtp.password))
        if self.database.password.configured:
            needed.append(("database.password", self.database.password))
        return tuple(needed)

    # Resolved locations. The loader fills every path, so these never return None.
    @property
    def certificate_store(self) -> Path:
        """Directory of registered DER certificates."""
        return self.paths.certificate_store or self.general.state_dir / "store"

    @property
    def quarantine_dir(self) -> Path:
        """Directory of certificates from unknown CAs."""
        return self.paths.quarantine_dir or self.general.state_dir / "quarantine"

    @property
    def archive_dir(self) -> Path:
        """Directory of raw letters kept for audit, named by SHA-256."""
        return self.paths.archive_dir or self.general.state_dir / "archive"

    @property
    def crl_cache_dir(self) -> Path:
        """Directory of the last good CRL of every CA."""
        return self.paths.crl_cache_dir or self.general.state_dir / "crl"

    @property
    def crl_drop_dir(self) -> Path:
        """Directory where administrators place CRL files by hand."""
        return self.paths.crl_drop_dir or self.general.state_dir / "crl-drop"

    @property
    def rules_dir(self) -> Path:
        """Directory of routing rule files."""
        return self.paths.rules_dir or shipped_dir("rules")

    @property
    def templates_dir(self) -> Path:
        """Directory of reply templates."""
        return self.paths.templates_dir or shipped_dir("templates")

    @property
    def web_secret_key_file(self) -> Path:
        """The file holding the key that signs the web console's session cookies."""
        return self.web.secret_key_file or self.general.state_dir / "web-secret.key"

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL without the password (safe to print)."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.general.state_dir / 'mailbot.sqlite3'}"


def shipped_dir(name: str) -> Path:
    """A folder shipped with mailbot (``rules``, ``templates``).

    In a checkout (and an editable install) it sits at the top of the checkout,
    where an administrator reads it; an installed wheel carries it as data files
    under ``<prefix>/share/mailbot`` (``[tool.setuptools.data-files]``).
    """
    checkout = Path(__file__).resolve().parents[2]
    # pyproject.toml, not the folder itself: a stray top-level "templates" in
    # site-packages (some packages ship one) must not pass for ours.
    if (checkout / "pyproject.toml").is_file():
        return checkout / name
    return Path(sysconfig.get_path("data")) / "share" / "mailbot" / name
