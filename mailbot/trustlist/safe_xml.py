"""A hardened, streaming XML reader for one big file of many similar records.

Built on expat directly (``xml.parsers.expat``), as defusedxml is, because the
reader needs its own event handlers anyway (for the size and depth limits) and
ElementTree's C parser offers no hook to refuse a DTD:

* any ``<!DOCTYPE`` is refused when it starts, before an entity can be declared
  (billion laughs, external entities); entity and external-reference handlers
  refuse too, as a second line. Nothing is ever fetched from the network;
* memory stays flat: the bytes are fed in chunks, the small texts of the
  header elements (children of the root before the first record) are kept,
  each record (a child of the root with the record name) is built as an
  ElementTree subtree and handed out as soon as it ends, and everything else
  is dropped as it streams past;
* nesting depth, the text of one element and the text of one record are
  bounded;
* names are namespace-agnostic: ``{uri}Тег`` and ``Тег`` both read as ``Тег``.

Every failure is a :class:`TrustListError` with a message for an administrator.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from xml.parsers import expat

from mailbot.trustlist.errors import TrustListError

# Namespace URI and local name are joined with this; "}" cannot occur in a URI's
# meaningful part here and mirrors ElementTree's "{uri}name" form.
_NS_SEPARATOR = "}"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one file may make the reader hold."""

    #: Real lists nest 8 deep; anything near this is an attack or not a list.
    max_depth: int = 32
    #: Characters of text in one element. A CA certificate is a few KB of base64;
    #: :data:`mailbot.pki.load.MAX_INPUT_BYTES` (1 MiB) of DER is ~1.4 M characters.
    max_text_chars: int = 4 * 1024 * 1024
    #: Characters of text in one record (one CA with all its certificates).
    max_record_chars: int = 64 * 1024 * 1024
    #: Bytes read from the source per feed.
    chunk_size: int = 64 * 1024


DEFAULT_LIMITS = Limits()


class Readable(Protocol):
    """A binary file object (an open file, ``io.BytesIO``, a response body)."""

    def read(self, size: int = ..., /) -> bytes:
        """Up to *size* bytes; ``b""`` at the end."""
        ...


@dataclass(frozen=True, slots=True)
class Record:
    """One record subtree (local names, no attributes) and the line it starts on."""

    element: ET.Element
    line: int


class _Refused(Exception):
    """Raised inside an expat handler; carries the administrator's message out of expat."""


def _local(name: str) -> str:
    return name.rpartition(_NS_SEPARATOR)[2]


class RecordStream:
    """Stream one XML file: the root's name is checked, header texts kept, records yielded.

    Build it, call :meth:`read_header`, then iterate :meth:`records`; after the
    last record :attr:`sha256` and :attr:`size` describe every byte read.
    """

    def __init__(
        self,
        source: Readable,
        *,
        root: str,
        record: str,
        header: frozenset[str],
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._source = source
        self._root_name = root
        self._record_name = record
        self._header_names = header
        self._limits = limits
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False
        self.header: dict[str, str] = {}
        # --- parser state (handlers below) ---
        self._depth = 0
        self._root_open = False
        self._root_closed = False
        self._records_started = 0
        self._builder: ET.TreeBuilder | None = None
        self._record_line = 0
        self._record_chars = 0
        self._text_chars = 0
        self._header_text: list[str] | None = None
        self._ready: deque[Record] = deque()
        self._parser = self._make_parser()

    # ------------------------------------------------------------------ the parser
    def _make_parser(self) -> expat.XMLParserType:
        parser = expat.ParserCreate(namespace_separator=_NS_SEPARATOR)
        parser.buffer_text = True
        parser.buffer_size = self._limits.chunk_size
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._refuse_doctype
        parser.EntityDeclHandler = self._refuse_entity
        parser.UnparsedEntityDeclHandler = self._refuse_entity
        parser.ExternalEntityRefHandler = self._refuse_external
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._data
        return parser

    def _where(self) -> str:
        return f"line {self._parser.CurrentLineNumber}"

    def _refuse_doctype(self, name: str, *_: object) -> None:
        if _local(name or "") != self._root_name:
            # An HTML error page from a portal or proxy usually starts like this.
            raise _Refused(
                f"the file starts with <!DOCTYPE {(name or '')[:40]}>: it is not the list of "
                "accredited CAs (a web page instead of the file?)"
            )
        raise _Refused(
            f"the file declares a DTD (<!DOCTYPE> at {self._where()}); the list of "
            "accredited CAs has none, and DTDs are refused because their entities "
            "can expand without bound or read local files"
        )

    def _refuse_entity(self, *_: object) -> None:
        raise _Refused(f"the file declares an XML entity ({self._where()}); entities are refused")

    def _refuse_external(self, *_: object) -> int:
        raise _Refused(f"the file refers to an external entity ({self._where()}); refused")

    def _start(self, name: str, _attributes: dict[str, str]) -> None:
        name = _local(name)
        self._depth += 1
        self._text_chars = 0
        if self._depth > self._limits.max_depth:
            raise _Refused(
                f"elements nest deeper than {self._limits.max_depth} levels ({self._where()})"
            )
        if self._depth == 1:
            if name != self._root_name:
                raise _Refused(
                    f"the root element is <{name}>, not <{self._root_name}>: "
                    "this is not the list of accredited CAs"
                )
            self._root_open = True
        elif self._builder is not None:
            self._builder.start(name, {})
        elif self._depth == 2 and name == self._record_name:
            self._records_started += 1
            self._record_line = self._parser.CurrentLineNumber
            self._record_chars = 0
            self._builder = ET.TreeBuilder()
            self._builder.start(name, {})
        elif self._depth == 2 and name in self._header_names:
            if self._records_started:
                raise _Refused(f"<{name}> comes after the first <{self._record_name}>")
            if name in self.header:
                raise _Refused(f"<{name}> appears twice ({self._where()})")
            self._header_text = []
        # Anything else outside a record is an unknown element: it streams past.

    def _end(self, name: str) -> None:
        name = _local(name)
        self._text_chars = 0
        if self._builder is not None:
            self._builder.end(name)
            if self._depth == 2:
                element = self._builder.close()
                self._builder = None
                self._ready.append(Record(element, self._record_line))
        elif self._depth == 2 and self._header_text is not None:
            self.header[name] = "".join(self._header_text)
            self._header_text = None
        elif self._depth == 1:
            self._root_closed = True
        self._depth -= 1

    def _data(self, text: str) -> None:
        if self._builder is None and self._header_text is None:
            return  # text of the root or of an unknown element: not kept
        self._text_chars += len(text)
        if self._text_chars > self._limits.max_text_chars:
            raise _Refused(
                f"an element holds more than {self._limits.max_text_chars} characters "
                f"of text ({self._where()})"
            )
        if self._header_text is not None:
            self._header_text.append(text)
            return
        assert self._builder is not None
        self._record_chars += len(text)
        if self._record_chars > self._limits.max_record_chars:
            raise _Refused(
                f"one <{self._record_name}> (from line {self._record_line}) holds more "
                f"than {self._limits.max_record_chars} characters of text"
            )
        self._builder.data(text)

    # ------------------------------------------------------------------ feeding
    def _feed_once(self) -> None:
        """Read and parse one chunk (the final parse at the end of the source)."""
        chunk = self._source.read(self._limits.chunk_size)
        if chunk:
            self._hash.update(chunk)
            self._size += len(chunk)
        else:
            self._done = True
        try:
            self._parser.Parse(chunk, self._done)
        except _Refused as exc:
            raise TrustListError(str(exc)) from None
        except expat.ExpatError as exc:
            raise TrustListError(self._explain(exc)) from None

    def _truncated(self) -> str:
        return (
            f"the file ends inside the list (after {self._size} bytes): it is truncated, "
            "was the download complete?"
        )

    def _explain(self, exc: expat.ExpatError) -> str:
        if self._size == 0:
            return "the file is empty"
        if self._done and self._root_open and not self._root_closed:
            return self._truncated()
        message = expat.ErrorString(exc.code)
        return (
            f"the file is not well-formed XML ({message} at line {exc.lineno}, "
            f"column {exc.offset}): it is not the list of accredited CAs or it is damaged"
        )

    def read_header(self) -> dict[str, str]:
        """Parse up to the first record (or the end); return the header texts by name."""
        while not self._done and not self._records_started:
            self._feed_once()
        return self.header

    def records(self) -> Iterator[Record]:
        """The records, each as soon as it is complete; raises :class:`TrustListError`."""
        while True:
            while self._ready:
                yield self._ready.popleft()
            if self._done:
                return
            self._feed_once()

    @property
    def finished(self) -> bool:
        """Whether the whole source has been read and parsed."""
        return self._done and not self._ready

    @property
    def sha256(self) -> str:
        """SHA-256 (lower-case hex) of the bytes read so far (all of them once finished)."""
        return self._hash.hexdigest()

    @property
    def size(self) -> int:
        """Bytes read so far."""
        return self._size
