"""``python -m ivri.national ...``: the ``ivri national`` command on its own."""

from __future__ import annotations

import typer

from ivri.national.cli import national

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(national)

if __name__ == "__main__":
    app()
