"""`hybridrl run`'s options for the run settings, generated from `RunSettings`.

`RunSettings` is the one list of run defaults: each of its fields becomes an option whose name
(``num_envs`` -> ``--num-envs``), type, default and help text (its entry under ``Attributes:``
in the dataclass docstring) come from the dataclass, so a new field appears in
``hybridrl run --help`` with no edit here and a default cannot differ between the CLI and
Python. `with_run_settings` adds the options to a command and hands it the values as one
``settings`` dict (every field but ``env_id``), ready for ``run(recipe, env_id, **settings)``.

Written by hand (see `_SPECIAL`): the option names kept from before the options were generated
(``--async-envs``), and the fields whose type needs parsing (``reference_returns``,
``env_kwargs``). ``env_id`` is the command's own ``--env`` (its default, the dataset's env id,
is known only once the dataset is loaded).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from hybridrl.training.context import RunSettings
from hybridrl.types import HybridRLError

# Fields that are not options of their own: the command declares them (``--env``).
COMMAND_FIELDS = ("env_id",)


@dataclass(frozen=True)
class _Special:
    """A field whose option is not the generated one: another name, or a text to parse."""

    decls: tuple[str, ...] = ()  # option names; default: --field-name
    cli_type: Any = None  # what the option reads; default: the field's type
    parse: Callable[[Any], Any] | None = None  # option value -> field value
    metavar: str | None = None
    note: str = ""  # appended to the docstring's help (the input format)


def _parse_reference_returns(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        random, expert = (float(v) for v in text.split(","))
    except ValueError:
        raise HybridRLError(
            f"--reference-returns expects RANDOM,EXPERT (two numbers), got {text!r}"
        ) from None
    return random, expert


def _parse_env_kwargs(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise HybridRLError(f"--env-kwargs expects a JSON object, got {text!r}")
    return value


_SPECIAL: dict[str, _Special] = {
    # the option's name before the options were generated
    "asynchronous": _Special(decls=("--async-envs/--no-async-envs",)),
    # types that need parsing
    "reference_returns": _Special(
        cli_type=str | None,
        parse=_parse_reference_returns,
        metavar="<random,expert>",
        note="Given as RANDOM,EXPERT, e.g. 0,3000.",
    ),
    "env_kwargs": _Special(
        cli_type=str | None,
        parse=_parse_env_kwargs,
        metavar="<json>",
        note="Given as a JSON object, e.g. '{\"ctrl_cost_weight\": 0.1}'.",
    ),
}

# Field types typer reads directly; any other type needs an entry in _SPECIAL.
_SCALARS = (int, float, bool, str)


def attribute_docs(cls: type) -> dict[str, str]:
    """The entries of a docstring's ``Attributes:`` section, by name (an entry may name
    several fields, ``a, b: text``), continuation lines joined."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    try:
        start = lines.index("Attributes:") + 1
    except ValueError:
        return {}
    docs: dict[str, str] = {}
    names: list[str] = []
    indent: int | None = None
    for line in lines[start:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break
        entry = re.fullmatch(r"(\w+(?:,\s*\w+)*):\s*(.*)", line.strip())
        if depth == indent and entry:
            names = [n.strip() for n in entry.group(1).split(",")]
            for name in names:
                docs[name] = entry.group(2)
        else:
            for name in names:
                docs[name] += " " + line.strip()
    return docs


def _help(text: str, note: str) -> str:
    text = text.replace("``", "`").strip()
    if text:
        text = text[0].upper() + text[1:]
        if not text.endswith("."):
            text += "."
    return f"{text} {note}".strip()


def option_name(name: str) -> str:
    """The option (without its ``--no-`` form) that sets the field ``name``."""
    special = _SPECIAL.get(name)
    if special and special.decls:
        return special.decls[0].split("/")[0]
    return "--" + name.replace("_", "-")


def _is_scalar(tp: Any) -> bool:
    if tp in _SCALARS:
        return True
    args = typing.get_args(tp)  # T | None
    return (
        isinstance(tp, types.UnionType)
        and len(args) == 2
        and type(None) in args
        and all(a in _SCALARS for a in args if a is not type(None))
    )


def settings_parameters() -> list[inspect.Parameter]:
    """One keyword parameter ``Annotated[T, typer.Option(...)] = default`` per field of
    `RunSettings` but `COMMAND_FIELDS`, in the dataclass's order."""
    hints = typing.get_type_hints(RunSettings)
    docs = attribute_docs(RunSettings)
    params = []
    for f in dataclasses.fields(RunSettings):
        if f.name in COMMAND_FIELDS:
            continue
        special = _SPECIAL.get(f.name, _Special())
        cli_type = special.cli_type or hints[f.name]
        if not _is_scalar(cli_type):
            raise TypeError(
                f"RunSettings.{f.name}: type {hints[f.name]} is not one typer reads; "
                "add a parser for it to _SPECIAL in hybridrl/cli/_settings.py"
            )
        decls = special.decls or (option_name(f.name),)
        if cli_type is bool and "/" not in decls[0]:
            decls = (f"{decls[0]}/--no-{decls[0][2:]}", *decls[1:])
        option = typer.Option(
            *decls,
            help=_help(docs.get(f.name, ""), special.note),
            metavar=special.metavar,
        )
        default = f.default if f.default is not dataclasses.MISSING else None
        if special.parse is not None:
            default = None  # the parsers map None to None; each special field defaults to None
            assert f.default is None, f"RunSettings.{f.name}: a parsed option defaults to None"
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[cli_type, option],
            )
        )
    return params


def with_run_settings(func: Callable[..., None]) -> Callable[..., None]:
    """``func``'s command with the run-settings options in place of its ``settings``
    parameter, which receives them as ``{field: value}`` (parsed; every field but
    `COMMAND_FIELDS`)."""
    own = inspect.signature(func, eval_str=True)
    generated = settings_parameters()
    names = [p.name for p in generated]
    params: list[inspect.Parameter] = []
    for p in own.parameters.values():
        if p.name == "settings":
            params.extend(generated)
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))

    def command(**kwargs: Any) -> None:
        settings = {}
        for name in names:
            value = kwargs.pop(name)
            special = _SPECIAL.get(name)
            settings[name] = special.parse(value) if special and special.parse else value
        func(**kwargs, settings=settings)

    command.__name__, command.__qualname__ = func.__name__, func.__qualname__
    command.__doc__, command.__module__ = func.__doc__, func.__module__
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return command


def check_settings(settings: dict[str, Any], recipe: Any) -> None:
    """`RunSettings.validate` before any work, its messages naming the options."""
    try:
        RunSettings(env_id="", **settings).validate(recipe)
    except HybridRLError as exc:
        message = str(exc)
        for name in settings:
            message = re.sub(rf"\b{name}\b", option_name(name), message)
        raise HybridRLError(message) from None
