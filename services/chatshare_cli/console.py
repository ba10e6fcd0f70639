"""How the CLI talks: tables and notes on stdout, progress and errors on stderr, a summary as
one JSON object on the last line, and exit codes that mean something."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from chatshare_cli.errors import OperationFailed, UsageError

if TYPE_CHECKING:
    import asyncpg

    from share_service.config import ShareServiceSettings

EXIT_OK = 0
EXIT_FAILURE = 1  # the work failed: infrastructure unreachable, a redrive failed, …
EXIT_USAGE = 2  # bad arguments or configuration (also click's own usage errors)
EXIT_DIFFERENCES = 3  # `replay share-views --dry-run` found rows that differ

EXIT_CODES_HELP = (
    "Exit codes: 0 ok · 1 failure (unreachable Kafka or PostgreSQL, a failed redrive, …) · "
    "2 usage (bad arguments or CHATSHARE_* settings) · 3 differences found (replay --dry-run)."
)

out = Console(soft_wrap=True)
err = Console(stderr=True)

T = TypeVar("T")


def failures() -> tuple[type[BaseException], ...]:
    """Faults of what the CLI talks to: say what happened, exit 1, no traceback. (Imported
    here, not at the top: `chatshare --help` should not wait for every driver to load.)"""
    import asyncpg
    import psycopg
    from aiokafka.errors import KafkaError
    from eventsourcing.persistence import PersistenceError

    return (
        OSError, asyncpg.PostgresError, asyncpg.InterfaceError, psycopg.Error, PersistenceError,
        KafkaError, OperationFailed,
    )  # fmt: skip


def help_text(text: str) -> str:
    """Paragraphs written as wrapped source lines, as one line each: the terminal wraps them."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in text.strip().split("\n\n"))


def settings() -> ShareServiceSettings:
    """The services' own settings, from the same CHATSHARE_* variables."""
    import pydantic

    from share_service.config import ShareServiceSettings

    try:
        return ShareServiceSettings()
    except pydantic.ValidationError as error:
        fail(f"the CHATSHARE_* settings are not valid: {error}", EXIT_USAGE)


def run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except UsageError as error:
        fail(str(error), EXIT_USAGE)
    except failures() as error:
        fail(f"{type(error).__name__}: {error}", EXIT_FAILURE)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def summary(fields: dict[str, Any]) -> None:
    """The last line: one JSON object for scripts."""
    print(json.dumps(fields, sort_keys=False), flush=True)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"), console=err, transient=False,
    )  # fmt: skip


@asynccontextmanager
async def database(settings: ShareServiceSettings) -> AsyncIterator[asyncpg.Pool]:
    import asyncpg

    pool = await asyncpg.create_pool(settings.database_dsn, min_size=1, max_size=4, timeout=10)
    try:
        yield pool
    finally:
        await pool.close()
