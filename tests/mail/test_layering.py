"""mail/ reads letters and archives; it never imports the regulation that judges them."""

from __future__ import annotations

import ast
from pathlib import Path

import mailbot.mail

MAIL = Path(mailbot.mail.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_mail_does_not_import_regulation() -> None:
    modules = sorted(MAIL.glob("*.py"))
    assert len(modules) > 5  # the package was found
    upward = {
        f"{path.name}: {name}"
        for path in modules
        for name in _imported_modules(path)
        if name == "mailbot.regulation" or name.startswith("mailbot.regulation.")
    }
    assert upward == set()
