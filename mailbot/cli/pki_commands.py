"""``mailbot cert inspect`` and ``mailbot crl inspect``: look at certificates and CRLs.

Any input, however broken, ends in a one-line message and a non-zero exit
(via :class:`CliError`), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mailbot.cli.common import CliError, add_format_option, command_group
from mailbot.log import configure_logging
from mailbot.pki.certificate import Certificate
from mailbot.pki.crl import REASON_NAMES, parse_crl, to_der, verify_crl_signature
from mailbot.pki.crl_fetch import StaticCrlSource
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.errors import PkiError
from mailbot.pki.fields import certificate_fields
from mailbot.pki.issuer import (
    InMemoryCaDirectory,
    IssuerResolution,
    IssuerStatus,
    resolve_issuer,
)
from mailbot.pki.load import load_certificate, load_certificates
from mailbot.pki.validation import ValidationResult, validate

#: Bound on files read by these commands (a CRL may be big; certificates are tiny).
MAX_FILE_BYTES = 200 * 1024 * 1024


def register(subparsers: Any) -> None:
    """Add ``cert inspect`` and ``crl inspect``."""
    cert_sub = command_group(
        subparsers, "cert", "certificates", "Registered certificates and inspection."
    )
    inspect = cert_sub.add_parser(
        "inspect",
        help="show a certificate and, with issuers, a verdict",
        description="Show a certificate file's fields (SNILS, INN, OGRN, validity, key, "
        "extensions, thumbprint). With --issuer (and --crl): also validate it as a "
        "registration would, offline, and show the verdict with its evidence; "
        "exits 3 when the verdict is not 'valid'. Nothing is written to the database.",
    )
    inspect.add_argument(
        "file", type=Path, help="the certificate file: DER, PEM or PKCS#7 with one end-entity"
    )
    inspect.add_argument(
        "--issuer",
        type=Path,
        action="append",
        default=[],
        help="CA certificate file (repeatable; default: none, then no verdict)",
    )
    inspect.add_argument(
        "--crl",
        type=Path,
        action="append",
        default=[],
        help="CRL file (repeatable; default: none); no network is used",
    )
    inspect.add_argument("--at", default=None, help="validation time, ISO 8601 (default: now)")
    add_format_option(inspect, ["text", "json"])
    inspect.set_defaults(handler=cert_inspect)

    crl_sub = command_group(subparsers, "crl", "CRLs", "Inspect, list and refresh CRLs.")
    crl_inspect_p = crl_sub.add_parser(
        "inspect",
        help="show a CRL and check its signature",
        description="Show a CRL file's header, entry count and revocation reasons. "
        "With --issuer: also check its signature and whether it is current; "
        "exits 3 when the signature is bad.",
    )
    crl_inspect_p.add_argument("file", type=Path, help="the CRL file: DER or PEM")
    crl_inspect_p.add_argument(
        "--issuer",
        type=Path,
        default=None,
        help="the issuing CA's certificate file (default: none, then no signature check)",
    )
    add_format_option(crl_inspect_p, ["text", "json"])
    crl_inspect_p.set_defaults(handler=crl_inspect)


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CliError(f"{path}: {size} bytes is too large")
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--at: not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print(data: dict[str, Any], output_format: str) -> None:
    if output_format == "json":
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {value}")


def _quiet_logs() -> None:
    # Output goes to stdout (JSON may be piped); log lines belong on stderr, warnings only.
    configure_logging("console", "warning", sys.stderr)


def cert_inspect(args: argparse.Namespace) -> int:
    """Show a certificate; with ``--issuer`` also the verdict and its evidence."""
    _quiet_logs()
    try:
        cert = load_certificate(_read(args.file))
    except PkiError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    data = certificate_fields(cert)
    exit_code = 0
    if args.issuer:
        at = _parse_at(args.at)
        directory = InMemoryCaDirectory()
        for path in args.issuer:
            try:
                for ca in load_certificates(_read(path)):
                    directory.add(ca)
            except PkiError as exc:
                raise CliError(f"{path}: {exc}") from None
        with tempfile.TemporaryDirectory(prefix="mailbot-crl-") as tmp:
            store = CrlStore(Path(tmp))
            source = StaticCrlSource(store)
            resolution, result = _validate_with_crls(cert, directory, store, source, args.crl, at)
        data["validation_time"] = at.isoformat()
        data["issuer_thumbprint_sha1"] = resolution.ca.thumbprint_sha1 if resolution.ca else None
        data["signature"] = {IssuerStatus.FOUND: "ok", IssuerStatus.BAD_SIGNATURE: "bad"}.get(
            resolution.status
        )
        data["verdict"] = result.verdict.value
        data["reason"] = result.reason.value
        data["detail"] = result.detail
        data["evidence"] = result.to_dict()["evidence"]
        exit_code = 0 if result.verdict.value == "valid" else 3
    elif args.crl:
        raise CliError("--crl needs at least one --issuer")
    _print(data, args.format)
    return exit_code


def _validate_with_crls(
    cert: Certificate,
    directory: InMemoryCaDirectory,
    store: CrlStore,
    source: StaticCrlSource,
    crl_paths: list[Path],
    at: datetime,
) -> tuple[IssuerResolution, ValidationResult]:
    resolution = resolve_issuer(cert, directory)
    if resolution.ca is not None:
        for path in crl_paths:
            try:
                store.ingest(_read(path), resolution.ca, source_url=f"file:{path.name}", now=at)
            except PkiError as exc:
                raise CliError(f"{path}: {exc}") from None
    return resolution, validate(cert, directory, source, at)


def crl_inspect(args: argparse.Namespace) -> int:
    """Show a CRL's header and entry count; with ``--issuer`` check its signature."""
    _quiet_logs()
    try:
        crl = parse_crl(to_der(_read(args.file)))
    except PkiError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    h = crl.header
    data: dict[str, Any] = {
        "issuer": h.issuer.rfc4514(),
        "this_update": h.this_update.isoformat(),
        "next_update": h.next_update.isoformat() if h.next_update else None,
        "crl_number": h.number,
        "entries": crl.entry_count,
        "authority_key_identifier": (h.authority_key_identifier or b"").hex().upper() or None,
        "signature_algorithm": h.signature_algorithm.oid,
        "delta": h.is_delta,
        "sha256": h.sha256,
        "size": h.size,
    }
    if crl.records:
        reasons: dict[str, int] = {}
        for record in crl.records:
            name = REASON_NAMES.get(record[-1], "none")
            reasons[name] = reasons.get(name, 0) + 1
        data["reasons"] = reasons
    exit_code = 0
    if args.issuer is not None:
        try:
            ca = load_certificate(_read(args.issuer))
        except PkiError as exc:
            raise CliError(f"{args.issuer}: {exc}") from None
        ok = verify_crl_signature(crl, ca)
        data["issuer_thumbprint_sha1"] = ca.thumbprint_sha1
        data["signature"] = "ok" if ok else "bad"
        now = datetime.now(UTC)
        data["current"] = bool(
            h.next_update and h.this_update - timedelta(minutes=5) <= now < h.next_update
        )
        exit_code = 0 if ok else 3
    _print(data, args.format)
    return exit_code
