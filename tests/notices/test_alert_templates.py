"""Alert texts come from ``templates/alerts/``: checked at load like reply templates,
rendered with exactly their placeholders, and every alert Subject keeps its spaces."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailbot.app.assembly import load_rules_and_templates
from mailbot.config import config_from_mapping
from mailbot.notices.alerts import build_alert_letter
from mailbot.notices.templates import (
    ALERT_DIR,
    ALERT_PLACEHOLDERS,
    TemplateError,
    alert_templates,
    load_templates,
)
from tests.notices.helpers import SHIPPED, alert_config, copy_templates, cyrillic_name, parse

#: Names of several lengths: short, around a folded line, far beyond one.
NAME_LENGTHS = [10, 23, 37, 50, 64, 77, 101, 150, 200]

SUBJECT_KINDS = sorted(
    n.removesuffix(".subject") for n in ALERT_PLACEHOLDERS if n.endswith(".subject")
)


@pytest.mark.parametrize("kind", SUBJECT_KINDS)
def test_every_alert_subject_keeps_every_space(kind: str) -> None:
    config = alert_config()
    texts = alert_templates(config.templates_dir)
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    for length in NAME_LENGTHS:
        values = {name: cyrillic_name(length) for name in ALERT_PLACEHOLDERS[f"{kind}.subject"]}
        subject = texts.subject(kind, values)
        letter = parse(bytes(build_alert_letter(config, subject, "текст", now=now)))
        decoded = str(letter["Subject"])
        assert decoded == f"[{config.general.instance_name}] {subject}", (kind, length)


# -- (c) every alert template is loaded, checked and rendered ---------------------------------


@pytest.mark.parametrize("name", sorted(ALERT_PLACEHOLDERS))
def test_every_alert_template_renders_with_its_placeholders(name: str) -> None:
    texts = load_templates(SHIPPED).alerts
    assert texts is not None
    values = {p: f"<{p.upper()}>" for p in ALERT_PLACEHOLDERS[name]}
    rendered = texts.render(name, values)
    assert rendered.strip()
    assert all(v in rendered for v in values.values())
    assert "{" not in rendered and "}" not in rendered
    with pytest.raises(TemplateError, match="takes"):
        texts.render(name, {**values, "extra": "x"})


@pytest.mark.parametrize("name", sorted(n for n, p in ALERT_PLACEHOLDERS.items() if p))
def test_a_missing_placeholder_is_an_error_at_start(name: str, tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    path = templates / ALERT_DIR / f"{name}.txt"
    dropped = sorted(ALERT_PLACEHOLDERS[name])[0]
    path.write_text(path.read_text(encoding="utf-8").replace(f"{{{dropped}}}", ""), "utf-8")
    config = config_from_mapping({"paths": {"templates_dir": str(templates)}})
    with pytest.raises(TemplateError) as caught:
        load_rules_and_templates(config)
    assert f"{path}: missing placeholder {{{dropped}}}" in str(caught.value)


def test_an_unknown_placeholder_or_a_missing_file_is_an_error_at_start(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    (templates / ALERT_DIR / "forgery.subject.txt").write_text("Подделка {serial} {sender}\n")
    (templates / ALERT_DIR / "poison_letter.txt").unlink()
    with pytest.raises(TemplateError) as caught:
        load_templates(templates)
    problems = str(caught.value).splitlines()
    assert (
        f"{templates / ALERT_DIR / 'forgery.subject.txt'}: unknown placeholder {{sender}}"
        in problems
    )
    assert f"{templates / ALERT_DIR / 'poison_letter.txt'}: missing" in problems


def test_every_shipped_alert_template_is_declared() -> None:
    """A file nobody reads would be an edit with no effect."""
    shipped = {p.name.removesuffix(".txt") for p in (SHIPPED / ALERT_DIR).glob("*.txt")}
    assert shipped == set(ALERT_PLACEHOLDERS)
