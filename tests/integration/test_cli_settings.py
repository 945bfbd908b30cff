"""`hybridrl run`'s run-settings options are generated from `RunSettings`: every field has an
option with the field's default and docstring help, and the values given reach the settings.

The runner is replaced by a stand-in that records what it was given: no training here.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

import hybridrl.training.runner
from hybridrl.cli import _settings, app, main
from hybridrl.training.context import RunSettings
from hybridrl.training.phases import OnPolicy
from hybridrl.training.recipes import Recipe

WIDTH = 80
RUN = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
OPTIONS = {p.name: p for p in RUN.params}
FIELDS = dataclasses.fields(RunSettings)


def test_every_field_has_a_docstring_entry() -> None:
    docs = _settings.attribute_docs(RunSettings)
    missing = [f.name for f in FIELDS if not docs.get(f.name)]
    assert not missing, f"RunSettings fields with no entry under 'Attributes:': {missing}"


def test_attribute_docs_reads_shared_entries_and_continuations() -> None:
    class Doc:
        """Title.

        Attributes:
            a: first line
                second line.
            b, c: shared.

        Notes:
            d: not an attribute.
        """

    assert _settings.attribute_docs(Doc) == {
        "a": "first line second line.",
        "b": "shared.",
        "c": "shared.",
    }


@pytest.mark.parametrize("field", FIELDS, ids=[f.name for f in FIELDS])
def test_every_field_has_an_option_with_its_default(field: dataclasses.Field[Any]) -> None:
    if field.name == "env_id":  # the command's --env: default, the dataset's env id
        assert field.default is dataclasses.MISSING and OPTIONS["env"].default is None
        return
    param = OPTIONS[field.name]
    assert param.default == field.default
    assert _settings.option_name(field.name) in param.opts
    assert param.help and param.help.strip()


def test_kept_option_names() -> None:
    assert OPTIONS["asynchronous"].opts == ["--async-envs"]
    assert OPTIONS["asynchronous"].secondary_opts == ["--no-async-envs"]
    assert OPTIONS["num_envs"].opts == ["--num-envs"]
    for name in ("out", "env", "dataset", "download", "seeds", "resume", "set_", "wandb"):
        assert name in OPTIONS
    for budget in ("offline_updates", "warmup_steps", "online_steps", "random_steps"):
        assert OPTIONS[budget].default is None
    assert OPTIONS["on_policy_steps"].opts == ["--on-policy-steps"]


def test_help_lists_every_setting_at_80_columns() -> None:
    result = CliRunner().invoke(
        app, ["run", "--help"], env={"COLUMNS": str(WIDTH)}, terminal_width=WIDTH
    )
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= WIDTH
    for field in FIELDS:
        if field.name != "env_id":
            assert _settings.option_name(field.name) in result.output
    assert "Vector environments collecting in parallel." in result.output


def test_a_new_field_gets_an_option_with_no_cli_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class Extended(RunSettings):
        """Settings with one more.

        Attributes:
            warmup_fraction: a new knob.
        """

        warmup_fraction: float = 0.5

    monkeypatch.setattr(_settings, "RunSettings", Extended)
    monkeypatch.setattr(_settings, "attribute_docs", lambda cls: {"warmup_fraction": "a knob"})
    params = {p.name: p for p in _settings.settings_parameters()}
    assert params["warmup_fraction"].default == 0.5
    option = params["warmup_fraction"].annotation.__metadata__[0]
    assert option.default == "--warmup-fraction" and option.help == "A knob."


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Recipe, RunSettings, Path]]:
    """`hybridrl run` with the runner replaced: each call's recipe, settings and run dir."""
    calls: list[tuple[Recipe, RunSettings, Path]] = []

    def fake_run(recipe: Recipe, env_id: str, *, run_dir: Path, **kwargs: Any) -> Any:
        for key in ("dataset", "resume", "progress", "tensorboard", "wandb_project", "echo"):
            kwargs.pop(key)
        kwargs.pop("on_evaluation", None)  # passed by run_seeds (--seeds)
        calls.append((recipe, RunSettings(env_id=env_id, **kwargs), Path(run_dir)))
        return SimpleNamespace(summary={"ok": True}, run_dir=run_dir)

    monkeypatch.setattr(hybridrl.training.runner, "run", fake_run)
    return calls


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, ["run", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_defaults_reach_run_settings_unchanged(captured: list, tmp_path: Path) -> None:
    _invoke(["sac", "--env", "Pendulum-v1", "--out", str(tmp_path / "r")])
    [(_, settings, run_dir)] = captured
    assert settings == RunSettings(env_id="Pendulum-v1")
    assert run_dir == tmp_path / "r"


def test_values_reach_run_settings(captured: list, tmp_path: Path) -> None:
    args = ["sac", "--env", "Pendulum-v1", "--out", str(tmp_path), "--seeds", "3,4"]
    args += ["--num-envs", "2", "--eval-episodes", "2", "--dip-fraction", "0.5"]
    args += ["--async-envs", "--mc-sparse-reward", "--max-episode-steps", "50"]
    args += ["--reference-returns", "-10,90.5", "--env-kwargs", '{"g": 9.0}']
    _invoke(args)
    expected = RunSettings(
        env_id="Pendulum-v1",
        num_envs=2,
        eval_episodes=2,
        dip_fraction=0.5,
        asynchronous=True,
        mc_sparse_reward=True,
        max_episode_steps=50,
        reference_returns=(-10.0, 90.5),
        env_kwargs={"g": 9.0},
    )
    assert [(s, d) for _, s, d in captured] == [
        (dataclasses.replace(expected, seed=k), tmp_path / f"seed_{k}") for k in (3, 4)
    ]


def test_on_policy_steps_reach_the_recipe(captured: list, tmp_path: Path) -> None:
    _invoke(["ppo", "--env", "Pendulum-v1", "--out", str(tmp_path), "--on-policy-steps", "4096"])
    [(recipe, _, _)] = captured
    steps = [p.steps for p in recipe.phases if isinstance(p, OnPolicy)]
    assert steps == [4096]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num-envs", "0"], "error: --num-envs must be positive, got 0"),
        (["--dip-fraction", "abc"], "error: Invalid value for '--dip-fraction'"),
        (["--num-envs", "3"], "must be a multiple of --num-envs (3)"),
        (["--reference-returns", "1"], "--reference-returns expects RANDOM,EXPERT"),
        (["--env-kwargs", "[1]"], "--env-kwargs expects a JSON object"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    args: list[str],
    message: str,
    captured: list,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "r"
    argv = ["hybridrl", "run", "sac", "--env", "Pendulum-v1", "--out", str(out), *args]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not captured and not out.exists()
