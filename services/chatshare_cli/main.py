"""The `chatshare` console script: the operator's commands (README.md beside this file)."""

from __future__ import annotations

import typer

from chatshare_cli.console import EXIT_CODES_HELP, help_text
from chatshare_cli.dlq_commands import dlq
from chatshare_cli.replay_commands import replay
from chatshare_cli.topic_commands import LAG_HELP, events, lag

HELP = help_text(f"""chatshare's operator CLI.

Configured like the services, from the same CHATSHARE_* variables
(CHATSHARE_DATABASE_URL, CHATSHARE_KAFKA_BOOTSTRAP_SERVERS, CHATSHARE_TOPIC_PREFIX, …): on a
`make up` stack it needs no flags. Topic and group names are given as INTERFACE.md names them;
the prefix is added.

{EXIT_CODES_HELP}""")

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)
app.add_typer(replay, name="replay")
app.add_typer(dlq, name="dlq")
app.add_typer(events, name="events")
app.command("lag", help=LAG_HELP, short_help="Consumer-group lag per partition.")(lag)
