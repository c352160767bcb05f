"""A corpus of hostile letters, built at run time (nothing large is committed).

Each :class:`Hostile` is a letter that an attacker, a broken mailer or a
confused client can put in the mailbox: huge or countless headers, absurd From
headers, deep MIME nesting, raw 8-bit and invalid UTF-8, NULs, bare CRs,
broken transfer encodings, countless parts or parameters, ZIP bombs. Unless
said otherwise they come from the trusted sender with the ``ADD_CERT`` subject,
so that they travel the whole intake down to the attachment rules.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

from testkit import letters as L  # noqa: N812

KIB = 1024
MIB = 1024 * KIB
GOOD_ZIP_NAME = "Иванов.zip"

NO_REPLY = frozenset({"no_reply"})
INVALID = frozenset({"invalid_files"})
NO_CER = frozenset({"no_cer"})
UNKNOWN = frozenset({"unknown_subject"})
ACCEPTED = frozenset({"certificate_checks_pending"})
#: Whatever the letter deserves, as long as it is one of these (the outcomes of steps 1-4).
ANY = NO_REPLY | INVALID | NO_CER | UNKNOWN | ACCEPTED


@dataclass(frozen=True)
class Hostile:
    """One hostile letter: a name, how to build it and the outcomes it may end in."""

    name: str
    build: Callable[[], bytes]
    expected: frozenset[str] = ANY


def good_zip() -> bytes:
    """The valid certificate ZIP the good letters carry."""
    return L.certificate_zip("Иванов.cer")


def good_letter(**kwargs: object) -> bytes:
    """A letter that passes intake: one ZIP with one matching ``.cer``."""
    return L.plain_zip_letter(GOOD_ZIP_NAME, good_zip(), **kwargs)


def set_header(raw: bytes, name: bytes, value: bytes) -> bytes:
    """*raw* with the first header *name* replaced by ``name: value`` (any bytes)."""
    pattern = re.compile(rb"^" + re.escape(name) + rb":[^\r\n]*\r\n", re.MULTILINE | re.IGNORECASE)
    return pattern.sub(lambda _m: name + b": " + value + b"\r\n", raw, count=1)


def add_headers(raw: bytes, lines: bytes) -> bytes:
    """*raw* with header *lines* (CRLF-terminated) put before its first header."""
    return lines + raw


def append_headers(raw: bytes, lines: bytes) -> bytes:
    """*raw* with header *lines* (CRLF-terminated) put after its last top-level header."""
    end = raw.index(b"\r\nMIME-Version: 1.0\r\n") + len(b"\r\nMIME-Version: 1.0\r\n")
    return raw[:end] + lines + raw[end:]


def attachment_letter(content_type: bytes, disposition: bytes | None, data: bytes) -> bytes:
    """A trusted ``ADD_CERT`` letter with a text body and one base64 leaf."""
    leaf = L.part(data, content_type, disposition)
    return L.letter(L.multipart("mixed", [L.text_part("x"), leaf], "hb"))


def raw_body_letter(content_type: bytes, body: bytes, encoding: bytes = b"7bit") -> bytes:
    """A trusted ``ADD_CERT`` letter whose body is *body*, written as is."""
    head = b"Content-Type: " + content_type + b"\r\nContent-Transfer-Encoding: " + encoding
    return L.letter(head + b"\r\n\r\n" + body)


def nested_multipart(depth: int) -> bytes:
    """The good ZIP attachment under *depth* levels of ``multipart/mixed``."""
    name = L.rfc2047(GOOD_ZIP_NAME).encode()
    body = L.part(good_zip(), b'application/zip; name="' + name + b'"', b"attachment")
    for level in range(depth):
        body = L.multipart("mixed", [body], f"n{level}")
    return L.letter(body)


def nested_messages(depth: int) -> bytes:
    """*depth* letters forwarded inside each other as ``message/rfc822``."""
    body = good_letter()
    for _ in range(depth):
        body = b"Content-Type: message/rfc822\r\n\r\n" + body
    return L.letter(body)


def nested_unterminated(depth: int) -> bytes:
    """*depth* multipart levels that are never closed, each opening the next."""
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="u%d"\r\n\r\n--u%d\r\n' % (i, i)
        for i in range(depth)
    )
    return L.letter(head + b"Content-Type: text/plain\r\n\r\nx\r\n")


def many_parts(count: int, named: bool) -> bytes:
    """*count* tiny leaves in one ``multipart/mixed``."""
    leaf = (
        b'Content-Type: application/zip; name="a.zip"\r\n\r\nx'
        if named
        else b"Content-Type: text/plain\r\n\r\nx"
    )
    return L.letter(L.multipart("mixed", [leaf] * count, "mp"))


def quadratic_content_types(count: int) -> bytes:
    """*count* leaves whose Content-Types (all different) cost the stdlib parser most per byte."""
    leaves = [
        b"Content-Type: text/plain; n=%d" % i + b";" * 1500 + b"\r\n\r\nx" for i in range(count)
    ]
    return L.letter(L.multipart("mixed", leaves, "qc"))


def rfc2231_continuations(count: int) -> bytes:
    """A file name in *count* RFC 2231 continuations, in both name parameters."""
    pieces = b";\r\n ".join(b"filename*%d*=%%D0%%98" % i for i in range(count))
    names = b";\r\n ".join(b"name*%d*=%%D0%%98" % i for i in range(count))
    return attachment_letter(
        b"application/zip;\r\n name*0*=UTF-8''x;\r\n " + names,
        b"attachment;\r\n filename*0*=UTF-8''x;\r\n " + pieces,
        good_zip(),
    )


def zip_bomb() -> bytes:
    """``Иванов.cer`` of 64 MB of zeros, deflated to about 64 KB."""
    entry = L.ZipEntry("Иванов.cer", b"\0" * (64 * MIB))
    return attachment_letter(
        b'application/zip; name="' + L.rfc2047(GOOD_ZIP_NAME).encode() + b'"',
        b"attachment",
        L.build_zip([entry]),
    )


def zip_bomb_lying() -> bytes:
    """A deflated stream of 64 MB of zeros whose header declares 100 bytes."""
    import zlib

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = compressor.compress(b"\0" * (64 * MIB)) + compressor.flush()
    entry = L.ZipEntry("Иванов.cer", b"x" * 100, compressed=stream, declared_size=100)
    return attachment_letter(
        b'application/zip; name="' + L.rfc2047(GOOD_ZIP_NAME).encode() + b'"',
        b"attachment",
        L.build_zip([entry]),
    )


def zip_many_entries(count: int) -> bytes:
    """A ZIP with *count* empty entries."""
    entries = [L.ZipEntry(f"{i}.cer", b"", method=L.STORED) for i in range(count)]
    return attachment_letter(
        b"application/zip", b'attachment; filename="a.zip"', L.build_zip(entries)
    )


def nested_zip(depth: int) -> bytes:
    """A ZIP inside a ZIP, *depth* times, named like the certificate."""
    data = good_zip()
    for _ in range(depth):
        data = L.build_zip([L.ZipEntry("Иванов.zip", data)])
    name = L.rfc2047(GOOD_ZIP_NAME).encode()
    return attachment_letter(b'application/zip; name="' + name + b'"', b"attachment", data)


def bare_cr(raw: bytes) -> bytes:
    """*raw* with every line ending a bare CR."""
    return raw.replace(b"\r\n", b"\r")


def corpus() -> list[Hostile]:
    """Every hostile letter, built lazily by its ``build``."""
    big = 2 * MIB
    return [
        # --- the header section ---------------------------------------------------------
        # A header section over 1 MiB is not read past that: a From below it is not seen.
        Hostile(
            "100k_headers_before_from",
            lambda: add_headers(
                good_letter(), b"".join(b"X-H%06d: v\r\n" % i for i in range(100_000))
            ),
            NO_REPLY,
        ),
        Hostile(
            "100k_headers_after_from",
            lambda: append_headers(
                good_letter(), b"".join(b"X-H%06d: v\r\n" % i for i in range(100_000))
            ),
            INVALID,
        ),
        Hostile(
            "50k_headers",
            lambda: add_headers(
                good_letter(), b"".join(b"X-H%d: v\r\n" % i for i in range(50_000))
            ),
            ACCEPTED,
        ),
        Hostile(
            "header_line_5mb",
            lambda: append_headers(good_letter(), b"X-Long: " + b"a" * 5 * MIB + b"\r\n"),
            INVALID,
        ),
        Hostile(
            "header_line_900kb",
            lambda: append_headers(good_letter(), b"X-Long: " + b"a" * 900 * KIB + b"\r\n"),
            ACCEPTED,
        ),
        Hostile(
            "header_folded_400k_times",
            lambda: append_headers(good_letter(), b"X-Folded: a" + b"\r\n b" * 400_000 + b"\r\n"),
            INVALID,
        ),
        Hostile(
            "header_folded_200k_times",
            lambda: append_headers(good_letter(), b"X-Folded: a" + b"\r\n b" * 200_000 + b"\r\n"),
            ACCEPTED,
        ),
        Hostile(
            "subject_of_900kb_spaces_then_add_cert",
            lambda: set_header(good_letter(), b"Subject", b" " * 900 * KIB + b"ADD_CERT"),
            ACCEPTED,
        ),
        Hostile(
            "references_200k_ids",
            lambda: append_headers(good_letter(), b"References: " + b"<a@b>" * 200_000 + b"\r\n"),
            ACCEPTED,
        ),
        Hostile(
            "header_section_without_colons",
            lambda: b"".join(b"junk line %d\r\n" % i for i in range(100_000)) + good_letter(),
            NO_REPLY,
        ),
        Hostile("subject_1mb", lambda: good_letter(subject="A" * MIB), UNKNOWN),
        Hostile(
            "subject_1mb_of_encoded_words",
            lambda: set_header(good_letter(), b"Subject", b"=?utf-8?b?0JA=?= " * (MIB // 17)),
            UNKNOWN,
        ),
        Hostile(
            "subject_encoded_words_unknown_charsets",
            lambda: set_header(
                good_letter(), b"Subject", b"=?x-bogus?q?=FF?= =?unknown-8bit?b?/w==?= " * 20_000
            ),
            UNKNOWN,
        ),
        Hostile(
            "subject_raw_utf8",
            lambda: set_header(good_letter(), b"Subject", "Сертификат".encode()),
            UNKNOWN,
        ),
        Hostile(
            "subject_invalid_utf8",
            lambda: set_header(good_letter(), b"Subject", b"\xff\xfe\xc0\xaf ADD"),
            UNKNOWN,
        ),
        Hostile(
            "subject_nul", lambda: set_header(good_letter(), b"Subject", b"ADD\x00CERT"), UNKNOWN
        ),
        Hostile(
            "subject_unknown_8bit_encoded_word",
            lambda: set_header(good_letter(), b"Subject", b"=?unknown-8bit?q?=FF=00?="),
            UNKNOWN,
        ),
        Hostile(
            "references_20k_ids",
            lambda: append_headers(
                good_letter(),
                b"References: "
                + b"<a@b> " * 20_000
                + b"\r\nIn-Reply-To: "
                + b"<c@d>" * 20_000
                + b"\r\n",
            ),
            ACCEPTED,
        ),
        Hostile(
            "message_id_raw_utf8",
            lambda: set_header(good_letter(), b"Message-ID", "<идентификатор@пример.рф>".encode()),
            ACCEPTED,
        ),
        Hostile(
            "message_id_invalid_utf8",
            lambda: set_header(good_letter(), b"Message-ID", b"<\xff\xfe@\xc0>"),
            ACCEPTED,
        ),
        Hostile(
            "message_id_nul",
            lambda: set_header(good_letter(), b"Message-ID", b"<a\x00b@c>"),
            ACCEPTED,
        ),
        Hostile(
            "in_reply_to_invalid_utf8",
            lambda: add_headers(
                good_letter(), b"In-Reply-To: <\xff@x>\r\nReferences: <\xfe@y> <\x00@z>\r\n"
            ),
            ACCEPTED,
        ),
        Hostile(
            "message_id_1mb",
            lambda: set_header(good_letter(), b"Message-ID", b"<" + b"a" * MIB + b">"),
            INVALID,
        ),
        Hostile(
            "message_id_100kb",
            lambda: set_header(good_letter(), b"Message-ID", b"<" + b"a" * 100 * KIB + b">"),
            ACCEPTED,
        ),
        # --- From -----------------------------------------------------------------------
        Hostile(
            "from_local_part_80kb",
            lambda: good_letter(sender="a" * 80 * KIB + "@clinic.example"),
            NO_REPLY,
        ),
        Hostile(
            "from_domain_80kb",
            lambda: good_letter(sender="ivanov@" + "к" * 80 * KIB + ".рф"),
            NO_REPLY,
        ),
        Hostile(
            "from_domain_label_80kb_punycode",
            lambda: good_letter(sender="ivanov@xn--" + "a" * 80 * KIB + ".example"),
            NO_REPLY,
        ),
        Hostile(
            "from_5000_addresses",
            lambda: set_header(
                good_letter(), b"From", b", ".join(b"a%d@clinic.example" % i for i in range(5000))
            ),
            NO_REPLY,
        ),
        Hostile(
            "from_5000_groups",
            lambda: set_header(
                good_letter(), b"From", b" ".join(b"g%d: a%d@x;" % (i, i) for i in range(5000))
            ),
            NO_REPLY,
        ),
        Hostile(
            "from_5000_headers",
            lambda: add_headers(
                good_letter(), b"".join(b"From: a%d@clinic.example\r\n" % i for i in range(5000))
            ),
            NO_REPLY,
        ),
        Hostile(
            "from_quadratic_2kb",
            lambda: set_header(
                good_letter(), b"From", b'"\\"' * 600 + b" <" + L.TRUSTED_SENDER.encode() + b">"
            ),
        ),
        Hostile(
            "from_1000_nested_comments",
            lambda: set_header(
                good_letter(), b"From", L.TRUSTED_SENDER.encode() + b" " + b"(" * 1000 + b")" * 1000
            ),
            NO_REPLY,
        ),
        Hostile(
            "precedence_100_values_of_encoded_words",
            lambda: append_headers(
                good_letter(), (b"Precedence: " + b"=?x?q?a?= " * 200 + b"\r\n") * 100
            ),
            ACCEPTED,
        ),
        Hostile(
            "from_20k_comments",
            lambda: set_header(
                good_letter(), b"From", b"(" * 20_000 + L.TRUSTED_SENDER.encode() + b")" * 20_000
            ),
            NO_REPLY,
        ),
        Hostile(
            "from_20k_quotes",
            lambda: set_header(
                good_letter(), b"From", b'"\\"' * 20_000 + b" <" + L.TRUSTED_SENDER.encode() + b">"
            ),
        ),
        Hostile(
            "from_20k_angle_brackets",
            lambda: set_header(
                good_letter(), b"From", b"<" * 20_000 + L.TRUSTED_SENDER.encode() + b">" * 20_000
            ),
            NO_REPLY,
        ),
        Hostile(
            "from_raw_utf8_untrusted",
            lambda: set_header(good_letter(), b"From", "пётр@пример.рф".encode()),
            NO_REPLY,
        ),
        Hostile(
            "from_invalid_utf8",
            lambda: set_header(good_letter(), b"From", b"iv\xffanov@clinic.example"),
            NO_REPLY,
        ),
        Hostile(
            "from_invalid_utf8_domain",
            lambda: set_header(good_letter(), b"From", b"ivanov@cl\xc0inic.example"),
            NO_REPLY,
        ),
        Hostile(
            "from_cp1251_display_name",
            lambda: set_header(
                good_letter(), b"From", b"\xc8\xe2\xe0\xed <" + L.TRUSTED_SENDER.encode() + b">"
            ),
            ACCEPTED,
        ),
        Hostile(
            "from_unknown_8bit_display_name",
            lambda: set_header(
                good_letter(),
                b"From",
                b"=?unknown-8bit?b?/w==?= <" + L.TRUSTED_SENDER.encode() + b">",
            ),
            ACCEPTED,
        ),
        Hostile(
            "from_encoded_word_local_part",
            lambda: set_header(good_letter(), b"From", b"=?utf-8?q?ivanov?=@clinic.example"),
            NO_REPLY,
        ),
        Hostile(
            "from_nul_in_address",
            lambda: set_header(good_letter(), b"From", b"ivanov\x00@clinic.example"),
            NO_REPLY,
        ),
        Hostile(
            "from_nul_after_address",
            lambda: set_header(good_letter(), b"From", L.TRUSTED_SENDER.encode() + b"\x00"),
            NO_REPLY,
        ),
        Hostile(
            "from_control_characters",
            lambda: set_header(good_letter(), b"From", b"ivanov\x01\x7f@clinic.example"),
            NO_REPLY,
        ),
        # A bare CR ends a line: "Bcc" becomes a header of its own, and is ignored.
        Hostile(
            "from_bare_cr_inside",
            lambda: set_header(good_letter(), b"From", b"ivanov@clinic.example\rBcc: x@y"),
            ACCEPTED,
        ),
        Hostile(
            "from_then_5kb_of_spaces_and_another",
            lambda: set_header(
                good_letter(),
                b"From",
                L.TRUSTED_SENDER.encode() + b" " * 5000 + b", evil@x.example",
            ),
            NO_REPLY,
        ),
        Hostile(
            "precedence_5000_headers_of_encoded_words",
            lambda: append_headers(
                good_letter(),
                b"Precedence: "
                + b"=?utf-8?q?a?= " * 200
                + b"\r\n" * 1
                + (b"Precedence: " + b"=?x?q?a?= " * 200 + b"\r\n") * 5000,
            ),
            INVALID | NO_REPLY,
        ),
        # --- line endings and bytes -------------------------------------------------------
        Hostile("bare_cr_line_endings", lambda: bare_cr(good_letter())),
        Hostile("bare_lf_line_endings", lambda: good_letter().replace(b"\r\n", b"\n"), ACCEPTED),
        Hostile("mixed_line_endings", lambda: good_letter().replace(b"\r\n", b"\n\r")),
        Hostile("no_line_ending_5mb", lambda: b"From: " + b"a" * 5 * MIB),
        Hostile("nul_bytes_everywhere", lambda: good_letter().replace(b"\r\n", b"\x00\r\n")),
        Hostile("only_nul_bytes", lambda: b"\x00" * MIB, NO_REPLY),
        Hostile("random_8bit_body", lambda: good_letter() + bytes(range(256)) * 4096),
        Hostile("empty", lambda: b"", NO_REPLY),
        # --- MIME structure -------------------------------------------------------------
        Hostile("multipart_nested_17", lambda: nested_multipart(17), INVALID),
        Hostile("multipart_nested_1000", lambda: nested_multipart(1000), INVALID),
        Hostile("multipart_nested_5000", lambda: nested_multipart(5000), INVALID),
        Hostile("message_rfc822_nested_1000", lambda: nested_messages(1000), INVALID),
        Hostile("multipart_unterminated_3000", lambda: nested_unterminated(3000), INVALID),
        Hostile(
            "multipart_deep_then_huge",
            lambda: nested_unterminated(15)[:-3] + b"x\r\n" * (big // 3),
            INVALID | NO_CER,
        ),
        Hostile("parts_50k_unnamed", lambda: many_parts(50_000, named=False), INVALID),
        Hostile("parts_400_unnamed", lambda: many_parts(400, named=False), NO_CER),
        Hostile("parts_400_named", lambda: many_parts(400, named=True), INVALID),
        Hostile("parts_50k_named", lambda: many_parts(50_000, named=True), INVALID),
        Hostile(
            "boundary_lines_only",
            lambda: raw_body_letter(b'multipart/mixed; boundary="b"', b"--b\r\n" * 200_000),
        ),
        Hostile(
            "boundary_empty",
            lambda: raw_body_letter(b'multipart/mixed; boundary=""', b"--\r\n" * 1000),
        ),
        Hostile(
            "boundary_missing", lambda: raw_body_letter(b"multipart/mixed", b"x\r\n" * 1000), NO_CER
        ),
        Hostile(
            "boundary_1mb",
            lambda: raw_body_letter(
                b'multipart/mixed; boundary="' + b"b" * MIB + b'"', b"--" + b"b" * MIB + b"\r\n"
            ),
        ),
        Hostile(
            "content_type_10k_params",
            lambda: attachment_letter(
                b"application/zip; " + b"; ".join(b"p%d=v" % i for i in range(10_000)),
                b"attachment",
                good_zip(),
            ),
            INVALID,
        ),
        Hostile("rfc2231_5000_continuations", lambda: rfc2231_continuations(5000), INVALID),
        Hostile("rfc2231_80_continuations", lambda: rfc2231_continuations(80), INVALID),
        Hostile(
            "quadratic_content_types_in_300_parts", lambda: quadratic_content_types(300), INVALID
        ),
        Hostile(
            "content_type_1000_nested_comments",
            lambda: attachment_letter(
                b"application/zip " + b"(" * 1000 + b")" * 1000, b"attachment", good_zip()
            ),
            INVALID,
        ),
        Hostile(
            "delivery_status_20k_blocks",
            lambda: L.letter(
                L.multipart(
                    "report",
                    [b"Content-Type: message/delivery-status\r\n\r\n" + b"A: b\r\n\r\n" * 20_000],
                    "ds",
                )
            ),
            NO_REPLY,
        ),
        Hostile(
            "digest_of_10k_messages",
            lambda: L.letter(L.multipart("digest", [b"\r\nSubject: x\r\n\r\ny"] * 10_000, "dg")),
            INVALID,
        ),
        Hostile(
            "html_with_100k_cids",
            lambda: L.letter(
                L.multipart("mixed", [L.text_part('<img src="cid:x">' * 100_000, "html")], "h")
            ),
            NO_CER,
        ),
        # --- transfer encodings and attachments -----------------------------------------
        Hostile(
            "broken_base64",
            lambda: L.letter(
                L.multipart(
                    "mixed",
                    [
                        b'Content-Type: application/zip; name="a.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
                        + b"@@@=*=!!\r\n" * 1000
                    ],
                    "bb",
                )
            ),
            INVALID,
        ),
        Hostile(
            "broken_quoted_printable",
            lambda: L.letter(
                L.multipart(
                    "mixed",
                    [
                        b'Content-Type: application/zip; name="a.zip"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
                        + b"=ZZ=\r\n=0" * 100_000
                    ],
                    "bq",
                )
            ),
            INVALID,
        ),
        Hostile(
            "base64_of_2mb_attachment",
            lambda: attachment_letter(
                b"application/zip", b'attachment; filename="a.zip"', b"\0" * big
            ),
            INVALID,
        ),
        Hostile(
            "unknown_transfer_encoding",
            lambda: L.letter(
                L.multipart(
                    "mixed",
                    [
                        b'Content-Type: application/zip; name="a.zip"\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n'
                        + b"M" * 60
                        + b"\r\nend\r\n"
                    ],
                    "bu",
                )
            ),
            INVALID,
        ),
        Hostile("zip_bomb", zip_bomb, INVALID),
        Hostile("zip_bomb_lying_sizes", zip_bomb_lying, INVALID),
        Hostile("zip_with_10k_entries", lambda: zip_many_entries(10_000), INVALID),
        # Step 4: a ZIP inside the ZIP is never opened, and a ZIP without a .cer is no_cer.
        Hostile("zip_in_zip_50_deep", lambda: nested_zip(50), NO_CER),
        Hostile(
            "winmail_dat_random",
            lambda: attachment_letter(
                b"application/ms-tnef",
                b'attachment; filename="winmail.dat"',
                bytes(range(256)) * 1000,
            ),
            INVALID,
        ),
        Hostile(
            "winmail_dat_10k_files",
            lambda: L.tnef_letter([(f"{i}.zip", b"x") for i in range(10_000)]),
            INVALID,
        ),
        Hostile(
            "filename_raw_invalid_utf8",
            lambda: attachment_letter(
                b"application/zip", b'attachment; filename="\xff\xfe\x00.zip"', good_zip()
            ),
            INVALID,
        ),
        Hostile(
            "filename_base64_encoded_word_of_1mb",
            lambda: attachment_letter(
                b"application/zip",
                b'attachment; filename="=?utf-8?b?' + base64.b64encode(b"a" * MIB) + b'?="',
                good_zip(),
            ),
            INVALID,
        ),
        # --- the whole letter -----------------------------------------------------------
        Hostile("oversized_letter", lambda: good_letter() + b"x" * (26 * MIB), INVALID),
    ]
