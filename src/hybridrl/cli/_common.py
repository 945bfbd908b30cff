"""What every verb module shares: the Typer app, its help layout, option texts and the
dataset-loading helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from hybridrl.types import HybridRLError


class HelpGroup(TyperGroup):
    """A verb group whose command list shows each verb's first sentence whole (wrapped), not
    cut off with "..." to fit one line. Pass ``cls=HelpGroup`` to every ``typer.Typer``."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# Plain click help (rich_markup_mode=None, inherited by the sub-apps): rich's panels truncate
# option names and wrap mid-word in an 80-column terminal.
app = typer.Typer(
    name="hybridrl",
    help="Hybrid offline + online reinforcement learning: datasets, agents, recipes, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=HelpGroup,
)

DATASET_HELP = "A dataset: a .npz or .hdf5 path, or minari:ID for the local Minari store."
DOWNLOAD_HELP = "Fetch a minari:ID that is not in the local store from the Minari server."


def parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_dataset_arg(spec: str, download: bool) -> Any:
    """`load_dataset`, with ``--download`` for Minari ids (and named in the error that says
    an id is not in the local store: the library's message names ``download=True``)."""
    from hybridrl.data import dataset_format, load_dataset

    if dataset_format(spec)[0] != "minari":
        return load_dataset(spec)
    from hybridrl.data.minari_io import NotInLocalStoreError

    try:
        return load_dataset(spec, download=download)
    except NotInLocalStoreError as exc:
        raise exc.with_download_hint("pass --download") from None


def load_optional_dataset(spec: str | None) -> Any:
    if spec is None:
        return None
    from hybridrl.data import load_dataset

    return load_dataset(spec)


def refuse_overwrite(target: str, overwrite: bool) -> None:
    # Checked before any work (a collection can take hours); save_dataset checks again.
    where = Path(target)
    if target.startswith("minari:"):
        from hybridrl.data.minari_io import minari_store_path

        where = minari_store_path() / target[len("minari:") :]
    if where.exists() and not overwrite:
        raise HybridRLError(f"{target} exists; pass --overwrite to replace it")
