"""Training state of one network: flax's `TrainState`, plus a variant carrying target params.

We reuse ``flax.training.train_state.TrainState`` (fields ``step``, ``params``,
``opt_state``; ``apply_fn`` and the optax ``tx`` are static, ``pytree_node=False``) rather than
re-implement it; `TargetTrainState` only adds ``target_params`` for the networks that have a
slowly-tracking copy (critics; TD3's actor). Keeping the pair in one object means the agent
state cannot update one without the other, and `polyak_update` has one obvious home.

Agents hold one state per network (actor, critic, value, temperature) inside their own
``flax.struct`` agent state; `update` returns a new agent state and never mutates one.

Static vs traced (GUIDE rule 2): network sizes, ensemble sizes and batch sizes are static
(module attributes, array shapes); numeric hyperparameters that sweeps vary (``tau``,
``discount``, ``alpha``, ``expectile``, CQL weights, ...) must be *traced leaves* of the agent
config/state and passed as arguments (e.g. ``update_target(tau)``), never closed over as Python
floats, so that sweeping them (or ``vmap``-ing over them) does not recompile. Learning rates
live inside ``tx``; use ``optax.inject_hyperparams`` where a learning rate must be traced.

Compiled programs are reused across states. ``apply_fn`` and ``tx`` are part of the state's
static structure, which is part of every jit cache key: two states built from equal configs
must carry *equal* static parts, or every new run (every seed of a sweep, every test) compiles
its updates again. `TrainState.create` therefore interns the network module (flax modules
compare by value; a bound method compares its module by identity), and agents build their
optimizers with the cached constructors of `hybridrl.core.optim`.
"""

from __future__ import annotations

from types import MethodType
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from flax.training import train_state

from hybridrl.core.losses import polyak_update

__all__ = ["TargetTrainState", "TrainState"]

_MODULES: dict[nn.Module, nn.Module] = {}


def _interned(apply_fn: Any) -> Any:
    """``module.apply`` of the first module equal to ``apply_fn``'s (see the module doc)."""
    module = getattr(apply_fn, "__self__", None)
    if not isinstance(apply_fn, MethodType) or not isinstance(module, nn.Module):
        return apply_fn
    try:
        canonical = _MODULES.setdefault(module, module)
    except TypeError:  # a module with unhashable fields: keep it (it only costs compiles)
        return apply_fn
    return getattr(canonical, apply_fn.__name__)


class TrainState(train_state.TrainState):
    """flax's `TrainState` whose ``create`` interns the network (equal static structure for
    equal configs, so compiled updates are reused; see the module doc)."""

    @classmethod
    def create(cls, *, apply_fn: Any, params: Any, tx: Any, **kwargs: Any) -> Any:
        return super().create(apply_fn=_interned(apply_fn), params=params, tx=tx, **kwargs)


class TargetTrainState(TrainState):
    """A `TrainState` with ``target_params``, moved by Polyak averaging (`update_target`).

    ``create(apply_fn=..., params=..., tx=...)`` copies ``params`` into ``target_params``
    (fresh buffers, so donating the state to a jitted update never donates one buffer twice).
    """

    target_params: Any = struct.field(pytree_node=True, default=None)

    @classmethod
    def create(cls, *, apply_fn: Any, params: Any, tx: Any, **kwargs: Any) -> TargetTrainState:
        kwargs.setdefault("target_params", jax.tree_util.tree_map(jnp.copy, params))
        return super().create(apply_fn=apply_fn, params=params, tx=tx, **kwargs)

    def update_target(self, tau: float | jax.Array) -> TargetTrainState:
        """``target <- tau * params + (1 - tau) * target``; ``tau`` may be traced."""
        return self.replace(target_params=polyak_update(self.target_params, self.params, tau))
