"""The console costs the daemon nothing: building the CLI neither hashes nor serves.

Every ``mailbot`` command, ``mailbot run`` included, builds the whole argument
parser and so imports every command module, ``web`` too. An argon2id hash made
at import took 64 MiB for a moment (the daemon's peak RSS went from 96 to 146 MB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
before = kib("VmRSS")
from mailbot.cli.main import build_parser
build_parser()
print(json.dumps({"grown_kib": kib("VmHWM") - before,
                  "web_stack": sorted(m for m in ("starlette", "uvicorn", "jinja2")
                                      if m in sys.modules)}))
"""


def test_building_the_cli_hashes_no_password_and_loads_no_web_server() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=60, check=False,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["web_stack"] == []
    # Importing every module costs ≈ 75 MB; one argon2id hash on top of it 64 MiB more.
    assert report["grown_kib"] < 110 * 1024, report
