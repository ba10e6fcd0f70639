"""`python -m chatshare_cli`: the same as the `chatshare` console script."""

from chatshare_cli.main import app

app(prog_name="chatshare")
