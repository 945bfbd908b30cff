"""Several seeds of one recipe: one run directory per seed (``RUN_DIR/seed_K``), either one
run after another or, with ``vmap_seeds=True``, the offline phases of all seeds as one
compiled program over a leading seed axis (`hybridrl run ... --seeds 0,1,2 --vmap-seeds`).

What ``vmap_seeds`` runs as one program: the recipe's *leading* `Offline` phases. Each chunk
of updates of all seeds is one ``scan_updates_seeds`` call (`hybridrl.training.seeds`), with
each seed's state, PRNG key and chunk schedule exactly those of its own run and the dataset
shared, so seed K's numbers equal ``run(..., seed=K)`` up to floating-point reassociation in
batched kernels (tested). Everything else stays per seed: the phases' hooks, evaluations (on
the host, each seed with its own eval envs), metric records and checkpoints (each seed's run
directory holds exactly the files of a separate run, so `report`, ``--resume`` and `export`
work per seed, with or without ``--vmap-seeds``).

What it does not: the phases after the first non-offline one (warm-up, online, on-policy) run
as ordinary runs, one seed after another, each continuing from its own state (no vector env
per seed yet). A status line says which phases were vmapped. A recipe that starts with no
offline updates has nothing to vmap and is refused, as are runs of the seeds that would differ
in more than their seed, and W&B logging (one W&B run per process).

Resume: each seed resumes from its own checkpoint. Seeds whose checkpoints stand at the same
point (the usual case) are vmapped together again; a kill between two seeds' checkpoint writes
leaves them at two points, and each group of seeds at one point then runs as its own vmapped
program until the offline phases end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hybridrl.data.dataset import Dataset
from hybridrl.training import runner as runner_module
from hybridrl.training.context import EvaluationCallback, RunResult, RunSettings
from hybridrl.training.executors.offline import run_offline_phase_seeds
from hybridrl.training.phases import Offline
from hybridrl.training.recipes import Recipe
from hybridrl.training.rundir import RunDirectory, RunInterrupted
from hybridrl.training.runner import Runner, RunSession
from hybridrl.types import HybridRLError


def seed_dir(run_dir: str | Path, seed: int) -> Path:
    """The run directory of ``seed`` under ``run_dir``."""
    return Path(run_dir) / f"seed_{seed}"


def vmapped_phases(recipe: Recipe) -> int:
    """How many of the recipe's phases run vmapped: its leading `Offline` phases (0 when
    they hold no updates)."""
    n = 0
    while n < len(recipe.phases) and isinstance(recipe.phases[n], Offline):
        n += 1
    offline = [p for p in recipe.phases[:n] if isinstance(p, Offline)]
    return n if any(p.updates > 0 for p in offline) else 0


def run_seeds(
    recipe: Recipe,
    env_id: str,
    *,
    seeds: Iterable[int],
    dataset: Dataset | None = None,
    run_dir: str | Path,
    vmap_seeds: bool = False,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool | None = None,
    wandb_project: str | None = None,
    on_evaluation: EvaluationCallback | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    echo: Callable[[str], None] | None = None,
    **settings: Any,
) -> list[RunResult]:
    """Run ``recipe`` once per seed, in ``run_dir/seed_K``; returns the runs' results in the
    order of ``seeds``. Keyword settings as `run`'s, except ``seed``.

    ``vmap_seeds``: the leading offline phases of all seeds as one vmapped program (see the
    module docstring), the rest per seed; else one ordinary run after another.
    ``resume``: continue every seed that has a run in its directory and start the others.
    ``on_result(result)`` is called as each seed's run finishes; ``echo(line)`` receives
    status lines (default: stderr when ``progress``).
    """
    seed_list = [int(k) for k in seeds]
    if not seed_list:
        raise HybridRLError("seeds: give at least one seed")
    if len(set(seed_list)) != len(seed_list):
        raise HybridRLError(f"seeds: each seed once, got {','.join(map(str, seed_list))}")
    if "seed" in settings:
        raise HybridRLError("run_seeds takes seeds=[...], not a seed setting")
    names = {f.name for f in dataclasses.fields(RunSettings)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise HybridRLError(f"unknown run setting(s) {', '.join(unknown)}")
    dirs = [seed_dir(run_dir, k) for k in seed_list]
    # A resume continues the seeds that started and starts the rest, so the command printed
    # after Ctrl-C finishes the whole set.
    resumes = [resume and (d / "run.json").exists() for d in dirs]
    common: dict[str, Any] = {
        "progress": progress,
        "tensorboard": tensorboard,
        "wandb_project": wandb_project,
        "on_evaluation": on_evaluation,
        "echo": echo,
    }
    if not vmap_seeds:
        results = []
        for k, d, again in zip(seed_list, dirs, resumes, strict=True):
            result = runner_module.run(  # looked up per call (tests replace it)
                recipe,
                env_id,
                dataset=dataset,
                run_dir=d,
                resume=again,
                seed=k,
                **common,
                **settings,
            )
            if on_result is not None:
                on_result(result)
            results.append(result)
        return results
    if wandb_project:
        raise HybridRLError(
            "--vmap-seeds cannot log to W&B (one W&B run per process, the seeds' runs are "
            "open at once); drop --wandb or --vmap-seeds"
        )
    runners = [
        Runner(recipe, RunSettings(env_id=env_id, seed=k, **settings), dataset, d, **common)
        for k, d in zip(seed_list, dirs, strict=True)
    ]
    _check_vmappable(runners)
    return _run_vmapped(runners, resumes, Path(run_dir), on_result, echo, progress)


def _check_vmappable(runners: list[Runner]) -> None:
    """Refuse, before any work, what cannot run as one program."""
    first = runners[0]
    if vmapped_phases(first.recipe) == 0:
        phases = ", ".join(f"'{p.label}' ({p.kind})" for p in first.recipe.phases)
        raise HybridRLError(
            f"--vmap-seeds vmaps a recipe's leading offline phases, and recipe "
            f"'{first.recipe.name}' starts with no offline updates (phases: {phases}); drop "
            "--vmap-seeds to run the seeds one after another"
        )

    def unseeded(r: Runner) -> dict[str, Any]:
        fp = r.fingerprint()
        return fp | {"settings": {k: v for k, v in fp["settings"].items() if k != "seed"}}

    for r in runners[1:]:
        if unseeded(r) != unseeded(first):
            raise HybridRLError(
                f"--vmap-seeds: the runs of seeds {first.settings.seed} and {r.settings.seed} "
                "differ in more than their seed; run them without --vmap-seeds"
            )


def _run_vmapped(
    runners: list[Runner],
    resumes: list[bool],
    run_dir: Path,
    on_result: Callable[[RunResult], None] | None,
    echo: Callable[[str], None] | None,
    progress: bool,
) -> list[RunResult]:
    recipe = runners[0].recipe
    prefix = vmapped_phases(recipe)
    with contextlib.ExitStack() as stack:
        # Every seed's checks, checkpoint and envs before any seed writes a file, so that a
        # failure in one leaves every directory as it was (`RunDirectory`).
        locks = [stack.enter_context(RunDirectory(r.run_dir)) for r in runners]
        sessions: list[RunSession] = []
        for r, again in zip(runners, resumes, strict=True):
            s = r.open_session(again)
            stack.callback(s.close)
            if sessions and s.learner.offline is not None:
                # One copy of the dataset on the device: every seed's rows are the same
                # (prepared from one dataset under one recipe; the seed picks no rows).
                shared = sessions[0].learner.offline
                if shared is not None and shared.capacity == s.learner.offline.capacity:
                    s.learner = dataclasses.replace(s.learner, offline=shared)
            sessions.append(s)
        for r, s, lock in zip(runners, sessions, locks, strict=True):
            r.start_session(s, lock)
        say = echo or ((lambda line: print(line, file=sys.stderr)) if progress else None)
        if say is not None:
            say(_status_line(runners, sessions, prefix))
        try:
            for group in _groups(sessions, prefix):
                _run_prefix([runners[i] for i in group], [sessions[i] for i in group], prefix)
        except KeyboardInterrupt:
            pairs = zip(runners, sessions, strict=True)
            lines = [r.interrupt_message(s.counters) for r, s in pairs]
            raise RunInterrupted("\n".join(lines), run_dir) from None
        results = []
        for r, s in zip(runners, sessions, strict=True):
            try:
                r.run_phases(s)
            finally:
                s.close()
            result = r.finish_session(s)
            if on_result is not None:
                on_result(result)
            results.append(result)
        return results


def _groups(sessions: list[RunSession], prefix: int) -> list[list[int]]:
    """Indices of the seeds still in the vmapped phases, grouped by where they stand."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, s in enumerate(sessions):
        c = s.counters
        if c.phase_index < prefix:
            where = dataclasses.asdict(c) | {"elapsed_s": None}
            groups.setdefault(tuple(sorted(where.items())), []).append(i)
    return list(groups.values())


def _run_prefix(runners: list[Runner], sessions: list[RunSession], prefix: int) -> None:
    """The vmapped phases of seeds that stand at one point, as one program per chunk."""
    phases = runners[0].recipe.phases
    c0 = sessions[0].counters
    while c0.phase_index < prefix:
        phase = phases[c0.phase_index]
        assert isinstance(phase, Offline)
        for r, s in zip(runners, sessions, strict=True):
            r.begin_phase(s, phase)
        learners, keys = run_offline_phase_seeds(
            [s.context for s in sessions],
            phase,
            [s.learner for s in sessions],
            [s.key for s in sessions],
            [s.counters for s in sessions],
        )
        for r, s, learner, key in zip(runners, sessions, learners, keys, strict=True):
            s.learner, s.key = learner, key
            r.end_phase(s, phase)


def _status_line(runners: list[Runner], sessions: list[RunSession], prefix: int) -> str:
    """One line: which phases of which seeds run as one program, and what runs per seed."""
    phases = runners[0].recipe.phases
    vmapped = ", ".join(f"'{p.label}'" for p in phases[:prefix])
    todo = [
        r.settings.seed
        for r, s in zip(runners, sessions, strict=True)
        if s.counters.phase_index < prefix
    ]
    rest = ", ".join(f"'{p.label}' ({p.kind})" for p in phases[prefix:])
    if todo:
        line = (
            f"--vmap-seeds: offline phase(s) {vmapped} of seeds {_join(todo)} run as one "
            "vmapped program"
        )
        done = [r.settings.seed for r in runners if r.settings.seed not in todo]
        if done:
            line += f" (seeds {_join(done)} are past them)"
    else:
        line = f"--vmap-seeds: every seed is past the offline phase(s) {vmapped}: nothing to vmap"
    if rest:
        line += f"; phases {rest} run per seed, one seed after another (not vmapped)"
    return line


def _join(seeds: list[int]) -> str:
    return ",".join(str(k) for k in seeds)
