"""The one way to make a `higgs` Typer app, so every noun behaves the same.

Rich markup is off in help (`rich_markup_mode=None`): help texts print as
written, so `[laugh]`, `[SPEAKER0]` and `[default: ...]` notes stay visible.
"""

from __future__ import annotations

import typer

HELP_OPTIONS = {"help_option_names": ["-h", "--help"], "max_content_width": 120}  # wide terminals get wide help


def make_app(name: str | None = None, help: str | None = None, **settings) -> typer.Typer:
    """A Typer app (the root or one noun) with higgs' settings: plain help, -h, help when bare."""
    options = {"no_args_is_help": True, "rich_markup_mode": None, "pretty_exceptions_enable": False,
               "context_settings": dict(HELP_OPTIONS)}
    return typer.Typer(name=name, help=help, **{**options, **settings})
