"""The checked-in JSON Schemas and AsyncAPI document are what the models generate today."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.generate import generated_files, main, stale_files, write_files


def test_the_checked_in_files_are_current() -> None:
    stale = stale_files()
    assert stale == [], f"stale: {[str(path) for path in stale]}; run `make contracts`"


def test_the_check_passes_on_the_checked_in_files() -> None:
    assert main(["--check"]) == 0


def test_generating_twice_gives_the_same_files() -> None:
    assert generated_files() == generated_files()


def test_an_edited_or_leftover_file_is_stale(tmp_path: Path) -> None:
    written = write_files(tmp_path)
    assert len(written) == 5
    assert stale_files(tmp_path) == []
    (tmp_path / "asyncapi.yaml").write_text("edited\n", encoding="utf-8")
    (tmp_path / "schemas" / "chat.archive.json").write_text("{}\n", encoding="utf-8")
    assert stale_files(tmp_path) == [
        tmp_path / "asyncapi.yaml",
        tmp_path / "schemas" / "chat.archive.json",
    ]


def test_a_missing_file_is_stale(tmp_path: Path) -> None:
    write_files(tmp_path)
    (tmp_path / "schemas" / "settings.events.json").unlink()
    assert stale_files(tmp_path) == [tmp_path / "schemas" / "settings.events.json"]


def test_the_check_names_the_stale_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_files(tmp_path)
    (tmp_path / "asyncapi.yaml").write_text("edited\n", encoding="utf-8")
    assert main(["--check"], root=tmp_path) == 1
    assert f"stale: {tmp_path / 'asyncapi.yaml'}" in capsys.readouterr().err


def test_generating_refuses_to_break_a_checked_in_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_files(tmp_path)
    path = tmp_path / "schemas" / "chat.events.json"
    checked_in = json.loads(path.read_text(encoding="utf-8"))
    checked_in["$defs"]["ChatDeleted"]["properties"]["reason"] = {"type": "string"}
    path.write_text(json.dumps(checked_in), encoding="utf-8")
    assert main([], root=tmp_path) == 1
    assert "chat.events: ChatDeleted.reason: field removed" in capsys.readouterr().err
    assert json.loads(path.read_text(encoding="utf-8")) == checked_in  # left as it was
    assert main(["--allow-breaking"], root=tmp_path) == 0
    assert stale_files(tmp_path) == []
