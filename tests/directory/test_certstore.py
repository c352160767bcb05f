"""The certificate store: atomic files named by thumbprint, install command, verification."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from mailbot.directory.certstore import CertificateStore, InstallError

THUMB = "A" * 40
DER = b"\x30\x03\x02\x01\x01"


def test_install_writes_the_file_once(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "store")
    first = store.install(DER, THUMB, "0191BE")
    assert first.created and first.path == tmp_path / "store" / f"{THUMB}.cer"
    assert first.path.read_bytes() == DER
    assert (
        stat.S_IMODE(first.path.stat().st_mode) == 0o640
    )  # personal data (SNILS): never readable by others
    again = store.install(DER, THUMB, "0191BE")
    assert not again.created
    assert [p.name for p in (tmp_path / "store").iterdir()] == [f"{THUMB}.cer"]


def test_names_from_outside_are_never_paths(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path)
    with pytest.raises(ValueError, match="thumbprint"):
        store.install(DER, "../../etc/passwd", "01")
    with pytest.raises(ValueError, match="serial"):
        store.install(DER, THUMB, "01; rm -rf /")


def test_install_command_gets_placeholders(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    script = f"import sys; open({str(log)!r}, 'w').write(' '.join(sys.argv[1:]))"
    store = CertificateStore(
        tmp_path / "store", (sys.executable, "-c", script, "{path}", "{thumbprint}", "{serial}")
    )
    stored = store.install(DER, THUMB, "0191BE")
    assert log.read_text() == f"{stored.path} {THUMB} 0191BE"


def test_failing_install_command_leaves_nothing(tmp_path: Path) -> None:
    script = "import sys; sys.stderr.write('Ошибка: хранилище недоступно\\n'); sys.exit(3)"
    store = CertificateStore(tmp_path / "store", (sys.executable, "-c", script))
    with pytest.raises(InstallError) as failed:
        store.install(DER, THUMB, "01")
    # The command's own words, passed on as they are (phrase command_output = "{output}").
    assert (failed.value.key, failed.value.values) == (
        "command_output",
        {"output": "Ошибка: хранилище недоступно"},
    )
    assert list((tmp_path / "store").iterdir()) == []


def test_install_command_missing_or_hanging(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path, ("/nonexistent/certmgr", "{path}"))
    with pytest.raises(InstallError) as missing:
        store.install(DER, THUMB, "01")
    assert (missing.value.key, missing.value.values) == (
        "command_not_found",
        {"command": "/nonexistent/certmgr"},
    )
    slow = CertificateStore(tmp_path, (sys.executable, "-c", "import time; time.sleep(5)"), 0.5)
    with pytest.raises(InstallError) as hanging:
        slow.install(DER, THUMB, "01")
    assert (hanging.value.key, hanging.value.values) == ("command_timeout", {"seconds": "0.5"})
    assert not (tmp_path / f"{THUMB}.cer").exists()


def test_unwritable_store_is_an_install_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = CertificateStore(blocker / "store")
    with pytest.raises(InstallError) as failed:
        store.install(DER, THUMB, "01")
    assert (failed.value.key, failed.value.values) == ("write_failed", {"reason": "no_folder"})
    assert "Not a directory" in (failed.value.detail or "")


def test_verify_reports_both_directions(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path)
    kept = store.install(DER, THUMB, "01").path
    stray = store.install(DER, "B" * 40, "02").path
    report = store.verify([(THUMB, str(kept)), ("C" * 40, str(tmp_path / f"{'C' * 40}.cer"))])
    assert not report.consistent
    assert report.files_without_rows == [str(stray)]
    assert report.rows_without_files == [f"{'C' * 40} ({tmp_path / ('C' * 40 + '.cer')})"]
