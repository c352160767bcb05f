"""Shared helpers of the alert tests: names, template copies, parsed letters."""

from __future__ import annotations

import shutil
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from mailbot.config import Config, config_from_mapping

ADMIN = "admin@fund.example"
SHIPPED = Path(__file__).resolve().parents[2] / "templates"


def cyrillic_name(length: int) -> str:
    """A CA-like name of *length* characters with a space every few letters."""
    words = "Удостоверяющий центр ООО «Тестовая компания связи и сертификации» номер один "
    return (words * (length // len(words) + 1))[:length].rstrip() or "УЦ"


def copy_templates(tmp_path: Path) -> Path:
    """A copy of the shipped templates folder, free to edit."""
    target = tmp_path / "templates"
    shutil.copytree(SHIPPED, target)
    return target


def parse(raw: bytes) -> EmailMessage:
    """A letter as a recipient's mail program reads it."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def alert_config(templates_dir: Path = SHIPPED) -> Config:
    """A configuration with one admin address and the given templates."""
    return config_from_mapping(
        {
            "smtp": {"from_address": "mailbot@fund.example"},
            "admin": {"alert_addresses": [ADMIN]},
            "paths": {"templates_dir": str(templates_dir)},
        }
    )
