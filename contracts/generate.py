"""Writes the topics' JSON Schemas and the AsyncAPI document from the models (`make contracts`).

`python -m contracts.generate --check` only compares: it exits 1 naming the stale files. Writing
refuses a breaking change to a checked-in schema unless `--allow-breaking` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from contracts.asyncapi import asyncapi_document
from contracts.codec import ADAPTERS_BY_TOPIC
from contracts.compatibility import breaking_changes
from contracts.topics import EVENT_TOPICS, TopicSpec

CONTRACTS_DIR = Path(__file__).resolve().parent
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def topic_schema(spec: TopicSpec) -> dict[str, Any]:
    """The JSON Schema of every value on one topic: the union of its event types."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": spec.name,
        "description": f"{spec.description} Key: {spec.key}.",
        **ADAPTERS_BY_TOPIC[spec.name].json_schema(),
    }


def schema_path(root: Path, topic: str) -> Path:
    return root / "schemas" / f"{topic}.json"


def generated_files(root: Path = CONTRACTS_DIR) -> dict[Path, str]:
    """Every generated file under `root` with the text it must have."""
    files = {
        schema_path(root, spec.name): json.dumps(
            topic_schema(spec), indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n"
        for spec in EVENT_TOPICS
    }
    files[root / "asyncapi.yaml"] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    return files


def stale_files(root: Path = CONTRACTS_DIR) -> list[Path]:
    """Generated files that are missing or differ, and schemas of topics that no longer exist."""
    expected = generated_files(root)
    stale = [path for path, text in expected.items() if _read(path) != text]
    leftovers = set((root / "schemas").glob("*.json")) - expected.keys()
    return stale + sorted(leftovers)


def incompatible_changes(root: Path = CONTRACTS_DIR) -> list[str]:
    """Breaking changes of the models against the checked-in schemas, each naming its topic."""
    changes = []
    for spec in EVENT_TOPICS:
        checked_in = _read(schema_path(root, spec.name))
        if checked_in is not None:
            old = json.loads(checked_in)
            new = topic_schema(spec)
            changes += [f"{spec.name}: {change}" for change in breaking_changes(old, new)]
    return changes


def write_files(root: Path = CONTRACTS_DIR) -> list[Path]:
    """Writes what changed; returns the files written."""
    written = []
    for path, text in generated_files(root).items():
        if _read(path) != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None, root: Path = CONTRACTS_DIR) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="write even if a checked-in schema would change incompatibly",
    )
    options = parser.parse_args(argv)
    if options.check:
        return check(root)
    return generate(root, allow_breaking=options.allow_breaking)


def check(root: Path = CONTRACTS_DIR) -> int:
    """0 when the checked-in files are current, else 1 after naming the stale ones."""
    stale = stale_files(root)
    for path in stale:
        print(f"stale: {_shown(path)}", file=sys.stderr)
    if stale:
        print("run `make contracts` and commit the result", file=sys.stderr)
    return 1 if stale else 0


def generate(root: Path = CONTRACTS_DIR, allow_breaking: bool = False) -> int:
    """Writes the files, unless that would break a checked-in schema (then 1)."""
    breaking = incompatible_changes(root)
    if breaking and not allow_breaking:
        print("refusing to write incompatible schemas:", file=sys.stderr)
        for change in breaking:
            print(f"  {change}", file=sys.stderr)
        print(
            "add a new event type or schema version instead: contracts/README.md", file=sys.stderr
        )
        return 1
    for path in write_files(root):
        print(f"wrote {_shown(path)}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def _shown(path: Path) -> str:
    repository = CONTRACTS_DIR.parent
    return str(path.relative_to(repository)) if path.is_relative_to(repository) else str(path)


if __name__ == "__main__":
    sys.exit(main())
