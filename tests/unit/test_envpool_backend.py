"""The EnvPool vector-env backend keeps the Gymnasium backend's contract: spaces and dtypes,
``SAME_STEP`` autoreset with ``final_obs`` on time-outs and terminals, per-env seeds, actions
rescaled from [-1, 1]; and without the extra, one line saying how to install it.

Tests that step EnvPool skip when the ``envpool`` extra is not installed (CI does not install
it: see docs/envs.md); the error-path tests run everywhere.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import warnings
from contextlib import closing
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from hybridrl.envs.envpool_backend import envpool_seed, make_envpool_vector_env
from hybridrl.envs.make import make_vector_env
from hybridrl.training.context import RunSettings
from hybridrl.training.phases import OnPolicy
from hybridrl.training.recipes import get_recipe
from hybridrl.types import HybridRLError

needs_envpool = pytest.mark.skipif(
    importlib.util.find_spec("envpool") is None,
    reason="the envpool extra is not installed (pip install 'hybridrl[envpool]')",
)
BACKENDS = ("gymnasium", "envpool")
CARTPOLE = {"action_kinds": ("discrete",)}


# ------------------------------------------------------------------ errors (run everywhere)
def test_without_the_extra_one_line_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "envpool", None)  # as if not installed
    with pytest.raises(HybridRLError, match=r"pip install 'hybridrl\[envpool\]'"):
        make_vector_env("Pendulum-v1", 1, backend="envpool")
    settings = RunSettings(env_id="Pendulum-v1", env_backend="envpool")
    with pytest.raises(HybridRLError, match=r"pip install 'hybridrl\[envpool\]'"):
        settings.validate(get_recipe("ppo"))


def test_the_cli_without_the_extra_exits_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hybridrl.cli import main

    monkeypatch.setitem(sys.modules, "envpool", None)
    out = tmp_path / "run"
    argv = ["hybridrl", "run", "ppo", "--env", "Hopper-v5", "--env-backend", "envpool"]
    monkeypatch.setattr(sys, "argv", [*argv, "-o", str(out)])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1, err
    assert "--env-backend 'envpool' needs the envpool package" in err
    assert "pip install 'hybridrl[envpool]'" in err and not out.exists()


def test_bad_backend_settings_are_refused() -> None:
    with pytest.raises(HybridRLError, match="env_backend must be one of gymnasium, envpool"):
        RunSettings(env_id="Pendulum-v1", env_backend="brax").validate(get_recipe("ppo"))
    with pytest.raises(HybridRLError, match="env_backend must be one of"):
        make_vector_env("Pendulum-v1", 1, backend="brax")
    with pytest.raises(HybridRLError, match="asynchronous"):
        make_vector_env("Pendulum-v1", 1, backend="envpool", asynchronous=True)


def test_fingerprint_names_the_backend_only_when_not_the_default() -> None:
    """Runs written before the setting keep their fingerprint; an envpool run cannot be
    resumed with gymnasium envs (the numbers differ)."""
    assert "env_backend" not in RunSettings(env_id="Hopper-v5").fingerprint()
    assert RunSettings(env_id="Hopper-v5", env_backend="envpool").fingerprint()["env_backend"] == (
        "envpool"
    )


def test_seeds_map_into_int32_one_to_one() -> None:
    seeds = [0, 1, 2**31 - 1, 2**31, 2**32 - 1]
    mapped = [envpool_seed(s) for s in seeds]
    assert mapped == [0, 1, 2**31 - 1, -(2**31), -1]
    assert all(-(2**31) <= s < 2**31 for s in mapped)


# ------------------------------------------------------------------ the contract (envpool)
def _pair(env_id: str, n: int, **kwargs):
    return [make_vector_env(env_id, n, backend=b, **kwargs) for b in BACKENDS]


@needs_envpool
@pytest.mark.parametrize(("env_id", "kwargs"), [("Hopper-v5", {}), ("CartPole-v1", CARTPOLE)])
def test_spaces_shapes_and_dtypes_match_gymnasium(env_id: str, kwargs: dict) -> None:
    envs = _pair(env_id, 3, **kwargs)
    try:
        g, e = envs
        assert e.single_observation_space == g.single_observation_space
        assert e.single_action_space == g.single_action_space
        assert e.action_space == g.action_space
        assert e.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
        resets = [v.reset(seed=[1, 2, 3])[0] for v in envs]
        assert [(o.shape, o.dtype) for o in resets] == [(resets[0].shape, resets[0].dtype)] * 2
        actions = g.action_space.sample()
        outs = [v.step(actions)[:4] for v in envs]
        assert [[(np.asarray(x).shape, np.asarray(x).dtype) for x in o] for o in outs] == [
            [(np.asarray(x).shape, np.asarray(x).dtype) for x in outs[0]]
        ] * 2
    finally:
        for v in envs:
            v.close()


def _steps(envs: gym.vector.VectorEnv, actions: list[np.ndarray]) -> list[tuple]:
    envs.reset(seed=[11, 12])
    return [envs.step(a) for a in actions]


@needs_envpool
def test_time_outs_reset_in_the_same_step_with_the_final_observation() -> None:
    """A time limit of 3: steps 3 and 6 are truncated (NEXT_STEP autoreset would end the
    second episode at step 7), the final observation is in ``info`` and the step returns the
    next episode's first one (CartPole starts within 0.05 of zero)."""
    actions = [np.array([t % 2, (t + 1) % 2]) for t in range(6)]
    for envs in _pair("CartPole-v1", 2, max_episode_steps=3, **CARTPOLE):
        with closing(envs):
            out = _steps(envs, actions)
        truncated = [bool(o[3].all()) for o in out]
        assert truncated == [False, False, True, False, False, True], type(envs).__name__
        assert not any(o[2].any() for o in out)
        for t in (2, 5):
            obs, _, _, _, info = out[t]
            assert info["_final_obs"].tolist() == [True, True]
            final = np.stack(info["final_obs"])
            assert np.all(np.abs(obs) <= 0.05) and not np.allclose(final, obs)
            # the final observation continues the episode: the step before plus one move
            assert np.abs(final - out[t - 1][0]).max() < 0.5
        assert all("_final_obs" not in o[4] or not o[4]["_final_obs"].any() for o in out[:2])


@needs_envpool
def test_terminals_reset_in_the_same_step_with_the_final_observation() -> None:
    """Pushing right until the pole falls: the terminal step is terminated (not truncated),
    its final observation is out of CartPole's bounds, and the step returns a fresh start."""
    for envs in _pair("CartPole-v1", 2, **CARTPOLE):
        with closing(envs):
            envs.reset(seed=[3, 4])
            for _ in range(200):
                obs, _, terminated, truncated, info = envs.step(np.array([1, 1]))
                if terminated.any():
                    break
        assert terminated.any() and not truncated.any(), type(envs).__name__
        assert info["_final_obs"].tolist() == terminated.tolist()
        for j in np.flatnonzero(terminated):
            x, theta = info["final_obs"][j][0], info["final_obs"][j][2]
            assert abs(x) > 2.4 or abs(theta) > 12 * 2 * np.pi / 360
            assert np.all(np.abs(obs[j]) <= 0.05)


@needs_envpool
def test_each_env_is_seeded_by_its_own_seed_at_every_reset() -> None:
    """As Gymnasium's: the same seeds give the same episodes (each env's from its seed
    alone, whatever its index), a reset without seeds continues the generators."""
    actions = [np.full((2, 3), 0.3 * (-1) ** t, np.float32) for t in range(5)]
    with closing(make_vector_env("Hopper-v5", 2, backend="envpool")) as envs:
        first, _ = envs.reset(seed=[5, 6])
        run1 = [envs.step(a)[0] for a in actions]
        again, _ = envs.reset(seed=[5, 6])
        run2 = [envs.step(a)[0] for a in actions]
        swapped, _ = envs.reset(seed=[6, 5])
        unseeded, _ = envs.reset()
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(np.stack(run1), np.stack(run2))
    np.testing.assert_array_equal(swapped, first[::-1])
    assert not np.allclose(unseeded, swapped)


@needs_envpool
def test_box_actions_in_unit_range_map_onto_the_env_bounds() -> None:
    """Pendulum's torque is in [-2, 2]: -1, 0 and 1 become -2, 0 and 2 (RescaleAction's map)."""
    with closing(make_vector_env("Pendulum-v1", 3, backend="envpool")) as envs:
        raw = envs._env_actions(np.array([[1.0], [-1.0], [0.0]], np.float32))  # type: ignore[attr-defined]
    np.testing.assert_allclose(raw, [[2.0], [-2.0], [0.0]])


@needs_envpool
def test_a_task_envpool_lacks_is_one_line() -> None:
    with (
        gym.make("Pendulum-v1") as reference,
        pytest.raises(
            HybridRLError, match="envpool has no task 'Pendulm-v1'; did you mean Pendulum-v1"
        ),
    ):
        make_envpool_vector_env("Pendulm-v1", 1, reference)


@pytest.mark.slow  # two PPO compiles: ~20 s on 2 cores
@needs_envpool
def test_a_ppo_run_on_envpool_is_deterministic_and_records_its_backend(tmp_path: Path) -> None:
    """A tiny ppo_discrete run (segments of 16 steps, so envs are re-seeded mid-run) gives the
    same evaluations twice and writes the backend into run.json's fingerprint."""
    from hybridrl.training.runner import run

    recipe = get_recipe("ppo_discrete").with_budget(on_policy_steps=32)
    phases = tuple(
        dataclasses.replace(p, rollout_steps=4) if isinstance(p, OnPolicy) else p
        for p in recipe.phases
    )
    recipe = dataclasses.replace(recipe, phases=phases).with_config(
        hidden_dims=(8,), num_minibatches=2, update_epochs=1
    )
    scores = []
    for k in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # episodes cut by the tiny budget
            result = run(
                recipe,
                "CartPole-v1",
                run_dir=tmp_path / f"r{k}",
                env_backend="envpool",
                num_envs=2,
                eval_episodes=2,
                eval_interval=16,
                checkpoint_interval=16,
                progress=False,
            )
        scores.append(result.evaluations())
    assert scores[0] == scores[1] and len(scores[0]) >= 2
    info = json.loads((tmp_path / "r0" / "run.json").read_text())
    assert info["fingerprint"]["settings"]["env_backend"] == "envpool"


def _random_episodes(backend: str, n_envs: int = 8, want: int = 400) -> np.ndarray:
    """(return, length) of the first ``want`` episodes of uniform random actions."""
    envs = make_vector_env("Hopper-v5", n_envs, backend=backend)
    rng = np.random.default_rng(0)
    out: list[tuple[float, int]] = []
    with closing(envs):
        envs.reset(seed=list(range(n_envs)))
        ret, length = np.zeros(n_envs), np.zeros(n_envs, int)
        while len(out) < want:
            actions = rng.uniform(-1, 1, (n_envs, 3)).astype(np.float32)
            _, rewards, terminated, truncated, _ = envs.step(actions)
            ret, length = ret + rewards, length + 1
            for j in np.flatnonzero(terminated | truncated):
                out.append((float(ret[j]), int(length[j])))
                ret[j], length[j] = 0.0, 0
    return np.array(out[:want])


@pytest.mark.slow  # ~15 s: 2 x 400 episodes
@needs_envpool
def test_random_actions_give_the_same_episodes_in_distribution() -> None:
    """EnvPool's Hopper-v5 is Gymnasium's in distribution: returns and lengths of 400 random
    episodes agree within 3 standard errors of their difference (docs/results.md, section 10:
    17.24 vs 16.84, lengths 22.41 vs 22.26). Both backends are seeded: not flaky."""
    a, b = _random_episodes("gymnasium"), _random_episodes("envpool")
    for col in range(2):
        se = np.sqrt(a[:, col].var(ddof=1) / len(a) + b[:, col].var(ddof=1) / len(b))
        assert abs(a[:, col].mean() - b[:, col].mean()) < 3 * se
