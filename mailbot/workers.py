"""Starting one of mailbot's own modules as a worker process (``python -P -m module``).

A subprocess, not :mod:`multiprocessing`: spawn re-imports the parent's
``__main__``, and an exiting process gives all its memory back (docs/decisions.md,
"CRLs are indexed in a worker process"). The worker imports this very code, also
from a source checkout that is not installed, and never the working directory's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

#: The folder holding the ``mailbot`` package, so a worker imports this very code.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def worker_command(module: str, *arguments: str) -> list[str]:
    """The command line running *module* with this interpreter.

    ``-P``: never import from the working directory, whatever lies there.
    """
    return [sys.executable, "-P", "-m", module, *arguments]


def worker_environment(drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment with the package root first on ``PYTHONPATH``,
    without the variables named in *drop*."""
    environment = {k: v for k, v in os.environ.items() if k not in set(drop)}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_ROOT), environment.get("PYTHONPATH", "")) if p
    )
    return environment
