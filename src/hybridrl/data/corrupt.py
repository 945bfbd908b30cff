"""Data corruption of Yang et al., "Towards Robust Offline Reinforcement Learning under Diverse
Data Corruption" (ICLR 2024, RIQL), to test how robust an offline algorithm is.

Four kinds of corruption, each hitting every transition independently with probability
``rate`` (RIQL's corruption rate, default 0.3), with magnitude ``scale`` = ε (RIQL's
corruption range, default 1.0). ``std_d`` below is the standard deviation of dimension ``d``
of the corrupted field over the whole (clean) dataset.

=================  =================================  ========================================
kind               random                             adversarial
=================  =================================  ========================================
``observations``   ŝ = s + U(-ε, ε)·std               ŝ = s + δ, δ = argmin Q(s + δ, a)
``actions``        â = a + U(-ε, ε)·std               â = a + δ, δ = argmin Q(s, a + δ)
``rewards``        r̂ ~ U(-30ε, 30ε)                   r̂ = -ε·r
``dynamics``       ŝ' = s' + U(-ε, ε)·std             ŝ' = s' + δ, δ = argmin Q(s' + δ, π(s' + δ))
=================  =================================  ========================================

Adversarial δ lies in the L∞ box |δ_d| ≤ ε·std_d and is found by projected gradient descent on
the critic's Q value (the attacker's critic, e.g. the mean of an ensemble trained on the clean
data; RIQL uses a pretrained EDAC agent). ``dynamics`` corrupts the next observation only, so
``s'_t`` no longer equals ``s_{t+1}``: that is the point. Likewise ``observations`` corrupts
``s_t`` but not the ``s'_{t-1}`` it came from.

Differences from RIQL's ``attack.py`` (all documented where they happen):

* ``clip_actions=True`` (default) clips corrupted actions to the action space so the dataset
  stays valid; RIQL does not clip (``clip_actions=False`` reproduces it).
* The attack's δ starts uniformly inside the box; RIQL's initial draw is scaled by std twice
  before the first clamp.
* The attack descends each row's own Q instead of the batch mean; with RIQL's normalised
  (fresh-Adam) steps this gives the same updates and makes them independent of chunking.
* Several kinds in one call: each kind draws its rows from its own seeded stream, and all
  statistics (std) come from the clean data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.data.dataset import Dataset, derived_provenance
from hybridrl.types import Array, HybridRLError

KINDS = ("observations", "actions", "rewards", "dynamics")
MODES = ("random", "adversarial")
# The field each kind corrupts.
FIELD = {
    "observations": "observations",
    "actions": "actions",
    "rewards": "rewards",
    "dynamics": "next_observations",
}
RANDOM_REWARD_RANGE = 30.0  # RIQL: random rewards are U(-30ε, 30ε)
ATTACK_STEP_SIZE = 0.01  # RIQL: learning rate 0.01·ε on δ measured in units of std
ATTACK_CHUNK = 10_000  # rows per jitted attack call, bounds device memory

Critic = Callable[[Array, Array], Array]
Policy = Callable[[Array], Array]


def corrupt_dataset(
    ds: Dataset,
    kind: str | list[str] | tuple[str, ...],
    *,
    mode: str = "random",
    rate: float = 0.3,
    scale: float = 1.0,
    seed: int = 0,
    critic: Critic | None = None,
    policy: Policy | None = None,
    clip_actions: bool = True,
    attack_steps: int = 100,
) -> Dataset:
    """A copy of ``ds`` with RIQL data corruption (Yang et al., ICLR 2024) applied.

    Args:
        ds: the clean dataset (continuous actions for ``kind="actions"``).
        kind: one of ``observations``, ``actions``, ``rewards``, ``dynamics`` (next
            observations), or a list of them. Each kind draws its own rows independently, as
            RIQL resamples the attacked indices per kind; all statistics (std) come from the
            clean data.
        mode: ``random`` or ``adversarial``.
        rate: probability that a transition is corrupted, in [0, 1].
        scale: ε >= 0, the corruption range in units of the per-dimension std.
        seed: seeds row selection, noise and the attack's initial δ (deterministic).
        critic: ``critic(obs, act) -> Q`` written in JAX (differentiable with `jax.grad`),
            e.g. the mean of a trained ensemble; required for adversarial observations,
            actions and dynamics. Any output shape works; the mean over all but the batch
            axis is each row's Q.
        policy: ``policy(obs) -> act`` in JAX; required for adversarial dynamics.
        clip_actions: clip corrupted actions to the action space bounds so the result is a
            valid dataset. RIQL does not clip; ``False`` reproduces the paper (the result may
            then violate the action space and is not checked against it).
        attack_steps: projected-gradient steps of the adversarial attack (RIQL: 100).

    Returns:
        A new dataset, ``metadata.source == "corrupt"``, with a provenance entry ``{"op":
        "corrupt", kind, mode, rate, scale, seed, clip_actions, attack_steps, corrupted}``
        (``corrupted``: rows hit per kind) and boolean extras ``corrupted_<kind>`` marking the
        rows hit (OR-ed with an existing mask of that name, so repeated corruption accumulates).

    Derived extras such as ``mc_returns`` are not recomputed (a warning says so when rewards
    change): recompute them from the corrupted rewards if the attack should reach them.
    """
    kinds = [kind] if isinstance(kind, str) else list(kind)
    _check_args(ds, kinds, mode, rate, scale, critic, policy, attack_steps)

    t = ds.transitions
    n = len(t)
    fields: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for k in kinds:
        # One independent stream per kind (seeded by kind's position in KINDS, not in the
        # request), so a kind's rows and noise do not depend on which other kinds are asked.
        rng = np.random.default_rng([seed, KINDS.index(k)])
        hit = rng.random(n) < rate
        rows = np.flatnonzero(hit)
        name = FIELD[k]
        clean = np.asarray(getattr(t, name))
        if k == "rewards":
            new = _corrupt_rewards(clean, rows, mode, scale, rng)
        else:
            new = _corrupt_vectors(ds, k, rows, mode, scale, rng, critic, policy, attack_steps)
            if k == "actions" and clip_actions:
                space = ds.metadata.action_space
                lo = space.low_array.astype(new.dtype)
                hi = space.high_array.astype(new.dtype)
                new = np.clip(new, lo, hi)
        fields[name] = new
        previous = t.extras.get(f"corrupted_{k}")
        masks[f"corrupted_{k}"] = hit if previous is None else hit | np.asarray(previous, bool)
        counts[k] = int(rows.size)

    if "rewards" in kinds and "mc_returns" in t.extras:
        warnings.warn(
            "corrupt_dataset changed the rewards but extras['mc_returns'] still holds the "
            "returns of the clean rewards; recompute them with Dataset.with_mc_returns",
            stacklevel=2,
        )

    args: dict[str, Any] = {
        "kind": kinds,
        "mode": mode,
        "rate": float(rate),
        "scale": float(scale),
        "seed": int(seed),
        "clip_actions": bool(clip_actions),
        "corrupted": counts,
    }
    if mode == "adversarial":
        args["attack_steps"] = int(attack_steps)
    prov = derived_provenance(ds, "corrupt", args)
    meta = replace(ds.metadata, provenance=prov, source="corrupt")
    new_t = replace(t, **fields, extras={**t.extras, **masks})
    # Unclipped actions may leave the space (RIQL's setting): then skip the space check.
    check = clip_actions or "actions" not in kinds
    return Dataset.create(new_t, meta, check_spaces=check)


def _check_args(
    ds: Dataset,
    kinds: list[str],
    mode: str,
    rate: float,
    scale: float,
    critic: Critic | None,
    policy: Policy | None,
    attack_steps: int,
) -> None:
    if not kinds:
        raise HybridRLError(f"corrupt_dataset needs at least one kind out of {KINDS}")
    for k in kinds:
        if k not in KINDS:
            raise HybridRLError(f"unknown corruption kind {k!r}; choose from {KINDS}")
    if len(set(kinds)) != len(kinds):
        raise HybridRLError(f"corruption kinds repeat: {kinds}")
    if mode not in MODES:
        raise HybridRLError(f"unknown corruption mode {mode!r}; choose from {MODES}")
    if not 0.0 <= rate <= 1.0:
        raise HybridRLError(f"corruption rate must be in [0, 1], got {rate}")
    if not scale >= 0.0:  # also rejects NaN
        raise HybridRLError(f"corruption scale (ε) must be >= 0, got {scale}")
    if "actions" in kinds and ds.metadata.action_space.kind == "discrete":
        raise HybridRLError(
            "action corruption is defined for continuous (Box) actions; this dataset has "
            f"{ds.metadata.action_space.describe()} actions"
        )
    for k in kinds:
        if k in ("observations", "dynamics"):
            dtype = np.asarray(getattr(ds.transitions, FIELD[k])).dtype
            if not np.issubdtype(dtype, np.floating):
                raise HybridRLError(
                    f"cannot add noise to {FIELD[k]} of integer dtype {dtype}; convert them "
                    "to floats first"
                )
    if mode != "adversarial":
        return
    if attack_steps < 0:
        raise HybridRLError(f"attack_steps must be >= 0, got {attack_steps}")
    needs_critic = [k for k in kinds if k != "rewards"]
    if needs_critic and critic is None:
        raise HybridRLError(
            f"adversarial corruption of {needs_critic} needs critic=Q(obs, act): a JAX function "
            "returning Q values (e.g. the mean of a Q ensemble trained on the clean data), "
            "whose value the attack minimises (RIQL attacks with a pretrained EDAC critic)"
        )
    if "dynamics" in kinds and policy is None:
        raise HybridRLError(
            "adversarial 'dynamics' corruption needs policy=pi(obs) -> action (a JAX function, "
            "e.g. the attacker agent's deterministic actor): it minimises Q(s'+δ, pi(s'+δ))"
        )


def _corrupt_rewards(
    rewards: np.ndarray, rows: np.ndarray, mode: str, scale: float, rng: np.random.Generator
) -> np.ndarray:
    out = np.array(rewards, copy=True)
    if mode == "random":
        bound = RANDOM_REWARD_RANGE * scale
        out[rows] = rng.uniform(-bound, bound, size=rows.size)
    else:
        out[rows] = -scale * out[rows]
    return out


def _corrupt_vectors(
    ds: Dataset,
    kind: str,
    rows: np.ndarray,
    mode: str,
    scale: float,
    rng: np.random.Generator,
    critic: Critic | None,
    policy: Policy | None,
    attack_steps: int,
) -> np.ndarray:
    """Observations, actions or next observations with rows ``rows`` perturbed."""
    t = ds.transitions
    clean = np.asarray(getattr(t, FIELD[kind]))
    out = np.array(clean, copy=True)
    if rows.size == 0:
        return out
    # Population std per dimension over the whole clean field, as RIQL (np.std, axis=0).
    std = clean.astype(np.float64).std(axis=0)
    x = clean[rows].astype(np.float64)
    if mode == "random":
        u = rng.uniform(-scale, scale, size=x.shape)
    else:
        assert critic is not None
        u = _attack(ds, kind, rows, std, scale, rng, critic, policy, attack_steps)
    out[rows] = (x + u * std).astype(out.dtype)
    return out


def _attack(
    ds: Dataset,
    kind: str,
    rows: np.ndarray,
    std: np.ndarray,
    scale: float,
    rng: np.random.Generator,
    critic: Critic,
    policy: Policy | None,
    steps: int,
) -> np.ndarray:
    """RIQL's gradient attack: δ = u·std with u in [-ε, ε] minimising the critic's Q.

    u starts uniform in the box and takes ``steps`` projected steps
    ``u <- clip(u - lr·g/(|g| + 1e-8), -ε, ε)`` with ``lr = 0.01·ε`` and ``g`` the gradient of
    Q with respect to u. RIQL writes this with Adam but builds a fresh optimiser at every
    step, so every update is Adam's first, which is exactly this normalised (≈ signed)
    gradient step; we write it out. Each row's u only changes that row's Q, so we descend the
    per-row Q (the sum over rows rather than RIQL's batch mean): the same direction, and the
    result does not depend on how rows are chunked. With RIQL's 100 steps u travels at most
    ε, half the box width, so it need not reach the box edge (pass more ``steps`` for that).
    """
    t = ds.transitions
    field = np.asarray(getattr(t, FIELD[kind]))
    # RIQL draws the start as 2ε·std·(U(0,1) - 0.5) in units that are multiplied by std
    # again (a unit slip); we start uniformly inside the box itself, u0 ~ U(-ε, ε).
    u0 = rng.uniform(-scale, scale, size=(rows.size, *field.shape[1:]))
    lr = ATTACK_STEP_SIZE * scale
    std_j = jnp.asarray(std, jnp.float32)

    def row_q(obs: jax.Array, act: jax.Array) -> jax.Array:
        q = jnp.asarray(critic(obs, act), jnp.float32)
        # Sum over rows of each row's Q (mean over ensemble members or trailing axes).
        return jnp.mean(q) * obs.shape[0]

    if kind == "observations":

        def objective(u: jax.Array, obs: jax.Array, act: jax.Array) -> jax.Array:
            return row_q(obs + u * std_j, act)

    elif kind == "actions":

        def objective(u: jax.Array, obs: jax.Array, act: jax.Array) -> jax.Array:
            return row_q(obs, act + u * std_j)

    else:  # dynamics: the attacked next state is also the state the policy acts in
        assert policy is not None

        def objective(u: jax.Array, obs: jax.Array, act: jax.Array) -> jax.Array:
            nxt = obs + u * std_j
            return row_q(nxt, policy(nxt))

    grad = jax.grad(objective)

    @jax.jit
    def run(u: jax.Array, obs: jax.Array, act: jax.Array) -> jax.Array:
        def step(_: int, u: jax.Array) -> jax.Array:
            g = grad(u, obs, act)
            return jnp.clip(u - lr * g / (jnp.abs(g) + 1e-8), -scale, scale)

        return jax.lax.fori_loop(0, steps, step, u)

    # The states the critic sees: s_t, or s'_t for dynamics (whose stored action is unused).
    states = np.asarray(t.next_observations if kind == "dynamics" else t.observations)
    actions = np.asarray(t.actions)
    act_dtype = jnp.float32 if np.issubdtype(actions.dtype, np.floating) else actions.dtype
    chunk = min(ATTACK_CHUNK, rows.size)
    out = np.empty_like(u0)
    for start in range(0, rows.size, chunk):
        idx = rows[start : start + chunk]
        m = idx.size
        # Pad the last chunk to the chunk size so the jitted attack compiles once.
        pad = np.concatenate([idx, np.repeat(idx[-1:], chunk - m)])
        u_chunk = np.concatenate([u0[start : start + m], np.zeros((chunk - m, *u0.shape[1:]))])
        res = run(
            jnp.asarray(u_chunk, jnp.float32),
            jnp.asarray(states[pad], jnp.float32),
            jnp.asarray(actions[pad], act_dtype),
        )
        out[start : start + m] = np.asarray(res, np.float64)[:m]
    return out
