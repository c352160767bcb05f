"""The README's demo command works (run in-process, as ``scripts/demo`` does)."""

from __future__ import annotations

import pytest

from testkit.demo import main

pytestmark = pytest.mark.timeout(180)


def test_demo_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "Replies in ivanov@example.test's INBOX (4 of 4)" in out
    assert "выполнена успешно" in out
    assert "СНИЛС, указанный в сертификате отличается" in out
    assert "неизвестным системе удостоверяющим центром" in out
    assert "отсутствует файл сертификата" in out
    assert "stranger@example.test's INBOX: 0 letter(s)" in out
    assert "Demo succeeded" in out
