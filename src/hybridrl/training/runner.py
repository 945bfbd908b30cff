"""The phased offline-to-online runner: a `Recipe`, an env id and (optionally) a dataset in; an
agent, metrics, checkpoints and a summary out.

Imperative shell around the pure agents (GUIDE rule 1): environments, files, progress bars and
the clock live here; every update still runs inside one compiled ``lax.scan`` per chunk
(`scan_updates`), with the sampler's mixing ratio as a traced argument.

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
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from hybridrl.agents import agent_spec, get_agent
from hybridrl.data.d4rl import d4rl_reference_scores
from hybridrl.data.dataset import Dataset, check_against_spaces, with_env_spaces
from hybridrl.data.io import atomic_path
from hybridrl.data.replay import ReplayBuffer, from_dataset, replay_init
from hybridrl.data.transitions import Transitions, calql_mc_returns
from hybridrl.envs.make import env_options, env_spaces, make_vector_env, recorded_env_options
from hybridrl.evaluation.rollout import evaluate_vector, jitted_act
from hybridrl.evaluation.stats import dip_window, finetune_step
from hybridrl.recipes import Recipe
from hybridrl.training.context import (
    CHECKPOINT,
    PROBE_SIZE,
    Counters,
    EvaluationCallback,
    RunResult,
    RunSettings,
    derived_seed,
)
from hybridrl.training.metrics_log import RunLogger, check_optional_loggers
from hybridrl.training.offline import unit_actions
from hybridrl.training.phases import Learner, Offline, Online, Phase, Warmup
from hybridrl.training.resume import check_fingerprint, restore, save_run_checkpoint
from hybridrl.training.run_data import (
    add,
    add_rows,
    agent_needs_mc,
    episode_with_mc,
    mixed_sampler,
    sample_buffer,
    with_extras,
)
from hybridrl.training.rundir import RunDirectory, RunInterrupted
from hybridrl.training.summary import dip_evaluation_step, run_summary
from hybridrl.training.updates import scan_updates
from hybridrl.types import HybridRLError


# ------------------------------------------------------------------------- jitted pieces
@cache
def _q_probe_fn(agent: ModuleType) -> Any:
    def q_probe(state: Any, obs: jax.Array) -> jax.Array:
        actions = agent.act(state, obs, jax.random.PRNGKey(0), deterministic=True)
        qs = state.critic.apply_fn({"params": state.critic.params}, obs, actions)
        return jnp.mean(qs)

    return jax.jit(q_probe)


# --------------------------------------------------------------------------------- runner
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
        settings.validate(recipe)
        if recipe.needs_dataset and dataset is None:
            raise HybridRLError(
                f"recipe '{recipe.name}' needs a dataset (it pretrains offline or samples "
                "offline data); pass one with --dataset"
            )
        self.recipe, self.settings, self.dataset = recipe, settings, dataset
        self.run_dir = Path(run_dir)
        self.progress, self.tensorboard, self.wandb_project = progress, tensorboard, wandb_project
        self.on_evaluation = on_evaluation
        self.echo = echo  # status lines (resumed from ...); default: stderr when progress
        check_optional_loggers(tensorboard, wandb_project)
        self.needs_env = recipe.env_steps > 0 or settings.eval_episodes > 0
        if dataset is not None:  # the env options the data was recorded with, unless given
            steps, kwargs = recorded_env_options(settings.env_id, dataset.metadata.provenance)
            given = settings.max_episode_steps, settings.env_kwargs
            settings = self.settings = dataclasses.replace(
                settings,
                max_episode_steps=steps if given[0] is None else given[0],
                env_kwargs=kwargs if given[1] is None else given[1],
            )

        # The env's own spaces (before the [-1, 1] rescaling), to check the dataset against.
        self.obs_space, self.act_space = env_spaces(settings.env_id, **self._env_options())
        if self.act_space.kind != "box":
            raise HybridRLError(f"{settings.env_id}: the agents need a Box action space")
        self.obs_dim = int(np.prod(self.obs_space.shape))
        self.act_dim = int(np.prod(self.act_space.shape))
        if dataset is not None:
            dataset = self.dataset = self._check_dataset(dataset)
        self.obs_stats = (
            dataset.observation_stats()
            if recipe.normalize_observations and dataset is not None
            else None
        )
        self.reward_factor = self._reward_factor()
        self.reference = self._reference_returns()
        self.score_unit = "normalized" if self.reference else "return"
        self.agent_chain = self._agent_chain()
        self.online_extras = self._online_extras()
        self.phase_bounds = self._phase_bounds()
        self.switch_step = self._switch_step()
        self.finetune_step = finetune_step(self._phase_records(), self.switch_step)

    # -------------------------------------------------------------------- set-up checks
    def _check_dataset(self, ds: Dataset) -> Dataset:
        """``ds`` checked against the env. A file that did not state its spaces (a D4RL file,
        an npz without metadata) takes the env's, so only real violations are errors."""
        ds = with_env_spaces(ds, self.obs_space, self.act_space, self.settings.env_id)
        name = ds.metadata.name or "dataset"
        check_against_spaces(ds.transitions, self.obs_space, ds.metadata.action_space, path=name)
        meta_act = ds.metadata.action_space
        same_box = (
            meta_act.kind == "box"
            and tuple(meta_act.shape) == tuple(self.act_space.shape)
            and np.allclose(meta_act.low_array, self.act_space.low_array)
            and np.allclose(meta_act.high_array, self.act_space.high_array)
        )
        if not same_box:
            # Dataset actions are mapped onto [-1, 1] with the dataset's bounds and env actions
            # with the env's: the two must agree or the agent would see two action scales.
            raise HybridRLError(
                f"dataset {name}: action space {meta_act.describe()} does not match "
                f"{self.settings.env_id}'s {self.act_space.describe()}"
            )
        return ds

    def _reward_factor(self) -> float:
        """The data-dependent reward factor of ``recipe.reward_normalization`` (1 for none),
        computed once from the dataset and applied to offline and online rewards alike."""
        if self.recipe.reward_normalization == "none" or self.dataset is None:
            return 1.0
        returns = self.dataset.episode_returns()
        spread = float(returns.max() - returns.min()) if len(returns) else 0.0
        if len(returns) < 2 or not np.isfinite(spread) or spread <= 0:
            name = self.dataset.metadata.name or "dataset"
            raise HybridRLError(
                f"dataset {name}: reward_normalization='return_range' needs episodes with "
                f"different returns; found {len(returns)} episode(s), spread {spread}"
            )
        return 1000.0 / spread

    def _reference_returns(self) -> tuple[float, float] | None:
        if self.settings.reference_returns is not None:
            return self.settings.reference_returns
        if self.dataset is not None:
            m = self.dataset.metadata
            if m.ref_min_score is not None and m.ref_max_score is not None:
                return (m.ref_min_score, m.ref_max_score)
        return d4rl_reference_scores(self.settings.env_id)

    def _agent_chain(self) -> list[tuple[str, Any]]:
        """The agent and config in effect in each phase (after its hooks), found by a dry
        run of the hooks on a tiny state."""
        learner = self._initial_learner(structure_only=True)
        chain = []
        for phase in self.recipe.phases:
            for hook in phase.hooks:
                if hook.kind not in ("seed_buffer", "drop_offline_data"):  # need real buffers
                    learner = hook.apply(learner)
            chain.append((learner.agent_name, learner.state.config))
        return chain

    def _phase_needs_mc(self, phase: Phase, i: int) -> bool:
        agent, config = self.agent_chain[i]
        updates = (isinstance(phase, Offline) and phase.updates > 0) or (
            isinstance(phase, Online) and phase.updates_per_step > 0 and phase.steps > 0
        )
        return updates and agent_needs_mc(agent, config)

    def _online_extras(self) -> set[str]:
        needs = any(
            self._phase_needs_mc(p, i)
            for i, p in enumerate(self.recipe.phases)
            if isinstance(p, Online)
        )
        return {"mc_returns"} if needs else set()

    def _phase_bounds(self) -> list[tuple[int, int]]:
        bounds, step = [], 0
        for p in self.recipe.phases:
            bounds.append((step, step + p.env_steps))
            step += p.env_steps
        return bounds

    def _switch_step(self) -> int | None:
        pretrained = False
        for p, (start, _) in zip(self.recipe.phases, self.phase_bounds, strict=True):
            if isinstance(p, Offline) and p.updates > 0:
                pretrained = True
            elif p.env_steps > 0 and pretrained:
                return start
        return None

    # ------------------------------------------------------------------------ learner
    def _offline_transitions(self) -> Transitions | None:
        ds = self.dataset
        if ds is None:
            return None
        if self.obs_stats is not None:
            ds = ds.normalize_observations(*self.obs_stats)
        needs_mc = "mc_returns" in self.online_extras or any(
            self._phase_needs_mc(p, i)
            for i, p in enumerate(self.recipe.phases)
            if isinstance(p, Offline)
        )
        if needs_mc:
            # Always recomputed (never a stored column): with this run's discount, reward
            # scale and sparse rule, the same as the online Monte-Carlo returns.
            gamma = float(np.asarray(self.recipe.agent_config().discount))
            t = self._scaled(ds.transitions)
            mc = calql_mc_returns(t, gamma, sparse_reward=self.settings.mc_sparse_reward)
            ds = ds.with_extras(mc_returns=mc)
        keys = {"mc_returns"} if needs_mc else set()
        t = unit_actions(ds)
        t = t.replace(extras={k: v for k, v in t.extras.items() if k in keys})
        return self._scaled(t)

    def _scaled(self, t: Transitions) -> Transitions:
        r = self.recipe
        scale = r.reward_scale * self.reward_factor
        if scale == 1.0 and r.reward_bias == 0.0:
            return t
        rewards = np.asarray(t.rewards) * scale + r.reward_bias
        return t.replace(rewards=rewards.astype(np.float32))

    def _initial_learner(self, structure_only: bool = False) -> Learner:
        """The learner before the first phase; ``structure_only``: tiny networks and no
        buffers, for dry runs of the hooks (the agent chain needs the state's type and
        config, not its size)."""
        key = jax.random.PRNGKey(self.settings.seed)
        config = self.recipe.agent_config()
        module = get_agent(self.recipe.agent)
        if structure_only and _has_hidden_dims(config):
            config = dataclasses.replace(config, hidden_dims=(1,))
        state = module.init(config, jax.random.fold_in(key, 1), self.obs_dim, self.act_dim)
        offline = None
        online = None
        if not structure_only:
            t = self._offline_transitions()
            offline = from_dataset(t) if t is not None else None
            online = self._online_buffer(t)
        return Learner(self.recipe.agent, state, offline, online)

    def _online_buffer(self, offline: Transitions | None) -> ReplayBuffer | None:
        if all(isinstance(p, Offline) for p in self.recipe.phases):
            return None
        seeds = any(any(h.kind == "seed_buffer" for h in p.hooks) for p in self.recipe.phases)
        extra_rows = len(offline) if (seeds and offline is not None) else 0
        # A seeded dataset always fits whole (`SeedBuffer` appends all of it); the online
        # rows are capped by buffer_capacity and overwrite the oldest online rows first only
        # once the buffer is full.
        online_rows = min(self.settings.buffer_capacity, self.recipe.env_steps)
        capacity = max(1, online_rows + extra_rows)
        example = Transitions(
            observations=np.zeros((1, self.obs_dim), np.float32),
            actions=np.zeros((1, self.act_dim), np.float32),
            rewards=np.zeros(1, np.float32),
            next_observations=np.zeros((1, self.obs_dim), np.float32),
            terminals=np.zeros(1, np.float32),
            timeouts=np.zeros(1, np.float32),
            extras={k: np.zeros(1, np.float32) for k in sorted(self.online_extras)},
        )
        return replay_init(example, capacity)

    # ------------------------------------------------------------------------- files
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
                stacklevel=3,
            )

    def _schedule_dip_evaluation(self) -> None:
        """Set ``dip_eval_step`` (an extra evaluation at the end of the dip window when the
        regular schedule has none inside it), and warn when no evaluation can fall inside."""
        self.dip_eval_step: int | None = None
        if self.switch_step is None:
            return
        s = self.settings
        self.dip_eval_step, possible = dip_evaluation_step(
            self.recipe.phases, self.phase_bounds, self.switch_step, self.finetune_step, s
        )
        if not possible:
            start, end = dip_window(
                self.switch_step, self.recipe.env_steps, s.dip_fraction, self.finetune_step
            )
            warnings.warn(
                f"no evaluation can fall in the dip window (env steps {start} to {end:g}, "
                "after the first update): the dip will be undefined (null); give the online "
                "phase more steps or raise dip_fraction",
                stacklevel=4,
            )

    def fingerprint(self) -> dict[str, Any]:
        ds = self.dataset
        return {
            "recipe": self.recipe.to_dict(),
            "settings": self.settings.fingerprint(),
            "dataset": None
            if ds is None
            else {"name": ds.metadata.name, "hash": ds.content_hash()},
        }

    def _phase_records(self) -> list[dict[str, Any]]:
        return [
            {"name": p.label, "kind": p.kind, "start_step": a, "end_step": b}
            for p, (a, b) in zip(self.recipe.phases, self.phase_bounds, strict=True)
        ]

    def run_info(self) -> dict[str, Any]:
        ds = self.dataset
        return {
            "name": self.recipe.name,
            "task": (ds.metadata.name if ds is not None and ds.metadata.name else None)
            or self.settings.env_id,
            "env_id": self.settings.env_id,
            "seed": self.settings.seed,
            "score_unit": self.score_unit,
            "reference_returns": list(self.reference) if self.reference else None,
            # What the agent learns from: r' = scale * r + bias (scores use the env's r).
            "reward_transform": {
                "scale": self.recipe.reward_scale * self.reward_factor,
                "bias": self.recipe.reward_bias,
            },
            "switch_step": self.switch_step,
            "phases": self._phase_records(),
            "fingerprint": self.fingerprint(),
            "jax_backend": jax.default_backend(),
            # What `hybridrl export` needs besides the checkpoint (training/restore.py).
            "policy_io": {
                "observation_dim": self.obs_dim,
                "action_space": self.act_space.to_json(),
                "observation_stats": None
                if self.obs_stats is None
                else {
                    "mean": np.ravel(self.obs_stats[0]).tolist(),
                    "std": np.ravel(self.obs_stats[1]).tolist(),
                },
            },
        }

    def _env_options(self) -> dict[str, Any]:
        return env_options(self.settings.max_episode_steps, self.settings.env_kwargs)

    def _make_envs(self, num: int, *, asynchronous: bool = False) -> gym.vector.VectorEnv:
        """The training or evaluation vector env of this run."""
        return make_vector_env(
            self.settings.env_id, num, asynchronous=asynchronous, **self._env_options()
        )

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
        run_json = self.run_dir / "run.json"
        ckpt = self.run_dir / CHECKPOINT
        extended_from: int | None = None
        restoring = False
        if resume:
            if not run_json.exists():
                raise HybridRLError(f"--resume: no run to resume in {self.run_dir}")
            extended_from = self._check_fingerprint(run_json)
            # Killed before its first checkpoint: nothing to restore, start over.
            restoring = ckpt.exists()
        elif run_json.exists():
            raise HybridRLError(
                f"run directory {self.run_dir} already holds a run; pass --resume to continue "
                "it or choose another directory"
            )

        learner = self._initial_learner()
        key = jax.random.fold_in(jax.random.PRNGKey(self.settings.seed), 2)
        counters, records = Counters(), list[dict[str, Any]]()
        # From the dataset, before a restore may have dropped it (WSRL), so that a resumed
        # run probes Q on the same states as the uninterrupted one.
        self.probe = self._probe_observations(learner)
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
        logger: RunLogger | None = None
        try:
            self.eval_envs = self._make_envs(self.settings.eval_episodes)
            self._warn_if_checkpoints_cut_every_episode()
            self._schedule_dip_evaluation()
            # Only now, with the checkpoint read, may the run's files be rewritten: the metric
            # files first (the logger starts its optional backends before it writes them),
            # run.json last, so a failure cannot leave a run.json the old command refuses.
            logger = RunLogger(
                self.run_dir,
                records,
                tensorboard=self.tensorboard,
                wandb_project=self.wandb_project,
                run_config=self.fingerprint(),
            )
            with atomic_path(run_json) as tmp:
                tmp.write_text(json.dumps(self.run_info(), indent=2))
        except BaseException:
            envs.close()
            if hasattr(self, "eval_envs"):
                self.eval_envs.close()
            if logger is not None:
                logger.close()
            raise
        run_dir.started()
        if resume:
            self._say(self._resume_message(counters, restoring))
        start = time.perf_counter() - counters.elapsed_s
        self._clock = lambda: time.perf_counter() - start
        try:
            while counters.phase_index < len(self.recipe.phases):
                phase = self.recipe.phases[counters.phase_index]
                if not counters.phase_started:
                    for hook in phase.hooks:
                        learner = hook.apply(learner)
                    counters.phase_started = True
                if isinstance(phase, Offline):
                    learner, key = self._offline_phase(phase, learner, key, counters, logger)
                else:
                    learner, key = self._env_phase(phase, learner, key, counters, logger, envs)
                if counters.last_eval_update != counters.update or counters.update == 0:
                    self._evaluate(phase, learner, counters, logger)
                counters.phase_index += 1
                counters.phase_progress = 0
                counters.phase_started = False
                counters.update_credit = 0.0
                self._checkpoint(learner, key, counters, logger)
        except KeyboardInterrupt:
            raise RunInterrupted(self._interrupt_message(counters), self.run_dir) from None
        finally:
            envs.close()
            self.eval_envs.close()
            logger.close()
        summary = self._summary(logger.records, counters)
        with atomic_path(self.run_dir / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
        return RunResult(learner, summary, self.run_dir, self.obs_stats, logger.records)

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

    def _interrupt_message(self, c: Counters) -> str:
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

    def _check_fingerprint(self, run_json: Path) -> int | None:
        return check_fingerprint(run_json, self.fingerprint(), self.run_dir)

    def _checkpoint(
        self, learner: Learner, key: jax.Array, counters: Counters, logger: RunLogger
    ) -> None:
        counters.elapsed_s = self._clock()
        dropped = learner.offline is None and self.dataset is not None
        save_run_checkpoint(
            self.run_dir / CHECKPOINT, learner, key, counters, logger.records, dropped
        )
        self._last_checkpoint = dataclasses.replace(counters)

    # ------------------------------------------------------------------------ phases
    def _offline_phase(
        self,
        phase: Offline,
        learner: Learner,
        key: jax.Array,
        c: Counters,
        logger: RunLogger,
    ) -> tuple[Learner, jax.Array]:
        if learner.offline is None:
            raise HybridRLError(f"phase '{phase.label}' needs the dataset, which was dropped")
        agent = get_agent(learner.agent_name)
        s = self.settings
        with self._bar(phase, phase.updates, c.phase_progress) as bar:
            while c.phase_progress < phase.updates:
                # Chunks end on log, eval and checkpoint boundaries so that resuming from a
                # checkpoint replays the same chunks.
                done = c.phase_progress
                n = min(
                    s.chunk_size - done % s.chunk_size,
                    s.log_interval - c.update % s.log_interval,
                    s.checkpoint_interval - done % s.checkpoint_interval,
                    s.offline_eval_interval - done % s.offline_eval_interval,
                    phase.updates - done,
                )
                key, k = jax.random.split(key)
                state, metrics = scan_updates(
                    agent.update,
                    learner.state,
                    learner.offline,
                    k,
                    num_updates=n,
                    batch_size=phase.batch_size,
                    sample_fn=sample_buffer,
                )
                learner = dataclasses.replace(learner, state=state)
                c.phase_progress += n
                c.update += n
                bar.update(n)
                if c.update % s.log_interval == 0:
                    self._log_train(phase, metrics, c, logger)
                if c.phase_progress % s.offline_eval_interval == 0 and (
                    c.phase_progress < phase.updates
                ):
                    bar.set_postfix_str("evaluating")  # else the bar looks stalled
                    score = self._evaluate(phase, learner, c, logger)
                    bar.set_postfix(score=f"{score:.1f}")
                if c.phase_progress % s.checkpoint_interval == 0:
                    self._checkpoint(learner, key, c, logger)
        return learner, key

    def _env_phase(
        self,
        phase: Phase,
        learner: Learner,
        key: jax.Array,
        c: Counters,
        logger: RunLogger,
        envs: gym.vector.VectorEnv,
    ) -> tuple[Learner, jax.Array]:
        s = self.settings
        total = phase.env_steps
        if learner.online is None:  # pragma: no cover - an env phase always has a buffer
            raise HybridRLError("internal: env phase without an online buffer")
        with self._bar(phase, total, c.phase_progress) as bar:
            while c.phase_progress < total:
                # One segment: fresh env resets, ends on a checkpoint boundary or phase end.
                seg_end = min(total, c.phase_progress + self._to_boundary(c.env_step))
                learner, key = self._segment(phase, learner, key, c, logger, envs, seg_end, bar)
                if c.phase_progress < total and c.env_step % s.checkpoint_interval == 0:
                    self._checkpoint(learner, key, c, logger)
        return learner, key

    def _to_boundary(self, env_step: int) -> int:
        ci = self.settings.checkpoint_interval
        return ci - env_step % ci

    def _segment(
        self,
        phase: Phase,
        learner: Learner,
        key: jax.Array,
        c: Counters,
        logger: RunLogger,
        envs: gym.vector.VectorEnv,
        seg_end: int,
        bar: Any,
    ) -> tuple[Learner, jax.Array]:
        s, n = self.settings, self.settings.num_envs
        seeds = [derived_seed(s.seed, c.env_step, i) for i in range(n)]
        obs, _ = envs.reset(seed=seeds)  # type: ignore[arg-type]
        ep_return = np.zeros(n)
        ep_length = np.zeros(n, np.int64)
        pending: list[list[Transitions]] = [[] for _ in range(n)]
        mc = "mc_returns" in self.online_extras
        gamma = float(np.asarray(learner.state.config.discount))
        online_phase = isinstance(phase, Online)
        while c.phase_progress < seg_end:
            agent = get_agent(learner.agent_name)
            key, k_act, k_update = jax.random.split(key, 3)
            x = self._normalize(obs)
            random = (isinstance(phase, Warmup) and phase.policy == "random") or (
                online_phase and c.phase_progress < phase.random_steps  # type: ignore[attr-defined]
            )
            if random:
                actions = np.asarray(jax.random.uniform(k_act, (n, self.act_dim), minval=-1.0))
            else:
                deterministic = isinstance(phase, Warmup) and phase.policy.endswith("deterministic")
                actions = np.asarray(jitted_act(agent)(learner.state, x, k_act, deterministic))
            next_obs, rewards, terminated, truncated, info = envs.step(actions)
            final_obs = np.array(next_obs, copy=True)
            if "_final_obs" in info:
                for i in np.flatnonzero(info["_final_obs"]):
                    final_obs[i] = info["final_obs"][i]
            c.phase_progress += n
            c.env_step += n
            cut = c.phase_progress >= seg_end
            terminated = np.asarray(terminated, bool)
            env_truncated = np.asarray(truncated, bool)
            truncated = env_truncated | cut
            rows = Transitions(
                observations=x,
                actions=actions.astype(np.float32),
                rewards=np.asarray(rewards, np.float32),
                next_observations=self._normalize(final_obs),
                terminals=terminated.astype(np.float32),
                timeouts=(truncated & ~terminated).astype(np.float32),
            )
            rows = self._scaled(rows)
            online = learner.online
            assert online is not None
            if mc:
                for j in range(n):
                    pending[j].append(jax.tree_util.tree_map(lambda v, j=j: v[j], rows))
                    if terminated[j] or truncated[j]:
                        online = add_rows(online, episode_with_mc(pending[j], gamma, s))
                        pending[j] = []
            else:
                online = add(online, rows)
            learner = dataclasses.replace(learner, online=online)
            ep_return += np.asarray(rewards, np.float64)
            ep_length += 1
            for i in np.flatnonzero(terminated | truncated):
                natural = bool(terminated[i] or env_truncated[i])
                logger.log(
                    {
                        "kind": "episode",
                        "phase": phase.label,
                        "phase_index": c.phase_index,
                        "env_step": c.env_step,
                        "return": float(ep_return[i]),
                        "length": int(ep_length[i]),
                        "score": self._score(float(ep_return[i])),
                        "cut": not natural,
                    }
                )
                ep_return[i] = 0.0
                ep_length[i] = 0
            obs = next_obs
            if online_phase and c.phase_progress > phase.update_after:  # type: ignore[attr-defined]
                learner, key = self._online_updates(phase, learner, k_update, key, c, logger)
            bar.update(n)
            scheduled = c.env_step % s.eval_interval < n or c.env_step == self.dip_eval_step
            due = scheduled and c.phase_progress < phase.env_steps
            if due and c.last_eval_update != c.update:
                bar.set_postfix_str("evaluating")
                score = self._evaluate(phase, learner, c, logger)
                bar.set_postfix(score=f"{score:.1f}")
        return learner, key

    def _online_updates(
        self,
        phase: Any,
        learner: Learner,
        k_update: jax.Array,
        key: jax.Array,
        c: Counters,
        logger: RunLogger,
    ) -> tuple[Learner, jax.Array]:
        c.update_credit += phase.updates_per_step * self.settings.num_envs
        num = int(c.update_credit + 1e-9)
        if num == 0:
            return learner, key
        online = learner.online
        assert online is not None
        ratio = phase.offline_ratio
        mixing = ratio > 0 and learner.offline is not None
        if not mixing and int(online.size) == 0:
            return learner, key  # the credit stays: these updates run once data arrives
        c.update_credit -= num
        data: Any
        sample_fn: Any
        if mixing:
            assert learner.offline is not None
            if ratio >= 1.0:
                data, sample_fn = learner.offline, sample_buffer
            else:
                offline = with_extras(learner.offline, set(online.data.extras))
                data = (offline, online, jnp.asarray(ratio, jnp.float32))
                groups = agent_spec(learner.agent_name).minibatches_per_update(learner.state.config)
                sample_fn = mixed_sampler(int(groups))
        else:
            data, sample_fn = online, sample_buffer
        agent = get_agent(learner.agent_name)
        state, metrics = scan_updates(
            agent.update,
            learner.state,
            data,
            k_update,
            num_updates=num,
            batch_size=phase.batch_size,
            sample_fn=sample_fn,
        )
        before = c.update
        c.update += num
        if c.update // self.settings.log_interval > before // self.settings.log_interval:
            self._log_train(phase, metrics, c, logger)
        return dataclasses.replace(learner, state=state), key

    # -------------------------------------------------------------------- evaluation
    def _normalize(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32).reshape(len(obs), -1)
        if self.obs_stats is None:
            return obs
        mean, std = self.obs_stats
        return ((obs - mean.reshape(1, -1)) / std.reshape(1, -1)).astype(np.float32)

    def _score(self, ret: float) -> float:
        if self.reference is None:
            return ret
        lo, hi = self.reference
        return 100.0 * (ret - lo) / (hi - lo)

    def _probe_observations(self, learner: Learner) -> np.ndarray | None:
        if learner.offline is None:
            return None
        size = int(learner.offline.size)
        rows = np.random.default_rng(self.settings.seed).permutation(size)[:PROBE_SIZE]
        return np.asarray(learner.offline.data.observations)[np.sort(rows)]

    def _q_probe(self, learner: Learner) -> float | None:
        if self.probe is None or not agent_spec(learner.agent_name).q_probe:
            return None
        agent = get_agent(learner.agent_name)
        return float(_q_probe_fn(agent)(learner.state, self.probe))

    def _evaluate(
        self,
        phase: Phase,
        learner: Learner,
        c: Counters,
        logger: RunLogger,
    ) -> float:
        returns = evaluate_vector(
            get_agent(learner.agent_name),
            learner.state,
            self.eval_envs,
            seed=derived_seed(self.settings.seed, 10**9),
            normalize=self._normalize,
        )
        mean = float(returns.mean())
        c.last_eval_update = c.update
        logger.log(
            {
                "kind": "eval",
                "phase": phase.label,
                "phase_index": c.phase_index,
                "env_step": c.env_step,
                "update": c.update,
                "score": self._score(mean),
                "return_mean": mean,
                "return_std": float(returns.std()),
                "q_probe": self._q_probe(learner),
                "time_s": round(self._clock(), 3),
            }
        )
        if self.on_evaluation is not None:
            self.on_evaluation(self, learner, logger.records[-1])
        return self._score(mean)

    def _log_train(
        self, phase: Phase, metrics: dict[str, jax.Array], c: Counters, logger: RunLogger
    ) -> None:
        values = {k: float(v) for k, v in metrics.items()}
        logger.log(
            {
                "kind": "train",
                "phase": phase.label,
                "env_step": c.env_step,
                "update": c.update,
                **values,
            }
        )

    def _bar(self, phase: Phase, total: int, done: int) -> Any:
        i = self.recipe.phases.index(phase) + 1
        unit = "upd" if isinstance(phase, Offline) else "step"
        return tqdm(
            total=total,
            initial=done,
            unit=unit,
            disable=not self.progress,
            desc=f"[{i}/{len(self.recipe.phases)}] {phase.label}",
            dynamic_ncols=True,
        )

    def _summary(self, records: list[dict[str, Any]], c: Counters) -> dict[str, Any]:
        metrics = run_summary(
            records,
            switch_step=self.switch_step,
            end_step=self.recipe.env_steps,
            dip_fraction=self.settings.dip_fraction,
            normalized=self.score_unit == "normalized",
            finetune_step=self.finetune_step,
        )
        return {
            "name": self.recipe.name,
            "task": self.run_info()["task"],
            "seed": self.settings.seed,
            "score_unit": self.score_unit,
            **metrics,
            "switch_step": self.switch_step,
            "total_env_steps": c.env_step,
            "total_updates": c.update,
            "wall_time_s": round(self._clock(), 2),
        }


def _has_hidden_dims(config: Any) -> bool:
    return any(f.name == "hidden_dims" for f in dataclasses.fields(config))


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
