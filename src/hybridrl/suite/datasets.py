"""A D4RL-style MuJoCo suite rebuilt locally from committed behaviour policies.

Per environment (Gymnasium v5 Hopper, HalfCheetah, Walker2d) and as D4RL (Fu et al., 2020)
defined them, with stochastic rollouts of the behaviour policies:

- ``random``: ``steps`` transitions of the uniform random policy;
- ``medium``: ``steps`` transitions of the medium policy (the first SAC snapshot at 1/3 of the
  way from the random to the expert return);
- ``medium-replay``: the replay buffer up to the medium policy, rebuilt from the snapshots;
- ``expert``: ``steps`` transitions of the final SAC policy;
- ``medium-expert``: medium and expert concatenated.

Policies live in a policy directory per environment (``<root>/<env>/``: ``expert.npz``,
``snapshots/step_*.npz``, ``behaviour.json`` from `train_behaviour`, ``references.json`` with
the random and expert reference returns over 100 episodes). Builds are deterministic for the
seed and written to the local Minari store as ``hybridrl/<env>/<kind>-v0``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hybridrl.data.collect import NoiseConfig, collect
from hybridrl.data.dataset import Dataset, concatenate_datasets
from hybridrl.data.io import atomic_path
from hybridrl.envs.make import env_spaces
from hybridrl.policies import MLPPolicy, RandomPolicy
from hybridrl.suite.behaviour import list_snapshots, reference_returns, select_medium
from hybridrl.types import HybridRLError

SUITE_ENVS = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5"}
KINDS = ("random", "medium", "medium-replay", "expert", "medium-expert")
# maze2d-style navigation: the waypoint controller with Gaussian action noise of std 0.5 (as
# D4RL's generate_maze2d_datasets), 1M / 2M / 4M steps as D4RL's umaze / medium / large.
MAZE_STEPS = {"umaze": 1_000_000, "medium": 2_000_000, "large": 4_000_000}
MAZE_NOISE = 0.5
DEFAULT_STEPS = 1_000_000
REFERENCE_EPISODES = 100
POLICY_ROOT = Path(__file__).parent / "policies"


@dataclass(frozen=True)
class SuiteEntry:
    """One buildable dataset: ``<env>-<kind>-v0`` stored as ``hybridrl/<env>/<kind>-v0``."""

    env: str
    kind: str

    @property
    def name(self) -> str:
        return f"{self.env}-{self.kind}-v0"

    @property
    def minari_id(self) -> str:
        return f"hybridrl/{self.env}/{self.kind}-v0"

    @property
    def env_id(self) -> str:
        if self.env == "pointmaze":
            from hybridrl.envs.maze import ENV_IDS

            return ENV_IDS[self.kind]
        return SUITE_ENVS[self.env]

    @property
    def default_steps(self) -> int:
        return MAZE_STEPS[self.kind] if self.env == "pointmaze" else DEFAULT_STEPS


def suite_entries() -> list[SuiteEntry]:
    mujoco = [SuiteEntry(env, kind) for env in SUITE_ENVS for kind in KINDS]
    return mujoco + [SuiteEntry("pointmaze", maze) for maze in MAZE_STEPS]


def parse_name(name: str) -> SuiteEntry:
    for entry in suite_entries():
        if name in (entry.name, entry.minari_id, entry.name.removesuffix("-v0")):
            return entry
    names = ", ".join(e.name for e in suite_entries())
    raise HybridRLError(f"unknown suite dataset '{name}'; available: {names}")


def references(env: str, root: Path = POLICY_ROOT, *, seed: int = 0) -> tuple[float, float]:
    """(random, expert) mean returns over 100 episodes, cached in ``references.json``."""
    path = root / env / "references.json"
    if path.exists():
        data = json.loads(path.read_text())
        return float(data["random"]), float(data["expert"])
    env_id = SUITE_ENVS.get(env, env)
    expert = _policy(root / env / "expert.npz")
    lo, hi = reference_returns(env_id, expert, REFERENCE_EPISODES, seed=seed)
    refs = {
        "random": lo,
        "expert": hi,
        "episodes": REFERENCE_EPISODES,
        "expert_policy": "expert.npz, deterministic",
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(refs, indent=2))
    return lo, hi


def build_maze(
    entry: SuiteEntry,
    *,
    steps: int,
    seed: int,
    progress: bool,
    reference_episodes: int = REFERENCE_EPISODES,
) -> Dataset:
    """A maze2d-style dataset: the noisy waypoint controller in the continuing maze, with the
    random and noise-free controller returns over 100 episodes as references."""
    from hybridrl.envs.maze import MazeWaypointController

    controller = MazeWaypointController(entry.kind)
    lo, hi = reference_returns(entry.env_id, controller, reference_episodes, seed=seed)
    return collect(
        entry.env_id,
        controller,
        num_steps=steps,
        seed=seed,
        noise=NoiseConfig(gaussian_std=MAZE_NOISE),
        ref_min_score=lo,
        ref_max_score=hi,
        progress=progress,
        name=entry.name,
    )


def build(
    entry: SuiteEntry,
    *,
    steps: int | None = None,
    seed: int = 0,
    root: Path = POLICY_ROOT,
    env_id: str | None = None,
    progress: bool = True,
    built: Callable[[SuiteEntry], Dataset | None] | None = None,
    portable: bool = False,
) -> Dataset:
    """Roll out the entry's behaviour policy; returns the dataset (not saved). ``steps``
    defaults to 1M (MuJoCo) or D4RL's maze2d sizes; medium-replay's size is set by the
    training (the env steps until the medium snapshot) and ignores it. ``built(entry)`` may
    return an already built dataset (e.g. from the Minari store), which medium-expert reuses
    when its seed and size match. ``portable``: the behaviour policies act through
    `hybridrl.policies.portable_matmul` instead of BLAS, so the build is bit-identical on any
    x86-64 CPU (the policy's provenance records ``"inference": "portable"``); the published
    v0 sets were built without it (docs/suite.md)."""
    steps = steps or entry.default_steps
    env_id = env_id or entry.env_id
    if entry.env == "pointmaze":
        return build_maze(entry, steps=steps, seed=seed, progress=progress)
    lo, hi = references(entry.env, root)
    common: dict[str, Any] = {
        "seed": seed,
        "ref_min_score": lo,
        "ref_max_score": hi,
        "progress": progress,
        "noise": NoiseConfig(),
    }
    _, act_space = env_spaces(env_id)
    policy_dir = root / entry.env
    if entry.kind == "random":
        return collect(env_id, RandomPolicy(act_space), num_steps=steps, name=entry.name, **common)
    if entry.kind == "expert":
        return collect(
            env_id,
            _policy(policy_dir / "expert.npz", portable),
            num_steps=steps,
            name=entry.name,
            **common,
        )
    snapshots = list_snapshots(policy_dir)
    medium = select_medium(snapshots, expert_return=hi, random_return=lo)
    if entry.kind == "medium":
        return collect(
            env_id, _policy(medium.path, portable), num_steps=steps, name=entry.name, **common
        )
    if entry.kind == "medium-expert":
        # As D4RL: the medium and the expert datasets (same seed, same size) concatenated;
        # ``built`` supplies ones already in the store so that they are not rolled out again.
        parts = []
        for kind in ("medium", "expert"):
            part = SuiteEntry(entry.env, kind)
            ready = built(part) if built is not None else None
            if ready is None or not _same_build(ready, steps=steps, seed=seed, portable=portable):
                ready = build(
                    part,
                    steps=steps,
                    seed=seed,
                    root=root,
                    env_id=env_id,
                    progress=progress,
                    portable=portable,
                )
            parts.append(ready)
        return concatenate_datasets(parts, name=entry.name)
    # medium-replay: what the replay buffer held when training reached the medium snapshot at
    # env step s_m. The interval [s_k, s_k+1) is rolled out with snapshot k (the policy that
    # collected it, up to the snapshot period); [0, s_1) with the random policy (training's
    # random start and its untrained policy).
    before = [s for s in snapshots if s.env_step < medium.env_step]
    parts = [
        collect(
            env_id,
            RandomPolicy(act_space),
            num_steps=snapshots[0].env_step,
            name="replay-0",
            # not the random dataset's seed: its first rows would repeat here
            **{**common, "seed": seed + 10_000},
        )
    ]
    for i, snap in enumerate(before):
        nxt = snapshots[i + 1].env_step
        parts.append(
            collect(
                env_id,
                _policy(snap.path, portable),
                num_steps=nxt - snap.env_step,
                name=f"replay-{snap.env_step}",
                **{**common, "seed": seed + 10_000 + i + 1},
            )
        )
    return concatenate_datasets(parts, name=entry.name)


def _same_build(ds: Dataset, *, steps: int, seed: int, portable: bool) -> bool:
    p = ds.metadata.provenance
    inference = "portable" if portable else None
    same_inference = p.get("policy", {}).get("inference") == inference
    return (
        p.get("seed") == seed
        and p.get("num_steps") == steps
        and len(ds) == steps
        and (same_inference)
    )


def _policy(path: Path, portable: bool = False) -> MLPPolicy:
    if not path.exists():
        raise HybridRLError(
            f"behaviour policy {path} is missing; train it with "
            "`hybridrl datasets train-behaviour` (see docs/suite.md)"
        )
    return replace(MLPPolicy.load(path), portable=portable)
