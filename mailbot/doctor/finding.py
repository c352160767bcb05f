"""What one check of ``mailbot doctor`` found: fine, or a cause and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.mail.smtp_link import scrub


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``[ok] name: detail`` or ``[FAIL] name: detail — remedy``."""

    ok: bool
    #: What was found (ok) or what is wrong (a failure); no secrets, one line.
    detail: str
    #: What the administrator should do; empty when ok.
    remedy: str = ""

    def line(self, name: str) -> str:
        """The report line for the check called *name*."""
        if self.ok:
            return f"[ok] {name}: {self.detail}"
        return f"[FAIL] {name}: {self.detail} — {self.remedy}"


def passed(detail: str) -> Finding:
    """A check that found nothing wrong."""
    return Finding(True, scrub(detail))


def failed(cause: str, remedy: str) -> Finding:
    """A check that failed: *cause* (scrubbed of secrets, one line) and what to do."""
    return Finding(False, scrub(cause), remedy)


def reason(exc: BaseException) -> str:
    """``Type: first line of the text`` of an exception (SQL errors quote whole statements)."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
