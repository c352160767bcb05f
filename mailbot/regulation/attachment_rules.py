"""Step 4: the letter's attachments to the certificate file, ``no_cer`` or ``invalid_files``.

Two chains of rules, each ended by the first rule that fails: the letter's
(:func:`check_attachments`: exactly one attachment, and it must be a ZIP) and
the archive's (:func:`inspect_zip`: one ``.cer`` named like the archive, safe,
small, readable and shaped like a certificate). Reading is not done here:
:mod:`mailbot.mail.attachments` finds the attachments and
:mod:`mailbot.mail.ziparchive` opens the archive and reports its facts.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

from mailbot.config.schema import LimitsConfig
from mailbot.mail.attachments import Attachment
from mailbot.mail.ziparchive import (
    CertificateFile,
    ZipArchive,
    has_zip_extension,
    is_unsafe_name,
    is_zip_bytes,
    open_zip,
    sniff_certificate,
    stem,
)
from mailbot.regulation.decision import Outcome, RuleHit, Verdict, go_on, stop

#: More entries than this is not a certificate archive; don't even look at their names.
MAX_ENTRIES = 256
#: Stored and deflated: what every archiver writes for a small file.
_SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})


@dataclass(frozen=True)
class AttachmentVerdict:
    """The check's verdict plus, when it passed, the certificate file."""

    verdict: Verdict
    certificate: CertificateFile | None


@dataclass(frozen=True)
class ZipVerdict:
    """Either the certificate file, or the outcome (``no_cer``/``invalid_files``) and why."""

    certificate: CertificateFile | None
    outcome: Outcome | None
    reason: str


def check_attachments(
    attachments: Sequence[Attachment], limits: LimitsConfig, *, letter_oversized: bool = False
) -> AttachmentVerdict:
    """Apply step 4 to the attachments found in a letter."""
    # 1. The letter was read in full: of an oversized one only the header section was.
    if letter_oversized:
        return _no(
            Outcome.INVALID_FILES, "letter_size", f"letter over {limits.max_letter_bytes} bytes"
        )
    # 2. No attachment that can never be acceptable (forwarded, oversized, unreadable).
    broken = [a for a in attachments if a.problem]
    if broken:
        return _no(Outcome.INVALID_FILES, "unacceptable_attachment", str(broken[0].problem))
    # 3. An attachment at all, and 4. only one.
    if not attachments:
        return _no(Outcome.NO_CER, "no_attachment", "the letter has no attachment")
    if len(attachments) > 1:
        names = ", ".join(repr(a.filename[:100]) for a in attachments[:10])
        names += ", …" if len(attachments) > 10 else ""
        return _no(
            Outcome.INVALID_FILES, "one_attachment", f"{len(attachments)} attachments: {names}"
        )
    attachment = attachments[0]
    # 5. A ZIP by its bytes, and 6. by its name.
    if not is_zip_bytes(attachment.data):
        what = "a damaged ZIP" if has_zip_extension(attachment.filename) else "not a ZIP"
        return _no(Outcome.INVALID_FILES, "zip_attachment", f"{attachment.filename!r} is {what}")
    if not has_zip_extension(attachment.filename):
        return _no(
            Outcome.INVALID_FILES, "zip_extension", f"ZIP named {attachment.filename!r}, not *.zip"
        )
    # 7. The archive's own rules.
    result = inspect_zip(attachment.filename, attachment.data, limits)
    if result.certificate is None:
        outcome = result.outcome or Outcome.INVALID_FILES
        return _no(outcome, "zip_rules", result.reason)
    detail = f"{result.certificate.file_name} in {attachment.filename}"
    return AttachmentVerdict(go_on(RuleHit("zip_rules", False, detail)), result.certificate)


def _no(outcome: Outcome, rule: str, reason: str) -> AttachmentVerdict:
    return AttachmentVerdict(stop(outcome, reason, RuleHit(rule, True, reason)), None)


def inspect_zip(zip_name: str, data: bytes, limits: LimitsConfig) -> ZipVerdict:
    """Apply step 4's archive rules to one ZIP attachment; never raises."""
    # 1. The archive's size, before anything is read from it; 2. it opens.
    if len(data) > limits.max_attachment_bytes:
        return _reject(f"archive larger than {limits.max_attachment_bytes} bytes")
    opened = open_zip(data)
    if isinstance(opened, str):
        return _reject(opened)
    with opened as archive:
        return _archive_rules(zip_name, archive, limits)


def _archive_rules(zip_name: str, archive: ZipArchive, limits: LimitsConfig) -> ZipVerdict:
    # 3. Few entries (their names are decoded only then), 4. none overlapping.
    if archive.entry_count > MAX_ENTRIES:
        return _reject(f"archive has {archive.entry_count} entries")
    problem = archive.layout_problem()
    if problem:
        return _reject(problem)

    # 5. A .cer file inside (else no_cer), 6. no dangerous name, 7. no other file.
    entries = archive.entries()
    files = [entry for entry in entries if not entry.is_folder]
    certificates = [entry for entry in files if entry.is_cer]
    if not certificates:
        return _reject("archive holds no .cer file", Outcome.NO_CER)
    if any(is_unsafe_name(entry.name) for entry in entries):
        return _reject("entry name with '..', an absolute path or control characters")
    if len(files) > 1:
        return _reject(f"archive holds {len(files)} files; only one .cer is allowed")
    entry = certificates[0]

    # 8. Named like the archive.
    if stem(zip_name, ".zip") != stem(entry.name, ".cer"):
        return _reject("archive name differs from the certificate file name")
    # 9. Readable without a password or an exotic method, 10. small, 11. no bomb.
    if entry.encrypted:
        return _reject("encrypted entry")
    if entry.method not in _SUPPORTED_METHODS:
        return _reject(f"unsupported compression method {entry.method}")
    if entry.declared_size > limits.max_zip_entry_bytes:
        return _reject(f"entry declares {entry.declared_size} bytes")
    if entry.declared_size > limits.max_compression_ratio * max(entry.compressed_size, 1):
        return _reject("compression ratio too high (possible zip bomb)")

    # 12. It inflates within the cap with a good CRC, 13. into one certificate's shape.
    content = archive.read(entry, limits.max_zip_entry_bytes)
    if isinstance(content, str):
        return _reject(content)
    encoding = sniff_certificate(content)
    if encoding is None:
        return _reject("the .cer file is neither DER nor PEM X.509")
    return ZipVerdict(CertificateFile(zip_name, entry.name, content, encoding), None, "")


def _reject(reason: str, outcome: Outcome = Outcome.INVALID_FILES) -> ZipVerdict:
    return ZipVerdict(None, outcome, reason)
