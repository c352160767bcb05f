"""A persistent, mmap'ed, binary-searched index of one CRL's revoked serials.

File layout (``<name>.idx``): an 8-byte magic, the record count (8 bytes, big
endian), then fixed-width records sorted as bytes (see :mod:`mailbot.pki.crl`):
serial key (24) ‖ revocation time "YYYYMMDDHHMMSS" (14) ‖ reason (1).
Opening costs an mmap; a lookup touches ~20 records, far under a millisecond
even for a million entries, and survives restarts without re-parsing.
A sibling ``<name>.json`` holds the CRL's metadata.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailbot.files import write_atomically
from mailbot.pki.crl import KEY_SIZE, NO_REASON, REASON_NAMES, RECORD_SIZE, serial_key
from mailbot.pki.errors import CrlError

MAGIC = b"MBRIDX1\x00"
HEADER_SIZE = 16


@dataclass(frozen=True)
class RevocationEntry:
    """A hit in the index."""

    revoked_at: datetime | None
    reason_code: int | None

    @property
    def reason(self) -> str | None:
        """RFC 5280 reason name."""
        return None if self.reason_code is None else REASON_NAMES.get(self.reason_code, "unknown")


@dataclass(frozen=True)
class IndexMeta:
    """What we know about the CRL behind an index (stored as JSON next to it)."""

    issuer: str
    authority_key_identifier: str  # hex of the CA's SKI the CRL was verified with
    ca_thumbprint_sha1: str
    this_update: str  # ISO 8601
    next_update: str | None
    crl_number: int | None
    entries: int
    sha256: str
    source_url: str | None
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: str | None = None

    @property
    def this_update_dt(self) -> datetime:
        """thisUpdate as a datetime."""
        return datetime.fromisoformat(self.this_update)

    @property
    def next_update_dt(self) -> datetime | None:
        """nextUpdate as a datetime, if any."""
        return datetime.fromisoformat(self.next_update) if self.next_update else None


def write_index(path: Path, records: list[bytes], meta: IndexMeta) -> None:
    """Persist sorted records and metadata (index first, so metadata never points at nothing)."""
    header = MAGIC + len(records).to_bytes(8, "big")
    # join in slices: one 40 MB bytes object at a time at most, not a second copy of the list
    step = 65536

    def chunks() -> Iterable[bytes]:
        yield header
        for i in range(0, len(records), step):
            yield b"".join(records[i : i + step])

    write_atomically(path, chunks())
    write_atomically(
        path.with_suffix(".json"), [json.dumps(asdict(meta), ensure_ascii=False, indent=1).encode()]
    )


class RevocationIndex:
    """Read side: an mmap of the ``.idx`` file plus its metadata."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.meta = IndexMeta(**json.loads(path.with_suffix(".json").read_text("utf-8")))
            with path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < HEADER_SIZE:
                    raise CrlError(f"index {path.name} is truncated")
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError, TypeError) as exc:
            raise CrlError(f"cannot open index {path.name}: {exc}") from None
        if self._map[:8] != MAGIC:
            raise CrlError(f"index {path.name} has a bad header")
        self.count = int.from_bytes(self._map[8:16], "big")
        if HEADER_SIZE + self.count * RECORD_SIZE != size:
            raise CrlError(f"index {path.name} has the wrong size")

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        """Release the mapping."""
        self._map.close()

    def lookup(self, serial: bytes) -> RevocationEntry | None:
        """The entry for a serial (DER INTEGER content bytes), or None if not revoked."""
        try:
            key = serial_key(serial)
        except CrlError:
            return None  # a serial longer than any indexed one cannot be listed
        mm = self._map
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            off = HEADER_SIZE + mid * RECORD_SIZE
            if mm[off : off + KEY_SIZE] < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < self.count:
            off = HEADER_SIZE + lo * RECORD_SIZE
            if mm[off : off + KEY_SIZE] == key:
                record = mm[off : off + RECORD_SIZE]
                return _entry(record)
        return None


def _entry(record: bytes) -> RevocationEntry:
    text = record[KEY_SIZE : KEY_SIZE + 14].decode("ascii", "replace")
    try:
        when: datetime | None = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        when = None  # revoked all the same; the date was garbled
    reason = record[-1]
    return RevocationEntry(when, None if reason == NO_REASON else reason)
