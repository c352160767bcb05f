"""``mailbot cert inspect`` / ``mailbot crl inspect`` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailbot.cli.main import main
from testkit import pki
from testkit.pki import NOW, Revoked
from tests.logs import _reset_logging  # noqa: F401  (autouse, as in its old folder)
from tests.pki.conftest import DATA


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ca = pki.make_ca(slot=71)
    good = pki.make_end_entity(ca, serial=0x5001)
    bad = pki.make_end_entity(ca, serial=0x5002)
    out = {
        "ca": tmp_path / "ca.cer",
        "good": tmp_path / "good.cer",
        "bad": tmp_path / "bad.cer",
        "crl": tmp_path / "ca.crl",
        "junk": tmp_path / "junk.cer",
    }
    out["ca"].write_bytes(ca.der)
    out["good"].write_bytes(good.pem())
    out["bad"].write_bytes(bad.der)
    out["crl"].write_bytes(pki.make_crl(ca, [Revoked(0x5002)], number=42))
    out["junk"].write_bytes(b"\x30\x82\x05\x00garbage")
    return out


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, object]]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_cert_inspect_verdicts(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    common = [
        "--issuer",
        str(files["ca"]),
        "--crl",
        str(files["crl"]),
        "--at",
        NOW.isoformat(),
        "--format",
        "json",
    ]
    code, data = _json(capsys, ["cert", "inspect", str(files["good"]), *common])
    assert code == 0
    assert data["verdict"] == "valid" and data["signature"] == "ok"
    assert data["serial"] == "5001" and data["snils"] == "11223344595"
    assert data["subject_cn"] == "Иванов Иван Иванович"
    assert data["issuer_thumbprint_sha1"] and data["thumbprint_sha1"]
    assert data["not_before"] and data["not_after"] and data["reason"] == "ok"
    code, data = _json(capsys, ["cert", "inspect", str(files["bad"]), *common])
    assert code == 3 and data["verdict"] == "invalid" and data["reason"] == "revoked"
    code, data = _json(
        capsys,
        [
            "cert",
            "inspect",
            str(files["good"]),
            "--issuer",
            str(DATA / "mincifry_root_2022.cer"),
            "--format",
            "json",
        ],
    )
    assert data["verdict"] == "unknown_ca"


def test_cert_inspect_shows_an_invalid_public_key(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = pki.make_ca(slot=71)
    key = pki.key_with_point(pki.GOST256, "1.2.643.2.2.35.1", 12345, 67890)
    doctored = tmp_path / "doctored.cer"
    doctored.write_bytes(pki.make_end_entity(ca, key=key).der)
    code, data = _json(capsys, ["cert", "inspect", str(doctored), "--format", "json"])
    assert code == 0
    assert data["public_key"] == "invalid: the GOST public key is not a point on the curve"
    code, data = _json(
        capsys,
        ["cert", "inspect", str(doctored), "--issuer", str(files["ca"]), "--at", NOW.isoformat(),
         "--format", "json"],
    )  # fmt: skip
    assert code == 3
    assert (data["verdict"], data["reason"]) == ("invalid", "invalid_public_key")
    assert main(["cert", "inspect", str(files["good"])]) == 0
    assert "public_key: valid\n" in capsys.readouterr().out


def test_crl_inspect(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, data = _json(
        capsys,
        ["crl", "inspect", str(files["crl"]), "--issuer", str(files["ca"]), "--format", "json"],
    )
    assert code == 0
    assert data["crl_number"] == 42 and data["entries"] == 1 and data["signature"] == "ok"
    assert data["issuer"] and data["this_update"] and data["next_update"]
    code, data = _json(
        capsys,
        [
            "crl",
            "inspect",
            str(files["crl"]),
            "--issuer",
            str(DATA / "mincifry_root_2022.cer"),
            "--format",
            "json",
        ],
    )
    assert code == 3 and data["signature"] == "bad"


@pytest.mark.parametrize("target", ["junk", "missing", "crl-as-cert", "cert-as-crl"])
def test_broken_input_is_a_message_not_a_traceback(files: dict[str, Path], target: str) -> None:
    args = {
        "junk": ["cert", "inspect", str(files["junk"])],
        "missing": ["cert", "inspect", str(files["junk"]) + ".nope"],
        "crl-as-cert": ["cert", "inspect", str(files["crl"])],
        "cert-as-crl": ["crl", "inspect", str(files["good"])],
    }[target]
    r = subprocess.run(
        [sys.executable, "-m", "mailbot", *args], capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("mailbot: ")


def test_doctor_reports_gost_backend(capsys: pytest.CaptureFixture[str]) -> None:
    from mailbot.config import load_config
    from mailbot.doctor import CHECKS
    from mailbot.doctor.local_checks import check_gost_backend

    finding = check_gost_backend(load_config(None))
    assert ("gost hashing", check_gost_backend) in CHECKS
    assert finding.ok and "hashing:" in finding.detail
