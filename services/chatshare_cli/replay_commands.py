"""`chatshare replay …`: read models rebuilt from the truth."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from chatshare_cli.console import (
    EXIT_CODES_HELP,
    EXIT_DIFFERENCES,
    EXIT_USAGE,
    database,
    fail,
    help_text,
    out,
    progress_bar,
    run,
    settings,
    summary,
)

if TYPE_CHECKING:  # the modules doing the work are imported when a command runs
    from chatshare_cli.kafka_refeed import RefeedOutcome
    from chatshare_cli.shadow_views import Difference
    from chatshare_cli.share_view_replay import ReplayOutcome
    from share_service.config import ShareServiceSettings

PAGE_SIZE = 10_000

replay = typer.Typer(
    help="Rebuild read models from the truth. " + EXIT_CODES_HELP,
    short_help="Rebuild read models from the truth.",
    no_args_is_help=True,
)

SHARE_VIEWS_HELP = help_text(f"""Rebuild the share view store (links' views and tombstones; not community-request
status) from share_service's event store.

The notification log is read in order, each event mapped to the contract event the relay
publishes and applied with the projection's own code into a shadow table
(share_views_shadow), which is compared with the live table and then swapped in by one short
transaction: reads of share_views wait milliseconds, never fail. Events stored during the
replay are applied to the shadow inside the swap; later ones reach the new table through the
running projection (its version-checked writes make any overlap harmless).

--dry-run compares without swapping and prints the differences.

--from-kafka re-feeds the LIVE tables instead from the topics the share-projection group
reads: share.events (the links' views) and community.events (community-request status), with
a consumer of no group, so no group's position moves; from --since on each of them: an offset
on every partition, or an ISO 8601 time.

The last line printed is one JSON object: views (rows rebuilt), changed (rows that differed
from the live table; with --from-kafka, rows the re-feed changed, and requests: community
requests whose events were applied), events, seconds.

{EXIT_CODES_HELP}""")


@replay.command("share-views", help=SHARE_VIEWS_HELP)
def share_views(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compare only; exit 3 if any row differs.")
    ] = False,
    from_kafka: Annotated[
        bool,
        typer.Option(
            "--from-kafka", help="Re-feed the live tables from share.events and community.events."
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="With --from-kafka: an offset or an ISO 8601 time (default: earliest)."),
    ] = None,
    show: Annotated[int, typer.Option(min=0, help="Differences to print at most.")] = 20,
    page_size: Annotated[
        int, typer.Option(min=1, help="Notifications per page at most (16 MiB of them at most).")
    ] = PAGE_SIZE,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty", help="Swap in an empty rebuild over a live store that has rows."
        ),
    ] = False,
) -> None:
    config = settings()
    if from_kafka:
        if dry_run:
            fail(
                "--dry-run compares a rebuilt shadow: it does not go with --from-kafka", EXIT_USAGE
            )
        from chatshare_cli.kafka_reads import parse_since

        try:
            start = None if since is None else parse_since(since)
        except ValueError as error:
            fail(str(error), EXIT_USAGE)
        refed = run(_refeed(config, start))
        summary(refed.summary())
        return
    if since is not None:
        fail("--since is for --from-kafka", EXIT_USAGE)
    outcome = run(
        _rebuild(config, dry_run=dry_run, show=show, page_size=page_size, allow_empty=allow_empty)
    )
    _print_differences(outcome)
    summary({**outcome.summary(), "dry_run": dry_run})
    if dry_run and outcome.changed:
        raise typer.Exit(EXIT_DIFFERENCES)


async def _rebuild(
    config: ShareServiceSettings, *, dry_run: bool, show: int, page_size: int, allow_empty: bool
) -> ReplayOutcome:
    from chatshare_cli.shadow_views import ShadowViews
    from chatshare_cli.share_view_replay import ShareViewReplay
    from chatshare_cli.stored_share_events import StoredShareEvents
    from share_service.bootstrap import EVENT_STORE_SCHEMA, open_sharing_application

    sharing = await asyncio.to_thread(open_sharing_application, config)
    try:
        events = StoredShareEvents(sharing)
        last = await asyncio.to_thread(events.last_id)
        async with database(config) as pool:
            with progress_bar() as bar:
                task = bar.add_task("replaying share views", total=last, note="")

                def on_page(read: int, position: int) -> None:
                    total = max(last, position)
                    bar.update(task, completed=position, total=total, note=f"{read:,} events")

                shadow = ShadowViews(pool, EVENT_STORE_SCHEMA)
                replay_ = ShareViewReplay(events, shadow, page_size, on_page)
                return await replay_.run(dry_run=dry_run, show=show, allow_empty=allow_empty)
    finally:
        await asyncio.to_thread(sharing.close)


async def _refeed(config: ShareServiceSettings, since: int | datetime | None) -> RefeedOutcome:
    from chatshare_cli.kafka_refeed import KafkaRefeed

    async with database(config) as pool:
        with progress_bar() as bar:
            task = bar.add_task(
                "re-feeding share views from share.events and community.events", total=None, note=""
            )

            def on_progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, note="records")

            return await KafkaRefeed(config, pool, on_progress).run(since)


def _print_differences(outcome: ReplayOutcome) -> None:
    if not outcome.changed:
        out.print("The rebuilt share views are identical to the live ones.", highlight=False)
        return
    table = Table(title=f"{outcome.changed:,} rows differ (live → rebuilt)")
    for column in ("share_id", "what differs", "live version", "rebuilt version"):
        table.add_column(column)
    for difference in outcome.differences:
        table.add_row(*_row(difference))
    out.print(table)
    hidden = outcome.changed - len(outcome.differences)
    if hidden > 0:
        out.print(f"… and {hidden:,} more (--show N prints more)", highlight=False)


def _row(difference: Difference) -> tuple[str, str, str, str]:
    def version(value: int | None) -> str:
        return "—" if value is None else str(value)

    return (
        difference.share_id, ", ".join(difference.columns),
        version(difference.live_version), version(difference.rebuilt_version),
    )  # fmt: skip
