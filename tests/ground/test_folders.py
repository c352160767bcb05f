"""The working folders: created with their table's mode, existing ones left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.config import Config
from mailbot.config.schema import GeneralConfig, PathsConfig
from mailbot.folders import FolderError, create_folder, prepare_folders, probe_writable


def test_created_with_the_modes_of_the_table(tmp_path: Path) -> None:
    config = Config(general=GeneralConfig(state_dir=tmp_path / "a" / "state"))
    created = prepare_folders(config)
    state = tmp_path / "a" / "state"
    assert created[0] == state
    assert {p.name: p.stat().st_mode & 0o777 for p in [state, *state.iterdir()]} == {
        "state": 0o700,
        "store": 0o750,
        "quarantine": 0o700,
        "archive": 0o700,
        "crl": 0o700,
        "crl-drop": 0o700,
    }
    assert prepare_folders(config) == []


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir(mode=0o755)
    (tmp_path / "archive").chmod(0o755)
    config = Config(general=GeneralConfig(state_dir=tmp_path))
    prepare_folders(config)
    assert (tmp_path / "archive").stat().st_mode & 0o777 == 0o755


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "drop"
    taken.write_bytes(b"")
    config = Config(
        general=GeneralConfig(state_dir=tmp_path / "state"),
        paths=PathsConfig(crl_drop_dir=taken),
    )
    with pytest.raises(
        FolderError, match=r"paths\.crl_drop_dir: .*drop exists and is not a folder"
    ):
        prepare_folders(config)


def test_create_folder_under_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(FolderError, match="cannot create"):
        create_folder(tmp_path / "file" / "sub", 0o700)


def test_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    probe_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        probe_writable(tmp_path / "missing")
