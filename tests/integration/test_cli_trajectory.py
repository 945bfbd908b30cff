"""`hybridrl run --sampler/--sampler-temperature` and `hybridrl datasets mix` on the command
line: option parsing, the mix's fractions and episode integrity, one-line errors (exit 2)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import hybridrl.training.runner
from hybridrl.cli import app, main
from hybridrl.data import load_dataset, save_dataset
from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.transitions import episode_slices, make_transitions
from hybridrl.training.phases import Offline, Online
from hybridrl.types import SpaceSpec


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []

    def fake_run(recipe: Any, env_id: str, **kwargs: Any) -> Any:
        calls.append(recipe)
        return SimpleNamespace(summary={"ok": True}, run_dir=kwargs["run_dir"])

    monkeypatch.setattr(hybridrl.training.runner, "run", fake_run)
    return calls


def _fails(args: list[str], message: str, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["hybridrl", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_sampler_options_reach_the_recipe(captured, tmp_path) -> None:
    args = ["run", "rlpd", "--env", "Pendulum-v1", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(
        app,
        [*args, "--sampler", "advantage", "--sampler-temperature", "0.3"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    [recipe] = captured
    mixed = [p for p in recipe.phases if isinstance(p, Online) and p.offline_ratio > 0]
    assert mixed and all((p.sampler, p.sampler_temperature) == ("advantage", 0.3) for p in mixed)
    result = CliRunner().invoke(
        app,
        [
            "run",
            "offline:iql",
            "--env",
            "Pendulum-v1",
            "--out",
            str(tmp_path / "s"),
            "--sampler",
            "return",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert captured[1].phases == (Offline(name="offline", updates=1_000_000, sampler="return"),)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sampler", "best"], "--sampler must be one of uniform, return, advantage"),
        (["--sampler-temperature", "0.5"], "--sampler-temperature needs --sampler"),
        (["--sampler", "return", "--sampler-temperature", "0"], "must be > 0"),
    ],
)
def test_bad_sampler_options_are_one_line(extra, message, captured, monkeypatch, capsys, tmp_path):
    args = ["run", "offline:iql", "--env", "Pendulum-v1", "--out", str(tmp_path / "r"), *extra]
    _fails(args, message, monkeypatch, capsys)
    assert not captured


def test_sampler_on_a_recipe_without_dataset_sampling(captured, monkeypatch, capsys, tmp_path):
    out = str(tmp_path / "r")
    args = ["run", "sac", "--env", "Pendulum-v1", "--out", out, "--sampler", "return"]
    _fails(args, "has no phase that samples the dataset", monkeypatch, capsys)


# ------------------------------------------------------------------------------ datasets mix
def _source(
    path: Path, episodes: int, length: int, reward: float, offset: int, env_id: str = "Toy-v0"
) -> str:
    """``episodes`` episodes of ``length`` steps; observations number the rows from
    ``offset`` (so a row is recognisable in the mix); odd episodes end on a terminal, even ones
    on a time-out."""
    n = episodes * length
    obs = (offset + np.arange(n, dtype=np.float32))[:, None]
    ends = np.arange(n) % length == length - 1
    odd = (np.arange(n) // length) % 2 == 1
    t = make_transitions(
        observations=obs,
        actions=np.zeros((n, 1), np.float32),
        rewards=np.full(n, reward, np.float32),
        next_observations=obs + 0.5,
        terminals=(ends & odd).astype(np.float32),
        timeouts=(ends & ~odd).astype(np.float32),
    )
    meta = DatasetMetadata(
        observation_space=SpaceSpec.box_from_data(obs),
        action_space=SpaceSpec.box_from_data(np.array([[-1.0], [1.0]], np.float32)),
        env_id=env_id,
        name=path.stem,
    )
    save_dataset(Dataset(t, meta), str(path))
    return str(path)


def test_mix_round_trip(tmp_path) -> None:
    random = _source(tmp_path / "random.npz", episodes=100, length=10, reward=0.0, offset=0)
    expert = _source(tmp_path / "expert.npz", episodes=40, length=7, reward=1.0, offset=10_000)
    out = tmp_path / "mix.npz"
    result = CliRunner().invoke(
        app,
        [
            "datasets",
            "mix",
            "--random",
            random,
            "--expert",
            expert,
            "--expert-fraction",
            "0.1",
            "--size",
            "500",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    ds = load_dataset(str(out))
    t = ds.transitions
    rewards = np.asarray(t.rewards)
    # 450 random transitions = 45 episodes of 10; 50 expert ones round up to 8 episodes of 7
    assert (rewards == 0).sum() == 450 and (rewards == 1).sum() == 56
    assert "45 + 8 episodes (56 expert transitions)" in result.output
    op = ds.metadata.provenance["transforms"][-1]
    assert op["op"] == "mix" and op["fraction_of"] == "transitions" and op["size"] == 500
    obs = np.asarray(t.observations)[:, 0]
    src = {"random": load_dataset(random), "expert": load_dataset(expert)}
    for sl in episode_slices(t):
        o = obs[sl]
        base = src["expert" if o[0] >= 10_000 else "random"]
        length = 7 if o[0] >= 10_000 else 10
        start = int(o[0]) - (10_000 if o[0] >= 10_000 else 0)
        assert start % length == 0 and len(o) == length  # a whole source episode
        source_obs = np.asarray(base.transitions.observations)[start : start + length, 0]
        np.testing.assert_array_equal(o, source_obs)
        for name in ("terminals", "timeouts", "next_observations"):
            np.testing.assert_array_equal(
                np.asarray(getattr(t, name))[sl],
                np.asarray(getattr(base.transitions, name))[start : start + length],
            )
    # distinct episodes (drawn without replacement)
    starts = [float(obs[sl.start]) for sl in episode_slices(t)]
    assert len(set(starts)) == len(starts)


def test_mix_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    random = _source(tmp_path / "random.npz", episodes=10, length=10, reward=0.0, offset=0)
    expert = _source(tmp_path / "expert.npz", episodes=4, length=5, reward=1.0, offset=10_000)
    other = _source(tmp_path / "other.npz", 4, 5, 1.0, 10_000, env_id="Other-v0")
    out = tmp_path / "mix.npz"
    base = ["datasets", "mix", "--random", random, "--out", str(out)]
    _fails(
        [*base, "--expert", expert, "--expert-fraction", "1.5"],
        "field 'expert_fraction'",
        monkeypatch,
        capsys,
    )
    _fails([*base, "--expert", other], f"[file {other}, field 'env_id']", monkeypatch, capsys)
    _fails(
        [*base, "--expert", expert, "--expert-fraction", "0.5"],
        f"[file {expert}, field 'transitions'] has 20 transitions; the mix needs 50",
        monkeypatch,
        capsys,
    )
    _fails([*base, "--expert", str(tmp_path / "missing.npz")], "missing.npz", monkeypatch, capsys)
    assert not out.exists() and not list(tmp_path.glob("*mix*"))
