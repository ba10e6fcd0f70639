"""`chatshare dlq …`: what a consumer group gave up on, and handing it back to that group."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.json import JSON
from rich.table import Table

from chatshare_cli.console import (
    EXIT_CODES_HELP,
    EXIT_FAILURE,
    EXIT_USAGE,
    database,
    err,
    fail,
    failures,
    help_text,
    out,
    run,
    settings,
    summary,
)
from chatshare_cli.dead_letters import DeadLetter, find_letter, read_dead_letters
from contracts.topics import CONSUMER_GROUPS, dead_letter_topic

if TYPE_CHECKING:  # the redrive's handlers are built from the services' code: loaded when used
    from chatshare_cli.redrive import Redriven
    from share_service.config import ShareServiceSettings

dlq = typer.Typer(
    help="Dead letters: what a consumer group could not process, on dlq.<group>. "
    + EXIT_CODES_HELP,
    short_help="Dead letters: list, show, redrive.",
    no_args_is_help=True,
)

GROUP_HELP = f"The consumer group, without the deployment's prefix: {', '.join(CONSUMER_GROUPS)}."
REF_HELP = "The dead letter as `partition:offset` (as `dlq list` shows it), or an offset alone."
Group = Annotated[str, typer.Argument(help=GROUP_HELP, show_default=False)]

REDRIVE_HELP = help_text(f"""Hand dead letters back to the group that gave up on them — to that group alone.

The record is not republished (its source topic's other groups would get it again): the CLI
builds the group's own handler from the service's code and applies the record in-process, as
the group would, version-checked and idempotent; the group's Kafka position does not move.
Every group can be redriven: {", ".join(CONSUMER_GROUPS)}. community-publisher uploads from
this process (CHATSHARE_COMMUNITY_URL, CHATSHARE_COMMUNITY_TOKEN) while the policy allows it;
its running relay publishes the outcome.

Every redrive is recorded (chatshare_ops.dead_letter_redrives); a letter redriven once is
refused again unless --force. With --all, letters redriven before are skipped (unless --force).
A letter that still fails is reported with why, and the exit code is 1.

{EXIT_CODES_HELP}""")


def _known(group: str) -> str:
    if group not in CONSUMER_GROUPS:
        fail(f"unknown group {group!r}; one of: {', '.join(CONSUMER_GROUPS)}", EXIT_USAGE)
    return group


@dlq.command("list", help="What dlq.<group> holds: source, reason, when, and whether redriven.")
def list_letters(
    group: Group,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line each.")] = False,
) -> None:
    config = settings()
    letters, redriven = run(_letters_and_redrives(config, _known(group)))
    if as_json:
        for letter in letters:
            print(json.dumps({"ref": letter.ref, "key": _key(letter), "source": letter.source,
                              "reason": letter.reason, "failed_at": letter.failed_at,
                              "redriven_at": _at(redriven.get(letter.ref))}))  # fmt: skip
        return
    table = Table(title=f"{config.topic(dead_letter_topic(group))}: {len(letters)} dead letters")
    for column in ("partition:offset", "key", "source", "reason", "failed at", "redriven at"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(letter.ref, _key(letter), letter.source, letter.reason, letter.failed_at,
                      _at(redriven.get(letter.ref)))  # fmt: skip
    out.print(table)


@dlq.command("show", help="One dead letter: its headers and its value (pretty when JSON).")
def show_letter(
    group: Group, ref: Annotated[str, typer.Argument(help=REF_HELP, show_default=False)]
) -> None:
    config = settings()
    letter = run(_letter(config, _known(group), ref))
    out.print(f"[bold]{letter.topic}[/] {letter.ref}  key={_key(letter)}", highlight=False)
    headers = Table("header", "value", show_header=True)
    for name, value in letter.headers.items():
        headers.add_row(name, value)
    out.print(headers)
    shown = letter.value_shown()
    out.print(JSON.from_data(shown) if not isinstance(shown, str) else shown)


@dlq.command("redrive", help=REDRIVE_HELP)
def redrive_letters(
    group: Group,
    ref: Annotated[str | None, typer.Option("--offset", help=REF_HELP)] = None,
    every: Annotated[bool, typer.Option("--all", help="Every letter not redriven yet.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Redrive again what was.")] = False,
) -> None:
    if (ref is None) == (not every):
        fail("give exactly one of --offset and --all", EXIT_USAGE)
    results = run(_redrive(settings(), _known(group), ref, force=force))
    table = Table("partition:offset", "outcome", "detail")
    for result in results:
        table.add_row(result.ref, result.outcome, result.detail)
    out.print(table)
    counts = {
        kind: sum(r.outcome == kind for r in results) for kind in ("redriven", "refused", "failed")
    }
    summary({"group": group, **counts})
    if counts["failed"] or (ref is not None and counts["refused"]):
        raise typer.Exit(EXIT_FAILURE)


async def _letters_and_redrives(
    config: ShareServiceSettings, group: str, *, with_redrives: bool = True
) -> tuple[list[DeadLetter], dict[str, datetime]]:

    from chatshare_cli.redrive import RedriveLog

    letters = await read_dead_letters(config, group)
    if not with_redrives:
        return letters, {}
    try:
        async with database(config) as pool:
            log = RedriveLog(pool)
            await log.create_table()
            return letters, await log.last_redrives(config.topic(dead_letter_topic(group)))
    except failures() as error:  # the list is Kafka's; only the redrive column needs PostgreSQL
        err.print(f"[yellow]redrives unknown:[/] {error}", highlight=False)
        return letters, {}


async def _letter(config: ShareServiceSettings, group: str, ref: str) -> DeadLetter:
    return find_letter(await read_dead_letters(config, group), ref)


async def _redrive(
    config: ShareServiceSettings, group: str, ref: str | None, *, force: bool
) -> list[Redriven]:

    from chatshare_cli.group_handlers import group_handler
    from chatshare_cli.redrive import Redrive, RedriveLog

    letters = await read_dead_letters(config, group)
    chosen = [find_letter(letters, ref)] if ref is not None else letters
    async with database(config) as pool:
        log = RedriveLog(pool)
        await log.create_table()
        async with group_handler(group, config, pool) as handle:
            redrive = Redrive(config.group(group), handle, log, config)
            return await redrive.letters(chosen, force=force)


def _key(letter: DeadLetter) -> str:
    return "" if letter.key is None else letter.key.decode(errors="replace")


def _at(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat()
