"""`hybridrl recipes` lists every form `hybridrl run` accepts by name, `offline:AGENT` included."""

from __future__ import annotations

from typer.testing import CliRunner

from hybridrl.agents import AGENTS
from hybridrl.cli import app
from hybridrl.training.recipes import RECIPES, get_recipe


def _listed() -> list[str]:
    result = CliRunner().invoke(app, ["recipes"])
    assert result.exit_code == 0, result.output
    return [line.split()[0] for line in result.output.splitlines() if line.strip()]


def test_recipes_lists_named_recipes_then_offline_forms() -> None:
    listed = _listed()
    offline = [f"offline:{agent}" for agent in sorted(AGENTS)]
    assert listed == sorted(RECIPES) + offline


def test_every_listed_recipe_resolves() -> None:
    for name in _listed():
        assert get_recipe(name).agent
