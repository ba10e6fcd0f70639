"""`chatshare events tail` and `chatshare lag`: what the topics hold and how far each group is."""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from typing import Annotated

import typer
from rich.json import JSON
from rich.table import Table

from chatshare_cli.console import EXIT_CODES_HELP, help_text, out, run, settings
from chatshare_cli.consumer_lag import PartitionLag, consumer_lag
from chatshare_cli.event_tail import DEFAULT_COUNT, TailedRecord, TopicTail
from contracts.topics import CONSUMER_GROUPS, EVENT_TOPICS

events = typer.Typer(
    help="Event topics, decoded. " + EXIT_CODES_HELP,
    short_help="Event topics, decoded.",
    no_args_is_help=True,
)

TOPIC_HELP = (
    "The topic as INTERFACE.md names it, without the deployment's prefix: "
    + ", ".join(spec.name for spec in EVENT_TOPICS)
    + ", or dlq.<group>."
)
TAIL_HELP = help_text(f"""Print a topic's records: key, headers and the value decoded with the topic's contract
(a dead letter's with its source topic's), oldest first; committed records only (read_committed).

By default the last {DEFAULT_COUNT} (-n); --from-beginning prints from the first record (all of them, or
the first -n); --follow then keeps printing what is committed after the command started, until
Ctrl-C. No consumer group is used: nothing is committed, no group's position moves.

{EXIT_CODES_HELP}""")


@events.command("tail", help=TAIL_HELP)
def tail(
    topic: Annotated[str, typer.Argument(help=TOPIC_HELP, show_default=False)],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the first record.")
    ] = False,
    count: Annotated[
        int | None, typer.Option("-n", "--count", min=1, help="How many records to print.")
    ] = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per record.")] = False,
) -> None:
    emit = _print_json if as_json else _print_record
    tailing = TopicTail(settings(), topic, emit)
    with contextlib.suppress(KeyboardInterrupt):  # how a --follow ends
        run(tailing.run(from_beginning=from_beginning, count=count, follow=follow))


def _print_json(record: TailedRecord) -> None:
    print(json.dumps(record.as_json(), ensure_ascii=False), flush=True)


def _print_record(record: TailedRecord) -> None:
    out.print(
        f"[bold]{record.topic}[/][{record.partition}]@{record.offset}  key={record.key}  "
        f"{record.timestamp}", highlight=False,
    )  # fmt: skip
    if record.headers:
        pairs = "  ".join(f"{name}={value}" for name, value in record.headers.items())
        out.print(f"[dim]{pairs}[/]", highlight=False)
    if record.problem:
        out.print(f"[yellow]{record.problem}[/]", highlight=False)
    shown = record.event if record.event is not None else record.value
    out.print(shown if isinstance(shown, str) else JSON.from_data(shown))


LAG_HELP = help_text(f"""Consumer-group lag per group, topic and partition: the group's committed offset
against the partition's end (its last stable offset; a transaction's commit marker counts as
one). A partition where the group committed nothing counts from the first record.

{EXIT_CODES_HELP}""")


def lag(
    group: Annotated[
        list[str] | None, typer.Option("--group", "-g", help="Only these groups (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per partition.")] = False,
) -> None:
    groups = tuple(group or CONSUMER_GROUPS)
    unknown = [name for name in groups if name not in CONSUMER_GROUPS]
    if unknown:
        raise typer.BadParameter(f"unknown group(s) {unknown}; one of {list(CONSUMER_GROUPS)}")
    lags = run(consumer_lag(settings(), groups))
    if as_json:
        for partition in lags:
            print(json.dumps(partition.as_json()))
        return
    out.print(_lag_table(lags))


def _lag_table(lags: list[PartitionLag]) -> Table:
    totals: dict[str, int] = defaultdict(int)
    for partition in lags:
        totals[partition.group] += partition.lag
    table = Table(title="consumer-group lag (committed offset vs end offset)")
    for column in ("group", "topic", "partition", "committed", "end", "lag"):
        table.add_column(
            column,
            justify="right" if column in ("partition", "committed", "end", "lag") else "left",
        )
    for p in lags:
        committed = "—" if p.committed is None else str(p.committed)
        table.add_row(p.group, p.topic, str(p.partition), committed, str(p.end), str(p.lag))
    table.caption = "  ".join(f"{group}: {total}" for group, total in totals.items())
    return table
