"""The directory as CSV: import with a preview, then the commit of that very file; export.

The import is ``mailbot import``: the same reader (Excel's encodings and
separators), the same checks, all or nothing. The preview runs
:func:`~mailbot.directory.csv_import.preview_csv`, which writes nothing; the
uploaded bytes wait server-side (:mod:`mailbot.web.uploads`) for the commit, which
applies exactly them. The export is ``mailbot export`` with its defaults.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from starlette.responses import RedirectResponse, Response

from mailbot.directory.bulk_load import DirectoryRow, RowOutcome
from mailbot.directory.csv_export import (
    DEFAULT_DELIMITER,
    DEFAULT_ENCODING,
    ExportEncodingError,
    encode_csv,
    export_rows,
)
from mailbot.directory.csv_format import DELIMITER_NAMES, NotCsvError
from mailbot.directory.csv_import import CsvImportError, ImportReport, import_csv, preview_csv
from mailbot.web import uploads
from mailbot.web.context import PageRequest
from mailbot.web.guard import PageGroup
from mailbot.web.roles import Role

PAGES = PageGroup()
#: Rows listed in a preview (the counts cover every row).
PREVIEW_ROWS = 1000
#: Problems listed in a preview.
PREVIEW_ERRORS = 200
_DELIMITERS = {name: delimiter for delimiter, name in DELIMITER_NAMES.items()}


@dataclass(frozen=True)
class PreviewRow:
    """One row of the file as the preview lists it."""

    line: int
    outcome: RowOutcome
    row: DirectoryRow


@PAGES.get("/directory/import", role=Role.OPERATOR)
def import_form(page: PageRequest) -> Response:
    """The upload form; after a commit, what it did (from the redirect's query)."""
    params = page.request.query_params
    done = {k: params[k] for k in ("added", "updated", "unchanged") if params.get(k, "").isdigit()}
    return page.render(
        "directory_import.html", done=done if len(done) == 3 else None, error=None, detail=""
    )


@PAGES.post("/directory/import/preview")
def import_preview(page: PageRequest) -> Response:
    """Keep the uploaded file and show what importing it would change, changing nothing."""
    upload = page.files.get("file")
    if upload is None:
        return _form_error(page, "no_file")
    try:
        token, sha256 = uploads.store(page.web.config, page.user.id, upload.file)
    except uploads.UploadTooLarge:
        return _form_error(page, "too_large")
    path = uploads.upload_dir(page.web.config) / f"{page.user.id}-{token}"
    rows: list[PreviewRow] = []

    def seen(line: int, row: DirectoryRow, outcome: RowOutcome) -> None:
        if len(rows) < PREVIEW_ROWS:
            rows.append(PreviewRow(line, outcome, row))

    with page.db() as session:
        try:
            report = preview_csv(session, path, seen)
        except NotCsvError as exc:
            uploads.discard(path)
            return _form_error(page, "not_csv", str(exc))
        except CsvImportError as exc:
            uploads.discard(path)  # nothing to commit
            report, rows = exc.report, []
        finally:
            session.rollback()  # the preview wrote nothing; end its read transaction
    return page.render(
        "directory_import_preview.html",
        filename=(upload.filename or "")[:200],
        report=report,
        errors=report.errors[:PREVIEW_ERRORS],
        rows=rows,
        token=token if not report.errors else "",
        sha256=sha256,
        shown_all=len(rows) >= report.rows,
    )


@PAGES.post("/directory/import/commit")
def import_commit(page: PageRequest) -> Response:
    """Apply the previewed file (all or nothing), audited, and forget it."""
    path = uploads.find(
        page.web.config,
        page.user.id,
        page.form.get("token", ""),
        page.form.get("sha256", ""),
    )
    if path is None:
        return _form_error(page, "upload_gone", status_code=409)
    with page.db() as session:
        try:
            report = import_csv(session, path)
        except (NotCsvError, CsvImportError) as exc:
            session.rollback()
            uploads.discard(path)
            problems = exc.report.errors if isinstance(exc, CsvImportError) else [str(exc)]
            return _form_error(page, "import_failed", "\n".join(problems[:PREVIEW_ERRORS]))
        page.audit(
            session, "directory.import", "directory",
            _counts(report) | {"sha256": page.form.get("sha256", "")},
        )  # fmt: skip
        session.commit()
    uploads.discard(path)
    query = urllib.parse.urlencode(
        {"added": report.rows_added, "updated": report.rows_updated,
         "unchanged": report.rows_unchanged}
    )  # fmt: skip
    return RedirectResponse(f"/directory/import?{query}", status_code=303)


@PAGES.get("/directory/export", role=Role.ADMIN)
def export(page: PageRequest) -> Response:
    """The directory as ``mailbot export`` writes it (whole SNILS: admins only, audited)."""
    with page.db() as session:
        try:
            lines = encode_csv(
                export_rows(session), DEFAULT_ENCODING, _DELIMITERS[DEFAULT_DELIMITER]
            )
        except ExportEncodingError as exc:
            return page.render("directory_import.html", status_code=409, done=None,
                               error="export_encoding", detail=str(exc))  # fmt: skip
        page.audit(session, "directory.export", "directory", {"lines": len(lines)})
        session.commit()
    return Response(
        b"".join(lines),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="directory.csv"'},
    )


def _counts(report: ImportReport) -> dict[str, int]:
    return {
        "rows": report.rows,
        "added": report.rows_added,
        "updated": report.rows_updated,
        "unchanged": report.rows_unchanged,
        "organisations_created": report.organisations_created,
        "addresses_added": report.addresses_added,
    }


def _form_error(
    page: PageRequest, reason: str, detail: str = "", status_code: int = 400
) -> Response:
    return page.render("directory_import.html", status_code=status_code, done=None,
                       error=reason, detail=detail)  # fmt: skip
