"""Checkpoints and resume: what a checkpoint holds, how a run is restored from one, and
when a resume is refused (another configuration) or allowed to extend the last phase.

A checkpoint is one file (`save_checkpoint`): the agent state, the online buffer and the PRNG
key as arrays, and JSON meta (counters, the agent in effect, whether the dataset was dropped,
the metric records). Restoring reads the counters first, replays the recipe's hooks up to the
checkpoint's phase (they decide the state's static structure), then reads the arrays into
that structure.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax

from hybridrl.data.rollout import Rollout
from hybridrl.training.checkpoint import load_checkpoint, save_checkpoint, stored_shape
from hybridrl.training.context import Counters
from hybridrl.training.phases import Learner
from hybridrl.training.recipes import Recipe
from hybridrl.types import HybridRLError


def check_fingerprint(run_json: Path, fingerprint: dict[str, Any], run_dir: Path) -> int | None:
    """Refuse a resume under another configuration, except a larger budget of the last
    phase (continuing a training, as SB3's ``reset_num_timesteps=False``); returns the old
    budget in that case, else None."""
    try:
        old = json.loads(run_json.read_text())["fingerprint"]
    except (OSError, ValueError, KeyError) as exc:
        raise HybridRLError(f"--resume: cannot read {run_json}: {exc}") from exc
    new = json.loads(json.dumps(fingerprint))
    # Recipe fields added since a run was written count at their defaults.
    if isinstance(old.get("recipe"), dict):
        old["recipe"].setdefault("reward_normalization", "none")
        old["recipe"].setdefault("reward_kind", "dense")
        old["recipe"].setdefault("observation_stats", "observations")
        old["recipe"].setdefault("budget_rules", [])
        if isinstance(old["recipe"].get("sparse_variant"), dict):
            old["recipe"]["sparse_variant"].setdefault("budget_rules", [])
        for phase in old["recipe"].get("phases", []):
            if isinstance(phase, dict) and phase.get("phase") in ("offline", "online"):
                phase.setdefault("sampler", "uniform")
                phase.setdefault("sampler_temperature", 0.1)
    extended_from = last_phase_extension(old, new)
    if extended_from is not None:
        return extended_from
    if old != new:
        diffs = diff_keys(old, new)
        raise HybridRLError(
            f"--resume: the checkpoint in {run_dir} was written for another "
            f"configuration (differs in: {', '.join(diffs[:8])}); only the last phase's "
            "budget may grow"
        )
    return None


def save_run_checkpoint(
    path: Path,
    learner: Learner,
    key: jax.Array,
    counters: Counters,
    records: list[dict[str, Any]],
    offline_dropped: bool,
) -> None:
    """Write the run's state at a segment boundary (atomically, one file)."""
    meta = {
        "counters": dataclasses.asdict(counters),
        "agent_name": learner.agent_name,
        "offline_dropped": offline_dropped,
        "records": records,
        "rollouts": learner.rollouts is not None,
    }
    tree = {"state": learner.state, "online": learner.online, "key": key}
    if learner.rollouts is not None:
        tree["rollouts"] = learner.rollouts
    save_checkpoint(tree, meta, path)


def restore(
    recipe: Recipe, learner: Learner, ckpt: Path, *, extended: bool = False
) -> tuple[Learner, jax.Array, Counters, list[dict[str, Any]]]:
    """``learner`` (the run's initial one) restored from ``ckpt``; with the PRNG key, the
    counters and the metric records. ``extended``: the last phase's budget grew, so the
    online buffer is larger than the stored one."""
    meta = read_meta(ckpt)
    counters = Counters(**meta["counters"])
    for i in range(counters.phase_index + (1 if counters.phase_started else 0)):
        for hook in recipe.phases[i].hooks:
            learner = hook.apply(learner)
    if meta["offline_dropped"]:
        learner = dataclasses.replace(learner, offline=None)
    learner = dataclasses.replace(learner, agent_name=meta["agent_name"])
    online = learner.online
    if extended and online is not None:
        # A longer budget sizes a larger online buffer; the stored one never wrapped (its
        # capacity covered every env step), so its rows go first and the rest stay free.
        stored_rows = stored_shape(ckpt, "online", "data", "rewards")[0]
        if stored_rows < online.capacity:
            small = jax.tree_util.tree_map(lambda x: x[:stored_rows], online.data)
            online = dataclasses.replace(online, data=small)
    template = {"state": learner.state, "online": online, "key": jax.random.PRNGKey(0)}
    if meta.get("rollouts"):
        # The kept rollouts' length varies (a phase may end on a shorter rollout): their
        # template is what the file holds.
        template["rollouts"] = Rollout(**_stored(ckpt, "rollouts"))
    tree, _ = load_checkpoint(template, ckpt)
    # The file gives host (numpy) arrays; the uninterrupted run holds device arrays, and
    # un-jitted hooks that run after a restore (`SeedBuffer` at the switch) need them.
    tree = jax.device_put(tree)
    restored = tree["online"]
    full = learner.online
    if full is not None and restored is not None and restored.capacity < full.capacity:
        data = jax.tree_util.tree_map(
            lambda big, rows: big.at[: rows.shape[0]].set(rows), full.data, restored.data
        )
        restored = dataclasses.replace(restored, data=data, insert_index=restored.size)
    learner = dataclasses.replace(
        learner, state=tree["state"], online=restored, rollouts=tree.get("rollouts")
    )
    return learner, tree["key"], counters, list(meta["records"])


def _stored(path: Path, name: str) -> dict[str, Any]:
    from flax import serialization

    return dict(serialization.msgpack_restore(path.read_bytes())["tree"][name])


def read_meta(path: Path) -> dict[str, Any]:
    from flax import serialization

    try:
        return dict(json.loads(serialization.msgpack_restore(path.read_bytes())["meta"]))
    except Exception as exc:
        raise HybridRLError(f"checkpoint {path} is unreadable (truncated?): {exc}") from exc


def last_phase_extension(old: dict[str, Any], new: dict[str, Any]) -> int | None:
    """The old budget when ``new`` differs from ``old`` only by a larger budget (``steps`` or
    ``updates``) of the last phase; None otherwise."""
    try:
        old_last, new_last = old["recipe"]["phases"][-1], new["recipe"]["phases"][-1]
    except (KeyError, IndexError, TypeError):
        return None
    field = "updates" if "updates" in old_last else "steps"
    before, after = old_last.get(field), new_last.get(field)
    if not isinstance(before, int) or not isinstance(after, int) or after <= before:
        return None
    patched = json.loads(json.dumps(old))
    patched["recipe"]["phases"][-1][field] = after
    return before if patched == new else None


def diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".") or "(root)"]
