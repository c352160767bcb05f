"""``mailbot ca`` and ``mailbot crl list|refresh`` on both databases, with a real CRL server."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.cli.main import main
from testkit import pki as factory
from tests.app.world import World
from tests.cli.test_process_cli import config_file


@pytest.fixture
def crl_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A local HTTP server serving whatever bytes the test puts under a path."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


def test_ca_lifecycle_and_crl_refresh(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    crl_server: tuple[str, dict[str, bytes]],
) -> None:
    base, files = crl_server
    config = ["--config", str(config_file(world, tmp_path))]
    new_ca = factory.make_ca("УЦ Новый", slot=9)
    ca_file = tmp_path / "new-ca.pem"
    ca_file.write_bytes(new_ca.pem())
    assert main(["ca", "add", str(ca_file), "--crl-url", f"{base}/new.crl", *config]) == 0
    out = capsys.readouterr().out
    assert "registered: УЦ Новый" in out
    assert f"  thumbprint (SHA-1): {new_ca.cert.thumbprint_sha1}\n" in out
    assert main(["ca", "add", str(ca_file), *config]) == 0
    assert "already registered" in capsys.readouterr().out
    assert main(["ca", "list", "--format", "json", *config]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == {"УЦ Тест", "УЦ Новый"}
    new_id = next(r["id"] for r in rows if r["name"] == "УЦ Новый")

    now = dt.datetime.now(dt.UTC)
    files["/new.crl"] = factory.make_crl(
        new_ca,
        this_update=now - dt.timedelta(hours=1),
        next_update=now + dt.timedelta(days=7),
        number=3,
    )
    # The test CA's only CRL (in the drop folder) is stale by the real clock: refresh reports it.
    assert main(["crl", "refresh", *config]) == 1
    out = capsys.readouterr().out
    assert f"CA {new_id} УЦ Новый: CRL 3" in out
    assert "УЦ Тест: NO CURRENT CRL" in out
    assert main(["crl", "list", "--format", "json", *config]) == 0
    listed = {r["ca"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["УЦ Новый"]["crl_number"] == 3
    assert listed["УЦ Новый"]["source"] == f"{base}/new.crl"

    assert main(["ca", "deactivate", str(new_id), *config]) == 0
    assert main(["ca", "show", str(new_id), "--format", "json", *config]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])[0]["active"] is False
    assert main(["ca", "reactivate", str(new_id), *config]) == 0
    assert main(["ca", "show", str(new_id), "--format", "json", *config]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])[0]["active"] is True


def test_ca_add_refuses_what_is_not_a_ca(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(config_file(world, tmp_path))]
    leaf = tmp_path / "leaf.cer"
    leaf.write_bytes(factory.make_end_entity(world.ca).der)
    assert main(["ca", "add", str(leaf), *config]) == 1
    assert "no CA certificate" in capsys.readouterr().err
    junk = tmp_path / "junk.cer"
    junk.write_bytes(b"\x30\x82\xff\xff garbage")
    assert main(["ca", "add", str(junk), *config]) == 1
    assert "Traceback" not in capsys.readouterr().err
