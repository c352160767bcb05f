"""SPEC step 4: the letter's attachments to the certificate file, ``no_cer`` or ``invalid_files``.

The archive's own rules live in :mod:`mailbot.mail.ziprules`; this module
applies the letter-level ones: exactly one attachment, and it must be a ZIP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailbot.config.schema import LimitsConfig
from mailbot.mail.attachments import Attachment
from mailbot.mail.ziprules import (
    CertificateFile,
    has_zip_extension,
    inspect_zip,
    is_zip_bytes,
)
from mailbot.regulation.decision import Outcome, RuleHit, Verdict, go_on, stop


@dataclass(frozen=True)
class AttachmentVerdict:
    """The check's verdict plus, when it passed, the certificate file."""

    verdict: Verdict
    certificate: CertificateFile | None


def check_attachments(
    attachments: Sequence[Attachment], limits: LimitsConfig, *, letter_oversized: bool = False
) -> AttachmentVerdict:
    """Apply SPEC step 4 to the attachments found in a letter."""
    if letter_oversized:
        # Only the header section of such a letter was read: whatever it carries is too big.
        return _no(
            Outcome.INVALID_FILES, "letter_size", f"letter over {limits.max_letter_bytes} bytes"
        )
    broken = [a for a in attachments if a.problem]
    if broken:
        return _no(Outcome.INVALID_FILES, "unacceptable_attachment", str(broken[0].problem))
    if not attachments:
        return _no(Outcome.NO_CER, "no_attachment", "the letter has no attachment")
    if len(attachments) > 1:
        names = ", ".join(repr(a.filename[:100]) for a in attachments[:10])
        names += ", …" if len(attachments) > 10 else ""
        return _no(
            Outcome.INVALID_FILES, "one_attachment", f"{len(attachments)} attachments: {names}"
        )
    attachment = attachments[0]
    if not is_zip_bytes(attachment.data):
        what = "a damaged ZIP" if has_zip_extension(attachment.filename) else "not a ZIP"
        return _no(Outcome.INVALID_FILES, "zip_attachment", f"{attachment.filename!r} is {what}")
    if not has_zip_extension(attachment.filename):
        return _no(
            Outcome.INVALID_FILES, "zip_extension", f"ZIP named {attachment.filename!r}, not *.zip"
        )
    result = inspect_zip(attachment.filename, attachment.data, limits)
    if result.certificate is None:
        outcome = result.outcome or Outcome.INVALID_FILES
        return _no(outcome, "zip_rules", result.reason)
    detail = f"{result.certificate.file_name} in {attachment.filename}"
    return AttachmentVerdict(go_on(RuleHit("zip_rules", False, detail)), result.certificate)


def _no(outcome: Outcome, rule: str, reason: str) -> AttachmentVerdict:
    return AttachmentVerdict(stop(outcome, reason, RuleHit(rule, True, reason)), None)
