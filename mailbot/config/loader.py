"""Read the TOML configuration and validate it, naming the file and key of every problem.

The loader walks the dataclasses of :mod:`mailbot.config.schema`: each field's
type annotation says what the TOML value must be. All problems are collected
and reported together, so an administrator fixes a file in one pass.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
import tomllib
import types
import typing
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from mailbot.config.schema import Config, parse_listen
from mailbot.config.secrets import SecretSource
from mailbot.net.http_client import proxy_problem, redacted

_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+$")


class ConfigError(Exception):
    """The configuration is unusable. ``problems`` lists every ``file: key: message``."""

    def __init__(self, source: Path | None, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        where = str(source) if source else "<built-in defaults>"
        super().__init__("\n".join(f"{where}: {p}" for p in problems))


def load_config(path: Path | None = None) -> Config:
    """Load and validate the configuration at *path*; ``None`` gives the built-in defaults.

    Relative paths inside the file are taken relative to the file's folder.
    Raises :class:`ConfigError` listing every problem found.
    """
    if path is None:
        return _finish(Config(), None, Path.cwd())
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text (byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return config_from_mapping(document, source=path)


def config_from_mapping(document: Mapping[str, Any], source: Path | None = None) -> Config:
    """Build a :class:`Config` from an already parsed TOML document."""
    base = source.resolve().parent if source is not None else Path.cwd()
    converter = _Converter(base)
    values = converter.section(Config, document, prefix="", skip={"source"})
    if converter.problems:
        raise ConfigError(source, converter.problems)
    config = Config(source=source, **values)
    return _finish(config, source, base)


def _finish(config: Config, source: Path | None, base: Path) -> Config:
    """Cross-field checks and defaults that depend on other keys."""
    problems: list[str] = []
    general = config.general
    if not general.state_dir.is_absolute():
        config = dataclasses.replace(
            config, general=dataclasses.replace(general, state_dir=base / general.state_dir)
        )
    try:
        zoneinfo.ZoneInfo(config.general.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(f"general.timezone: unknown time zone {config.general.timezone!r}")

    if source is not None and not config.imap.password.configured:
        problems.append(
            "imap.password_env / imap.password_file: the mailbox password source is missing"
        )
    if config.smtp.user and not config.smtp.password.configured:
        problems.append(
            "smtp.password_env / smtp.password_file: smtp.user is set but no password source"
        )
    if config.imap.password.env and config.imap.password.file:
        problems.append("imap: set password_env or password_file, not both")
    if config.smtp.password.env and config.smtp.password.file:
        problems.append("smtp: set password_env or password_file, not both")
    if config.imap.tls == "none" and not _is_loopback(config.imap.host):
        problems.append("imap.tls: 'none' is allowed only for a server on the loopback address")
    if not _ADDRESS.match(config.smtp.from_address):
        problems.append(f"smtp.from_address: {config.smtp.from_address!r} is not an address")
    if config.smtp.timeout_seconds <= 0:
        problems.append("smtp.timeout_seconds: must be positive")
    if config.crl.ingest_timeout_seconds <= 0:
        problems.append("crl.ingest_timeout_seconds: must be positive")
    problems.extend(_check_proxy(config))
    if config.smtp.retry_base_seconds <= 0:
        problems.append("smtp.retry_base_seconds: must be positive")
    if config.smtp.retry_max_seconds < config.smtp.retry_base_seconds:
        problems.append("smtp.retry_max_seconds: must not be below smtp.retry_base_seconds")
    for index, address in enumerate(config.admin.alert_addresses):
        if not _ADDRESS.match(address):
            problems.append(f"admin.alert_addresses[{index}]: {address!r} is not an address")
    problems.extend(_check_database_url(config.database.url))
    for index, argument in enumerate(config.store.install_command):
        problems.extend(
            f"store.install_command[{index}]: {p}" for p in _check_placeholders(argument)
        )
    folders = {config.imap.processed_folder, config.imap.rejected_folder, config.imap.failed_folder}
    if config.imap.mailbox in folders:
        problems.append("imap.mailbox: must differ from the processed/rejected/failed folders")
    if config.sender_auth.require_authentication_results and not (
        config.sender_auth.trusted_authserv_ids
    ):
        problems.append(
            "sender_auth.trusted_authserv_ids: required when require_authentication_results is true"
        )
    problems.extend(_check_reminders(config))
    problems.extend(_check_report(config))
    problems.extend(_check_trust_list(config))
    try:
        parse_listen(config.metrics.listen)
    except ValueError as exc:
        problems.append(f"metrics.listen: {exc}")
    problems.extend(_check_web(config))
    textfile = config.metrics.textfile
    if textfile is not None and textfile.suffix != ".prom":
        problems.append(
            f"metrics.textfile: {str(textfile)!r} must end in .prom "
            "(node_exporter's textfile collector reads only those)"
        )
    if problems:
        raise ConfigError(source, problems)
    return config


def _check_proxy(config: Config) -> list[str]:
    """``[crl] proxy``: a URL the HTTP client speaks, its password kept out of the file."""
    proxy, password = config.crl.proxy, config.crl.proxy_password
    if not proxy:
        if password.configured:
            return ["crl.proxy_password_env / crl.proxy_password_file: set but crl.proxy is empty"]
        return []
    problem = proxy_problem(proxy)
    if problem is not None:
        return [f"crl.proxy: {redacted(proxy)} {problem}"]
    parts = urllib.parse.urlsplit(proxy)
    if parts.password is not None:
        return [
            "crl.proxy: inline passwords are not allowed; name the user in the URL and use"
            " crl.proxy_password_env or crl.proxy_password_file"
        ]
    if password.configured and not parts.username:
        return ["crl.proxy: name the user for crl.proxy_password (http://user@host:port)"]
    return []


def _is_loopback(host: str) -> bool:
    return host in {"localhost", "::1"} or host.startswith("127.")


def _check_database_url(url: str) -> list[str]:
    if not url:
        return []
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", url):
        return ["database.url: only sqlite:// and postgresql:// URLs are supported"]
    if re.match(r"^[^:]+://[^/@:]*:[^/@]*@", url):
        return ["database.url: contains a password; use database.password_env or _file"]
    return []


def _check_reminders(config: Config) -> list[str]:
    reminders = config.reminders
    problems: list[str] = []
    if reminders.enabled and not reminders.expiry_days:
        problems.append("reminders.expiry_days: empty; set enabled = false to send no reminders")
    if any(days <= 0 for days in reminders.expiry_days):
        problems.append("reminders.expiry_days: every threshold must be a positive number of days")
    if len(set(reminders.expiry_days)) != len(reminders.expiry_days):
        problems.append("reminders.expiry_days: a threshold is listed twice")
    if reminders.interval_minutes <= 0:
        problems.append("reminders.interval_minutes: must be positive")
    return problems


def _check_trust_list(config: Config) -> list[str]:
    trust_list = config.trust_list
    problems = []
    if trust_list.url is not None and not trust_list.url.startswith(("http://", "https://")):
        problems.append("trust_list.url: must be an http:// or https:// URL")
    if trust_list.refresh_hours <= 0:
        problems.append("trust_list.refresh_hours: must be positive")
    if trust_list.timeout_seconds <= 0:
        problems.append("trust_list.timeout_seconds: must be positive")
    if trust_list.max_size_mib <= 0:
        problems.append("trust_list.max_size_mib: must be positive")
    return problems


def _check_web(config: Config) -> list[str]:
    web = config.web
    problems: list[str] = []
    try:
        parse_listen(web.listen, loopback_only=False)
    except ValueError as exc:
        problems.append(f"web.listen: {exc}")
    for name in ("session_idle_minutes", "session_absolute_hours", "login_max_failures",
                 "login_window_minutes"):  # fmt: skip
        if getattr(web, name) <= 0:
            problems.append(f"web.{name}: must be positive")
    for index, proxy in enumerate(web.trusted_proxies):
        try:
            ipaddress.ip_address(proxy)
        except ValueError:
            problems.append(f"web.trusted_proxies[{index}]: {proxy!r} is not an IP address")
    if web.proxy_user_header:
        if not re.fullmatch(r"[A-Za-z0-9-]+", web.proxy_user_header):
            problems.append(f"web.proxy_user_header: {web.proxy_user_header!r} is no header name")
        if not web.trusted_proxies:
            problems.append(
                "web.proxy_user_header: set web.trusted_proxies too (the header is believed "
                "only from those addresses)"
            )
    return problems


def _check_report(config: Config) -> list[str]:
    report = config.report
    problems: list[str] = []
    if not 0 <= report.hour <= 23:
        problems.append(f"report.hour: must be 0-23, got {report.hour}")
    if report.expiring_days <= 0:
        problems.append("report.expiring_days: must be positive")
    if report.interval_minutes <= 0:
        problems.append("report.interval_minutes: must be positive")
    if report.enabled and not config.admin.alert_addresses:
        problems.append("report.enabled: the report goes to admin.alert_addresses, which is empty")
    return problems


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_INSTALL_PLACEHOLDERS = {"path", "thumbprint", "serial"}


def _check_placeholders(argument: str) -> list[str]:
    unknown = set(_PLACEHOLDER.findall(argument)) - _INSTALL_PLACEHOLDERS
    return [f"unknown placeholder {{{name}}}" for name in sorted(unknown)]


class _Converter:
    """Turns TOML values into dataclass field values, collecting problems."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[str] = []

    def section(
        self, cls: type[Any], table: Any, prefix: str, skip: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, Any]:
        if not isinstance(table, Mapping):
            self.problems.append(f"{prefix.rstrip('.')}: must be a table, got {_kind(table)}")
            return {}
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
        # Secret sources appear in TOML as <name>_env and <name>_file.
        accepted: dict[str, str] = {}
        for name in fields:
            if hints[name] is SecretSource:
                accepted[f"{name}_env"] = name
                accepted[f"{name}_file"] = name
            else:
                accepted[name] = name
        values: dict[str, Any] = {}
        for key, value in table.items():
            dotted = f"{prefix}{key}"
            if key not in accepted:
                if key in fields and hints[key] is SecretSource:
                    self.problems.append(
                        f"{dotted}: inline passwords are not allowed; use {key}_env or {key}_file"
                    )
                    continue
                hint = difflib.get_close_matches(key, list(accepted), n=1)
                suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
                self.problems.append(f"{dotted}: unknown key{suggestion}")
                continue
            name = accepted[key]
            if hints[name] is SecretSource:
                current = values.get(name, SecretSource())
                values[name] = self._secret(current, key, value, dotted)
            else:
                values[name] = self.value(hints[name], value, dotted)
        return values

    def _secret(self, current: SecretSource, key: str, value: Any, dotted: str) -> SecretSource:
        if not isinstance(value, str) or not value:
            self.problems.append(f"{dotted}: must be a non-empty string, got {_kind(value)}")
            return current
        if key.endswith("_env"):
            return dataclasses.replace(current, env=value)
        return dataclasses.replace(current, file=self._path(value))

    def value(self, annotation: Any, value: Any, dotted: str) -> Any:
        origin = get_origin(annotation)
        if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
            return annotation(**self.section(annotation, value, prefix=f"{dotted}."))
        if origin in (types.UnionType, typing.Union):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if value == "" and type(None) in get_args(annotation):
                return None
            return self.value(options[0], value, dotted)
        if origin is Literal:
            choices = get_args(annotation)
            if value not in choices:
                listed = ", ".join(repr(c) for c in choices)
                self.problems.append(f"{dotted}: must be one of {listed}, got {value!r}")
                return choices[0]
            return value
        if origin is tuple:
            (item_type, _ellipsis) = get_args(annotation)
            if not isinstance(value, list):
                self.problems.append(f"{dotted}: must be a list, got {_kind(value)}")
                return ()
            return tuple(self.value(item_type, v, f"{dotted}[{i}]") for i, v in enumerate(value))
        if annotation is Path:
            if not isinstance(value, str) or not value:
                self.problems.append(
                    f"{dotted}: must be a non-empty path string, got {_kind(value)}"
                )
                return Path()
            return self._path(value)
        if annotation is bool:
            if not isinstance(value, bool):
                self.problems.append(f"{dotted}: must be true or false, got {_kind(value)}")
            return value
        if annotation is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.problems.append(f"{dotted}: must be an integer, got {_kind(value)}")
                return 0
            if value < 0:
                self.problems.append(f"{dotted}: must not be negative, got {value}")
            return value
        if annotation is str:
            if not isinstance(value, str):
                self.problems.append(f"{dotted}: must be a string, got {_kind(value)}")
            return value
        raise TypeError(f"unsupported configuration type {annotation!r}")  # pragma: no cover

    def _path(self, text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.base / path


def _kind(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__) + f" ({value!r})"[:60]
