"""A restored checkpoint traces exactly like the state it was saved from: no recompilation
after a resume (msgpack gives strongly typed NumPy arrays where the state held Python scalars
and weakly typed arrays)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.agents import iql
from hybridrl.training.checkpoint import load_checkpoint, load_pytree, save_checkpoint, save_pytree


def _avals(tree: object) -> list[tuple[str, tuple[int, ...], bool]]:
    """Each leaf's abstract value (what a trace keys on): dtype, shape and weak type (spelled
    out rather than ``jax.typeof``, which the oldest supported jax lacks)."""
    leaves = [jnp.asarray(x) if not isinstance(x, jax.Array) else x
              for x in jax.tree_util.tree_leaves(tree)]  # fmt: skip
    return [(str(x.dtype), tuple(x.shape), bool(x.weak_type)) for x in leaves]


def _state() -> iql.State:
    return iql.init(iql.Config(hidden_dims=(4,)), jax.random.PRNGKey(0), 3, 2)


def _trained(state: iql.State) -> iql.State:
    """``state`` as a run saves it: out of a compiled call, its Python numbers now weakly
    typed arrays."""
    return jax.jit(lambda s: s)(state)


def test_restored_leaves_have_the_templates_kinds_and_input_types(tmp_path: Path) -> None:
    state = _state()
    tree = {"state": state, "key": jax.random.PRNGKey(1), "weak": jnp.asarray(0.5)}
    saved = {**tree, "state": _trained(state)}
    save_checkpoint(saved, {"step": 3}, tmp_path / "ckpt")
    restored, meta = load_checkpoint(tree, tmp_path / "ckpt")
    assert meta == {"step": 3}
    assert isinstance(state.config.discount, float)  # what makes the check meaningful
    assert isinstance(restored["state"].config.discount, float)
    assert restored["weak"].weak_type
    assert _avals(restored) == _avals(tree)
    for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(saved),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    save_pytree(_trained(state), tmp_path / "state")
    assert _avals(load_pytree(state, tmp_path / "state")) == _avals(state)


def test_a_restored_state_reuses_the_compiled_update(tmp_path: Path) -> None:
    state = _state()
    calls = []

    @jax.jit
    def f(s: iql.State) -> jax.Array:
        calls.append(1)  # runs once per trace
        return s.config.discount * s.critic.step

    trained = _trained(state)
    f(trained)
    save_pytree(trained, tmp_path / "state")
    f(load_pytree(state, tmp_path / "state"))
    assert len(calls) == 1
