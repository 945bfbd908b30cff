"""The phase engine: a `Recipe`, an env id and (optionally) a dataset in; an agent, metrics,
checkpoints and a summary out.

The runner sequences phases and their hooks and owns the run's files; it knows nothing of how
a phase runs. That is the executors' (`hybridrl.training.executors`: offline, replay-online,
on-policy), which read a `RunContext` (settings, prepared data, plan, logger, and the
runner's evaluation and checkpoint as functions). Imperative shell around the pure agents
(GUIDE rule 1): environments, files, progress bars and the clock live here; every update
still runs inside one compiled call per chunk or rollout.

Determinism and resume. Environment steps are cut into *segments* at every multiple of
``checkpoint_interval`` env steps and at phase boundaries. A segment starts by resetting every
vector env with a seed derived from (seed, env step, env index) and ends by marking the last
transition of every unfinished episode as a time-out (``timeouts=1``: the episode is cut, its
value still bootstraps). The state at a boundary is therefore complete without the
environments' internal state: agent, buffers, PRNG key and counters. A checkpoint holds exactly
that, so a run resumed from one reproduces the uninterrupted run step for step (tested), and a
killed run loses at most one interval.

Files in ``run_dir`` (the format `hybridrl.evaluation.report` reads):
``run.json`` (recipe, settings, phases, fingerprint), ``metrics.jsonl`` (eval, episode and
train records), ``evaluations.csv``, ``summary.json`` (offline-to-online metrics) and
``checkpoints/latest.ckpt``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np
from tqdm.auto import tqdm

from hybridrl.data.dataset import Dataset
from hybridrl.data.io import atomic_path
from hybridrl.envs.make import env_options, make_vector_env
from hybridrl.evaluation.stats import dip_window
from hybridrl.evaluation.summary import run_summary
from hybridrl.training.context import (
    CHECKPOINT,
    Counters,
    EvaluationCallback,
    RunContext,
    RunResult,
    RunSettings,
)
from hybridrl.training.evaluate import Evaluator, probe_actions, probe_observations
from hybridrl.training.executors.offline import run_offline_phase
from hybridrl.training.executors.on_policy import run_on_policy_phase
from hybridrl.training.executors.replay_online import run_replay_phase
from hybridrl.training.metrics_log import RunLogger, check_optional_loggers
from hybridrl.training.phases import Learner, Offline, OnPolicy, Phase
from hybridrl.training.plan import initial_learner, plan_run
from hybridrl.training.prepared import prepare
from hybridrl.training.recipes import Recipe
from hybridrl.training.resume import check_fingerprint, restore, save_run_checkpoint
from hybridrl.training.rundir import RunDirectory, RunInterrupted
from hybridrl.training.sparse import select_reward_kind
from hybridrl.training.summary import dip_evaluation_step
from hybridrl.types import HybridRLError


@dataclass
class RunSession:
    """One run in progress: where it stands and what it holds open (envs, the logger).

    Made by `Runner.open_session`, completed by `Runner.start_session` (``logger``,
    ``evaluator``, ``ctx``); `close` releases the envs and the metric files (idempotent).
    """

    learner: Learner
    key: jax.Array
    counters: Counters
    records: list[dict[str, Any]]
    probe: np.ndarray | None
    resume: bool
    restoring: bool
    dip_eval_step: int | None
    envs: gym.vector.VectorEnv
    eval_envs: gym.vector.VectorEnv
    logger: RunLogger | None = None
    evaluator: Evaluator | None = None
    ctx: RunContext | None = None
    closed: bool = False
    probe_actions: np.ndarray | None = None  # the probe rows' dataset actions

    @property
    def context(self) -> RunContext:
        if self.ctx is None:
            raise RuntimeError("the session has not been started (Runner.start_session)")
        return self.ctx

    @property
    def log(self) -> RunLogger:
        if self.logger is None:
            raise RuntimeError("the session has not been started (Runner.start_session)")
        return self.logger

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.envs.close()
        self.eval_envs.close()
        if self.logger is not None:
            self.logger.close()


class Runner:
    """Runs one recipe; use `run` unless you need the pieces."""

    def __init__(
        self,
        recipe: Recipe,
        settings: RunSettings,
        dataset: Dataset | None,
        run_dir: str | Path,
        *,
        progress: bool = True,
        tensorboard: bool | None = None,
        wandb_project: str | None = None,
        on_evaluation: EvaluationCallback | None = None,
        echo: Callable[[str], None] | None = None,
    ):
        recipe.validate()
        # "auto": the preset's sparse-reward variant on a sparse-reward dataset (training/
        # sparse.py); from here on the recipe is the one in effect.
        recipe, self.reward_kind = select_reward_kind(recipe, dataset)
        settings.validate(recipe)
        if recipe.needs_dataset and dataset is None:
            raise HybridRLError(
                f"recipe '{recipe.name}' needs a dataset (it pretrains offline or samples "
                "offline data); pass one with --dataset"
            )
        check_optional_loggers(tensorboard, wandb_project)
        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.progress, self.tensorboard, self.wandb_project = progress, tensorboard, wandb_project
        self.on_evaluation = on_evaluation
        self.echo = echo  # status lines (resumed from ...); default: stderr when progress
        self.data = prepare(recipe, settings, dataset)
        self.settings, self.dataset = self.data.settings, self.data.dataset
        self.plan = plan_run(recipe, self.data, self.settings.seed)
        self.obs_stats = self.data.obs_stats
        self.score_unit = self.data.score_unit
        self.switch_step = self.plan.switch_step

    # ------------------------------------------------------------------------- files
    def fingerprint(self) -> dict[str, Any]:
        ds = self.dataset
        return {
            "recipe": self.recipe.to_dict(),
            "settings": self.settings.fingerprint(),
            "dataset": None
            if ds is None
            else {"name": ds.metadata.name, "hash": self.data.content_hash},
        }

    def run_info(self) -> dict[str, Any]:
        ds, data = self.dataset, self.data
        return {
            "name": self.recipe.name,
            "task": (ds.metadata.name if ds is not None and ds.metadata.name else None)
            or self.settings.env_id,
            "env_id": self.settings.env_id,
            "seed": self.settings.seed,
            "score_unit": self.score_unit,
            "reference_returns": list(data.reference) if data.reference else None,
            # What the agent learns from: r' = scale * r + bias (scores use the env's r).
            "reward_transform": {
                "scale": data.reward_scale,
                "bias": data.reward_bias,
                "normalization": data.reward_normalization,
            },
            # Which rewards the recipe's settings are for, and why (training/sparse.py).
            "reward_kind": self.reward_kind,
            "switch_step": self.switch_step,
            "phases": self.plan.phase_records(self.recipe),
            # Trajectory-weighted samplers (training/weighting.py): settings and weights.
            "samplers": self.plan.sampler_records,
            "fingerprint": self.fingerprint(),
            "jax_backend": jax.default_backend(),
            # What `hybridrl export` needs besides the checkpoint (training/restore.py).
            "policy_io": {
                "observation_dim": data.obs_dim,
                "action_space": data.act_space.to_json(),
                "observation_stats": None
                if self.obs_stats is None
                else {
                    "mean": self.obs_stats[0].ravel().tolist(),
                    "std": self.obs_stats[1].ravel().tolist(),
                },
            },
        }

    def _make_envs(self, num: int, *, asynchronous: bool = False) -> gym.vector.VectorEnv:
        """The training or evaluation vector env of this run."""
        s = self.settings
        return make_vector_env(
            s.env_id,
            num,
            asynchronous=asynchronous,
            # plan_run has refused an agent that cannot act in this kind of space
            action_kinds=(self.data.act_space.kind,),
            backend=s.env_backend,
            **env_options(s.max_episode_steps, s.env_kwargs),
        )

    def _warn_if_checkpoints_cut_every_episode(self) -> None:
        """Segments end at every checkpoint with an env reset (exact resume), so a checkpoint
        interval shorter than the env's time limit cuts every online episode; regret, which
        counts only uncut episodes, is then undefined and the agent never sees late states."""
        s = self.settings
        if not any(p.env_steps for p in self.recipe.phases):
            return
        try:
            horizon = s.max_episode_steps or gym.spec(s.env_id).max_episode_steps
        except gym.error.Error:
            return
        per_env = s.checkpoint_interval // s.num_envs
        if horizon and per_env < horizon:
            warnings.warn(
                f"checkpoint_interval {s.checkpoint_interval} ({per_env} steps per env) is "
                f"shorter than {s.env_id}'s episodes ({horizon} steps): every online episode "
                "is cut at a checkpoint and regret is undefined; use a checkpoint interval of "
                f"at least {horizon * s.num_envs}",
                stacklevel=4,
            )

    def _dip_evaluation_step(self) -> int | None:
        """An extra evaluation at the end of the dip window when the regular schedule has
        none inside it; warns when no evaluation can fall inside."""
        if self.switch_step is None:
            return None
        s, plan = self.settings, self.plan
        step, possible = dip_evaluation_step(
            self.recipe.phases, plan.phase_bounds, self.switch_step, plan.finetune_step, s
        )
        if not possible:
            start, end = dip_window(
                self.switch_step, self.recipe.env_steps, s.dip_fraction, plan.finetune_step
            )
            warnings.warn(
                f"no evaluation can fall in the dip window (env steps {start} to {end:g}, "
                "after the first update): the dip will be undefined (null); give the online "
                "phase more steps or raise dip_fraction",
                stacklevel=5,
            )
        return step

    # -------------------------------------------------------------------------- main
    def run(self, *, resume: bool = False) -> RunResult:
        """Run (or, with ``resume``, continue) the recipe in ``run_dir``.

        One process per run directory (`RunDirectory`); nothing in the directory is written
        until the run is known to start (a resume has read its checkpoint), and a failure
        before that leaves the directory as it was.
        """
        with RunDirectory(self.run_dir) as run_dir:
            return self._run_locked(run_dir, resume)

    def _run_locked(self, run_dir: RunDirectory, resume: bool) -> RunResult:
        session = self.open_session(resume)
        self.start_session(session, run_dir)
        try:
            self.run_phases(session)
        finally:
            session.close()
        return self.finish_session(session)

    # The pieces of `run`, in order, for a driver of several runs at once (`run_seeds`):
    # open_session (checks, checkpoint read, envs; no file written), start_session (the run's
    # files; the run directory is kept from then on), run_phases (or begin_phase / an
    # executor / end_phase per phase), finish_session (summary.json).
    def open_session(self, resume: bool) -> RunSession:
        """Everything before the first file is written: the resume checks, the initial or
        restored learner, the envs. Call under the run directory's lock."""
        run_json = self.run_dir / "run.json"
        ckpt = self.run_dir / CHECKPOINT
        extended_from: int | None = None
        restoring = False
        if resume:
            if not run_json.exists():
                raise HybridRLError(f"--resume: no run to resume in {self.run_dir}")
            extended_from = check_fingerprint(run_json, self.fingerprint(), self.run_dir)
            # Killed before its first checkpoint: nothing to restore, start over.
            restoring = ckpt.exists()
        elif run_json.exists():
            raise HybridRLError(
                f"run directory {self.run_dir} already holds a run; pass --resume to continue "
                "it or choose another directory"
            )

        learner = initial_learner(self.recipe, self.data, self.plan, self.settings.seed)
        key = jax.random.fold_in(jax.random.PRNGKey(self.settings.seed), 2)
        counters, records = Counters(), list[dict[str, Any]]()
        # From the dataset, before a restore may have dropped it (WSRL), so that a resumed
        # run probes Q on the same states as the uninterrupted one.
        probe = probe_observations(learner, self.settings.seed)
        probe_acts = probe_actions(learner, self.settings.seed)
        self._last_checkpoint: Counters | None = None
        if restoring:
            learner, key, counters, records = restore(
                self.recipe, learner, ckpt, extended=extended_from is not None
            )
            self._last_checkpoint = dataclasses.replace(counters)
            last = len(self.recipe.phases) - 1
            if extended_from is not None and counters.phase_index > last:
                # A finished run given a larger last-phase budget: reopen that phase.
                counters.phase_index, counters.phase_started = last, True
                counters.phase_progress, counters.update_credit = extended_from, 0.0
        # The envs before any file: an env that cannot be made must not leave a run behind.
        envs = self._make_envs(self.settings.num_envs, asynchronous=self.settings.asynchronous)
        eval_envs: gym.vector.VectorEnv | None = None
        try:
            eval_envs = self._make_envs(self.settings.eval_episodes)
            self._warn_if_checkpoints_cut_every_episode()
            dip_eval_step = self._dip_evaluation_step()
        except BaseException:
            envs.close()
            if eval_envs is not None:
                eval_envs.close()
            raise
        return RunSession(
            learner,
            key,
            counters,
            records,
            probe,
            resume,
            restoring,
            dip_eval_step,
            envs,
            eval_envs,
            probe_actions=probe_acts,
        )

    def start_session(self, s: RunSession, run_dir: RunDirectory) -> None:
        """Write the run's files (from here on the run directory holds a run) and set up
        the evaluator and the executors' context."""
        try:
            # Only now, with the checkpoint read, may the run's files be rewritten: the metric
            # files first (the logger starts its optional backends before it writes them),
            # run.json last, so a failure cannot leave a run.json the old command refuses.
            s.logger = RunLogger(
                self.run_dir,
                s.records,
                tensorboard=self.tensorboard,
                wandb_project=self.wandb_project,
                run_config=self.fingerprint(),
            )
            with atomic_path(self.run_dir / "run.json") as tmp:
                tmp.write_text(json.dumps(self.run_info(), indent=2))
        except BaseException:
            s.close()
            raise
        run_dir.started()
        if s.resume:
            self._say(self._resume_message(s.counters, s.restoring))
        start = time.perf_counter() - s.counters.elapsed_s
        self._clock = lambda: time.perf_counter() - start
        callback = self.on_evaluation
        logger = s.logger
        s.evaluator = Evaluator(
            self.data,
            s.eval_envs,
            s.probe,
            logger,
            self._clock,
            None if callback is None else lambda learner, record: callback(self, learner, record),
            probe_actions=s.probe_actions,
        )
        s.ctx = RunContext(
            recipe=self.recipe,
            settings=self.settings,
            data=self.data,
            plan=self.plan,
            logger=logger,
            progress=self.progress,
            clock=self._clock,
            evaluate=s.evaluator.evaluate,
            checkpoint=lambda learner, key, c: self._checkpoint(learner, key, c, logger),
            dip_eval_step=s.dip_eval_step,
        )

    def run_phases(self, s: RunSession) -> None:
        """Run the phases from where ``s`` stands to the end."""
        try:
            while s.counters.phase_index < len(self.recipe.phases):
                phase = self.recipe.phases[s.counters.phase_index]
                self.begin_phase(s, phase)
                ctx, c = s.context, s.counters
                if isinstance(phase, Offline):
                    s.learner, s.key = run_offline_phase(ctx, phase, s.learner, s.key, c)
                elif isinstance(phase, OnPolicy):
                    s.learner, s.key = run_on_policy_phase(ctx, phase, s.learner, s.key, c, s.envs)
                else:
                    s.learner, s.key = run_replay_phase(ctx, phase, s.learner, s.key, c, s.envs)
                self.end_phase(s, phase)
        except KeyboardInterrupt:
            raise RunInterrupted(self.interrupt_message(s.counters), self.run_dir) from None

    def begin_phase(self, s: RunSession, phase: Phase) -> None:
        """The phase's hooks, once (not again when a resumed run continues the phase)."""
        if not s.counters.phase_started:
            for hook in phase.hooks:
                s.learner = hook.apply(s.learner)
            s.counters.phase_started = True

    def end_phase(self, s: RunSession, phase: Phase) -> None:
        """A final evaluation unless the last update has one, then the next phase's counters
        and a checkpoint."""
        c = s.counters
        if c.last_eval_update != c.update or c.update == 0:
            s.context.evaluate(phase, s.learner, c)
        c.phase_index += 1
        c.phase_progress = 0
        c.phase_started = False
        c.update_credit = 0.0
        self._checkpoint(s.learner, s.key, c, s.log)

    def finish_session(self, s: RunSession) -> RunResult:
        """Write ``summary.json``; the run's result."""
        summary = self._summary(s.log.records, s.counters)
        with atomic_path(self.run_dir / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
        return RunResult(s.learner, summary, self.run_dir, self.obs_stats, s.log.records)

    def _where(self, c: Counters) -> str:
        phases, i = self.recipe.phases, c.phase_index
        if i >= len(phases):
            return f"env step {c.env_step}, update {c.update} (all phases done)"
        phase = phases[i]
        done = f"{c.phase_progress}/{phase.env_steps} env steps"
        if isinstance(phase, Offline):
            done = f"{c.phase_progress}/{phase.updates} updates"
        return (
            f"env step {c.env_step}, update {c.update} (phase {i + 1}/{len(phases)} "
            f"'{phase.label}', {done})"
        )

    def _resume_message(self, c: Counters, restored: bool) -> str:
        if not restored:
            return (
                f"{self.run_dir}: no checkpoint yet (the run stopped before its first one); "
                "starting over"
            )
        return f"{self.run_dir}: resumed from the checkpoint at {self._where(c)}"

    def interrupt_message(self, c: Counters) -> str:
        last = self._last_checkpoint
        kept = (
            f"the last checkpoint is at {self._where(last)}"
            if last is not None
            else "no checkpoint was written yet, so --resume starts over"
        )
        return f"{self.run_dir}: interrupted at {self._where(c)}; {kept}"

    def _say(self, message: str) -> None:
        if self.echo is not None:
            self.echo(message)
        elif self.progress:
            tqdm.write(message, file=sys.stderr)

    def _checkpoint(
        self, learner: Learner, key: jax.Array, counters: Counters, logger: RunLogger
    ) -> None:
        counters.elapsed_s = self._clock()
        dropped = learner.offline is None and self.dataset is not None
        save_run_checkpoint(
            self.run_dir / CHECKPOINT, learner, key, counters, logger.records, dropped
        )
        self._last_checkpoint = dataclasses.replace(counters)

    def _summary(self, records: list[dict[str, Any]], c: Counters) -> dict[str, Any]:
        totals = {
            "total_env_steps": c.env_step,
            "total_updates": c.update,
            "wall_time_s": round(self._clock(), 2),
        }
        return run_summary(
            self.run_info(), records, dip_fraction=self.settings.dip_fraction, totals=totals
        )


def run(
    recipe: Recipe,
    env_id: str,
    *,
    dataset: Dataset | None = None,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool | None = None,
    wandb_project: str | None = None,
    on_evaluation: EvaluationCallback | None = None,
    echo: Callable[[str], None] | None = None,
    **settings: Any,
) -> RunResult:
    """Run ``recipe`` on ``env_id`` (and ``dataset``) in ``run_dir``; see `RunSettings` for the
    keyword settings (seed, num_envs, eval_interval, checkpoint_interval, ...).

    ``on_evaluation(runner, learner, record)`` is called after every evaluation (e.g. to export
    policy snapshots); it must not change the learner. ``echo(line)`` receives status lines
    (where a resumed run continues from); by default they go to stderr when ``progress``.

    One process per run directory: a second one is refused (`RunDirectoryBusy`). Ctrl-C
    raises `RunInterrupted` (a `KeyboardInterrupt`) saying where the run stood and where its
    last checkpoint is; ``resume=True`` continues from there.

    Every check (recipe names, phase values, dataset vs env spaces, an existing run directory,
    a checkpoint written for another configuration) happens before any work starts.
    """
    names = {f.name for f in dataclasses.fields(RunSettings)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise HybridRLError(f"unknown run setting(s) {', '.join(unknown)}")
    runner = Runner(
        recipe,
        RunSettings(env_id=env_id, **settings),
        dataset,
        run_dir,
        progress=progress,
        tensorboard=tensorboard,
        wandb_project=wandb_project,
        on_evaluation=on_evaluation,
        echo=echo,
    )
    return runner.run(resume=resume)
