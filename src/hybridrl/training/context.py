"""The floor of the run engine: what a run is given (`RunSettings`), what it returns
(`RunResult`), where it stands (`Counters`), its derived seeds, and the `RunContext` the
phase executors read. Everything else in `hybridrl.training`'s run engine may import this
module; it imports none of them (their types only for the type checker)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrl.envs.envpool_backend import import_envpool
from hybridrl.envs.make import ENV_BACKENDS
from hybridrl.training.phases import Learner
from hybridrl.training.recipes import Recipe
from hybridrl.types import HybridRLError

if TYPE_CHECKING:
    import jax

    from hybridrl.training.metrics_log import RunLogger
    from hybridrl.training.phases import Phase
    from hybridrl.training.plan import RunPlan
    from hybridrl.training.prepared import PreparedData
    from hybridrl.training.runner import Runner

CHECKPOINT = "checkpoints/latest.ckpt"
# (runner, learner, eval record) -> None, called after every evaluation
EvaluationCallback = Callable[["Runner", Learner, dict[str, Any]], None]
PROBE_SIZE = 256


@dataclass(frozen=True)
class RunSettings:
    """How a recipe is run (everything but the recipe and the data).

    Attributes:
        env_id: Gymnasium id of the training and evaluation environments.
        seed: the run's seed (networks, sampling, env resets, evaluation episodes).
        num_envs: vector environments collecting in parallel.
        eval_episodes: episodes per evaluation (deterministic policy, separate envs; the same
            start seeds at every evaluation, so curves compare like with like).
        eval_interval: env steps between evaluations in warm-up/online phases.
        offline_eval_interval: updates between evaluations in offline phases (and one at the
            end of every phase that changed the policy).
        checkpoint_interval: env steps (online) or updates (offline) between checkpoints;
            also the segment length of the env-reset schedule (see the module docstring).
        log_interval: updates between ``train`` metric records.
        chunk_size: offline updates per compiled call.
        buffer_capacity: maximum rows of the online buffer.
        dip_fraction: the dip is measured over this first fraction of the env steps after
            the switch.
        mc_sparse_reward: Cal-QL's sparse-reward rule for Monte-Carlo returns (a failed
            episode is worth failing forever); on whenever the recipe in effect is for
            sparse rewards (its ``reward_kind``).
        reference_returns: ``(random, expert)`` returns for normalized scores; default: the
            dataset's metadata, then the D4RL table for the env id; else raw returns.
        asynchronous: subprocess vector envs (worth it for slow simulators only).
        env_backend: the vector-env engine of the training and evaluation envs: "gymnasium"
            or "envpool" (EnvPool's C++ envs behind the same contract; an optional extra,
            ``pip install 'hybridrl[envpool]'``; see docs/envs.md).
        max_episode_steps, env_kwargs: the envs' time limit and constructor arguments
            (``gymnasium.make``'s); default: what the dataset recorded for this env id (a
            Minari env spec), else the registered ones.
        robustness_eps: when set, every evaluation also logs the robustness metrics of
            `hybridrl.evaluation.robustness` (policy and value sensitivity to state
            perturbations U[-eps, eps], Q-ensemble std on dataset and policy actions) on
            the Q probe's dataset states, for agents whose AgentSpec declares
            robustness_probe; eps is in the units the agent sees (standardised
            observations when the recipe normalises them).
    """

    env_id: str
    seed: int = 0
    num_envs: int = 1
    eval_episodes: int = 10
    eval_interval: int = 10_000
    offline_eval_interval: int = 50_000
    checkpoint_interval: int = 50_000
    log_interval: int = 1000
    chunk_size: int = 1000
    buffer_capacity: int = 1_000_000
    dip_fraction: float = 0.25
    mc_sparse_reward: bool = False
    reference_returns: tuple[float, float] | None = None
    asynchronous: bool = False
    env_backend: str = "gymnasium"
    max_episode_steps: int | None = None
    env_kwargs: dict[str, Any] | None = None
    robustness_eps: float | None = None

    def validate(self, recipe: Recipe) -> None:
        positive = ("num_envs", "eval_episodes", "eval_interval", "offline_eval_interval")
        names = [*positive, "checkpoint_interval", "log_interval", "chunk_size", "buffer_capacity"]
        if self.max_episode_steps is not None:
            names.append("max_episode_steps")
        for name in names:
            if getattr(self, name) <= 0:
                raise HybridRLError(f"{name} must be positive, got {getattr(self, name)}")
        if self.robustness_eps is not None and not self.robustness_eps >= 0:
            raise HybridRLError(f"robustness_eps must be >= 0, got {self.robustness_eps}")
        if self.env_backend not in ENV_BACKENDS:
            raise HybridRLError(
                f"env_backend must be one of {', '.join(ENV_BACKENDS)}, got {self.env_backend!r}"
            )
        if self.env_backend == "envpool":
            if self.asynchronous:
                raise HybridRLError(
                    "asynchronous is for env_backend gymnasium; envpool steps its envs in its "
                    "own threads"
                )
            import_envpool()  # not installed: one line saying how to install it
        n = self.num_envs
        if self.checkpoint_interval % n:
            raise HybridRLError(
                f"checkpoint_interval ({self.checkpoint_interval}) must be a multiple of "
                f"num_envs ({n})"
            )
        for p in recipe.phases:
            if p.env_steps % n:
                raise HybridRLError(
                    f"phase '{p.label}': steps ({p.env_steps}) must be a multiple of num_envs ({n})"
                )

    def fingerprint(self) -> dict[str, Any]:
        """The settings a resumed run must share (everything that changes the numbers)."""
        d = dataclasses.asdict(self)
        d.pop("asynchronous")
        d["reference_returns"] = list(self.reference_returns) if self.reference_returns else None
        # absent from runs written before them
        for name in ("max_episode_steps", "env_kwargs", "robustness_eps"):
            if d[name] is None:
                del d[name]
        if d["env_backend"] == "gymnasium":  # the default, absent from runs written before it
            del d["env_backend"]
        return d


@dataclass
class RunResult:
    """What `run` returns: the final learner, the summary metrics and the run directory."""

    learner: Learner
    summary: dict[str, Any]
    run_dir: Path
    obs_stats: tuple[np.ndarray, np.ndarray] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> Any:
        return self.learner.state

    def evaluations(self) -> list[tuple[int, float]]:
        return [(r["env_step"], r["score"]) for r in self.records if r["kind"] == "eval"]


@dataclass
class Counters:
    """Where a run stands; saved in every checkpoint."""

    env_step: int = 0
    update: int = 0
    phase_index: int = 0
    phase_progress: int = 0  # updates (offline) or env steps (warm-up/online) done in the phase
    phase_started: bool = False  # the phase's hooks have been applied
    update_credit: float = 0.0
    elapsed_s: float = 0.0
    last_eval_update: int = -1


def derived_seed(*parts: int) -> int:
    """A 32-bit seed derived from integers (env resets, evaluation episodes)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@dataclass
class RunContext:
    """What a phase executor reads and calls while it runs a phase: the recipe, settings,
    prepared data and plan, the logger, and the runner's evaluation and checkpoint (passed in
    as functions, so executors import neither the runner nor each other).

    Attributes:
        recipe, settings, data, plan: the run's definition, resolved.
        logger: the run's metric log.
        progress: show progress bars.
        clock: seconds since the run began (resumed runs include the time before).
        evaluate: ``(phase, learner, counters) -> score``: evaluates and logs a record.
        checkpoint: ``(learner, key, counters) -> None``: writes the run's checkpoint.
        dip_eval_step: an extra evaluation at this env step (the end of the dip window),
            or None.
    """

    recipe: Recipe
    settings: RunSettings
    data: PreparedData
    plan: RunPlan
    logger: RunLogger
    progress: bool
    clock: Callable[[], float]
    evaluate: Callable[[Phase, Learner, Counters], float]
    checkpoint: Callable[[Learner, jax.Array, Counters], None]
    dip_eval_step: int | None = None

    def log_train(self, phase: Phase, metrics: dict[str, Any], c: Counters) -> None:
        values = {k: float(v) for k, v in metrics.items()}
        self.logger.log(
            {"kind": "train", "phase": phase.label, "env_step": c.env_step, "update": c.update}
            | values
        )

    def log_episode(self, phase: Phase, c: Counters, ret: float, length: int, *, cut: bool) -> None:
        """An ``episode`` record (``cut``: ended by a segment boundary, not by the env)."""
        self.logger.log(
            {
                "kind": "episode",
                "phase": phase.label,
                "phase_index": c.phase_index,
                "env_step": c.env_step,
                "return": ret,
                "length": length,
                "score": self.data.score(ret),
                "cut": cut,
            }
        )

    def bar(self, phase: Phase, total: int, done: int, unit: str) -> Any:
        from tqdm.auto import tqdm

        i = self.recipe.phases.index(phase) + 1
        return tqdm(
            total=total,
            initial=done,
            unit=unit,
            disable=not self.progress,
            desc=f"[{i}/{len(self.recipe.phases)}] {phase.label}",
            dynamic_ncols=True,
        )
