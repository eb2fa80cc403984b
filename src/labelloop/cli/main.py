"""The ``labelloop`` command: one module per command group, errors on one line, no tracebacks."""

from __future__ import annotations

import importlib
import os
import sys

import typer

__all__ = ["app", "run"]

app = typer.Typer(
    name="labelloop",
    help="Annotate a few images, train a model, let it pre-annotate the rest, review, repeat.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: command-group modules; each has ``register(app)``
COMMAND_MODULES = [
    "labelloop.cli.project",
    "labelloop.cli.labels",
    "labelloop.cli.layers",
    "labelloop.cli.demo",
    "labelloop.cli.train",
    "labelloop.cli.loop",
    "labelloop.cli.serve",
    "labelloop.cli.users",
]


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a group whose optional extra is not installed
            if exc.name and exc.name.startswith("labelloop"):
                raise
            continue
        module.register(app)


def run() -> None:
    """Entry point: maps domain errors to one line on stderr and exit code 1."""
    from labelloop.errors import LabelloopError

    _register()
    try:
        app(standalone_mode=True)
    except LabelloopError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("LABELLOOP_DEBUG"):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (set LABELLOOP_DEBUG=1 for details)", err=True)
        sys.exit(2)
