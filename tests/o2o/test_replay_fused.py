"""The fused replay loop (`hybridrl.training.executors.replay_online`): one compiled call per
vector env step that inserts in place, and the PRNG stream of the unfused loop.

The probe agent acts with ``uniform(k_act, (n, 1), -1, 1)`` and uniform random steps draw
``uniform(k_act, (n, 1), -1)``: the same numbers, so the actions stored in the online buffer
are a pure function of the key schedule (``key, k_act, k_update = split(key, 3)`` per vector
step, no split at a segment boundary), which this file recomputes by hand.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest

from hybridrl.training.executors import replay_online
from hybridrl.training.phases import Online, Warmup
from hybridrl.training.recipes import Recipe
from hybridrl.training.runner import run

SETTINGS: dict[str, Any] = {
    "num_envs": 2,
    "eval_episodes": 1,
    "eval_interval": 1000,
    "checkpoint_interval": 8,  # segments of 4 vector steps
    "log_interval": 3,
    "progress": False,
}


def _recipe() -> Recipe:
    return Recipe(
        "probe_fused",
        "probe",
        (
            Warmup(name="warm", steps=4, policy="random"),
            Online(name="own", steps=16, random_steps=4, update_after=2, batch_size=4),
        ),
    )


def _expected_actions(seed: int, vector_steps: int, n: int) -> np.ndarray:
    """The unfused loop's actions: per vector step one 3-way split of the carried key."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 2)  # the runner's run key
    out = []
    for _ in range(vector_steps):
        key, k_act, _ = jax.random.split(key, 3)
        out.append(np.asarray(jax.random.uniform(k_act, (n, 1), minval=-1.0)))
    return np.concatenate(out)


def test_actions_follow_the_unfused_key_schedule_across_segments_and_phases(probe, tmp_path):
    result = run(_recipe(), "Pendulum-v1", run_dir=tmp_path, **SETTINGS)
    online = result.learner.online
    assert int(online.size) == 20
    stored = np.asarray(online.data.actions[:20])
    np.testing.assert_array_equal(stored, _expected_actions(0, 10, 2))
    # updates: one per env step once the phase's progress exceeds update_after=2
    assert int(result.state.updates) == 16 - 2
    assert result.summary["total_updates"] == 14


def test_one_call_per_vector_step_writes_the_buffer_in_place(probe, tmp_path, monkeypatch):
    calls: dict[str, int] = {"first": 0, "step": 0}
    moved: list[int] = []
    real = replay_online._programs

    def counting(agent: Any) -> dict[str, Any]:
        fns = real(agent)

        def first(*args: Any, **kw: Any) -> Any:
            calls["first"] += 1
            return fns["first"](*args, **kw)

        def step(*args: Any, **kw: Any) -> Any:
            calls["step"] += 1
            before = args[1].data.observations.unsafe_buffer_pointer()
            out = fns["step"](*args, **kw)
            if out[1].data.observations.unsafe_buffer_pointer() != before:
                moved.append(calls["step"])
            return out

        return {"first": first, "step": step}

    monkeypatch.setattr(replay_online, "_programs", counting)
    result = run(_recipe(), "Pendulum-v1", run_dir=tmp_path, **SETTINGS)
    # segments (env steps): warm-up [0, 4); online [4, 8), [8, 16), [16, 20)
    assert calls == {"step": 20 // 2, "first": 1 + 3}
    assert moved == [], "the online buffer was copied instead of donated"
    assert int(result.learner.online.size) == 20


@pytest.mark.parametrize("updates_per_step", [0.5, 2.0])
def test_fractional_and_multiple_updates_per_step(probe, tmp_path, updates_per_step):
    recipe = Recipe(
        "probe_utd",
        "probe",
        (Online(name="own", steps=12, updates_per_step=updates_per_step, batch_size=4),),
    )
    result = run(recipe, "Pendulum-v1", run_dir=tmp_path, **SETTINGS)
    assert int(result.state.updates) == int(12 * updates_per_step)
    np.testing.assert_array_equal(
        np.asarray(result.learner.online.data.actions[:12]), _expected_actions(0, 6, 2)
    )
