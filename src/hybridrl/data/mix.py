"""Mixed datasets of whole episodes: the "random + x% expert" sets of trajectory weighting.

Hong et al., ICLR 2023, "Harnessing Mixed Offline Reinforcement Learning Datasets via
Trajectory Weighting", evaluate on mixtures such as hopper-random-expert-5%: 95% random and 5%
expert data. The official code (Improbable-AI/harness-offline-rl @ f88e210,
``d3rlpy_impls/datasets.py``, ``mix_mdp_mujoco_datasets``) builds them from a total size n
(1M by default) and per-source ratios: from each source it draws whole episodes at random
until that source's transitions reach ``int(n * ratio)``. The fraction is therefore a
fraction of **transitions**, rounded up to whole episodes, not of episodes. `mix_datasets`
does the same with two documented deviations: episodes are drawn **without** replacement
(the official ``random.choice`` may repeat an episode), and from a seeded generator.
"""

from __future__ import annotations

import numpy as np

from hybridrl.data import transitions as tr
from hybridrl.data.dataset import Dataset, DatasetMetadata, _parent
from hybridrl.types import DatasetError


def _episodes(ds: Dataset, target: int, rng: np.random.Generator, path: str) -> np.ndarray:
    """Row indices of whole episodes of ``ds``, drawn in random order without replacement
    until they hold at least ``target`` transitions, then kept in the file's order."""
    if target <= 0:
        return np.zeros(0, np.int64)
    slices = tr.episode_slices(ds.transitions)
    if len(ds) < target:
        raise DatasetError(
            f"has {len(ds)} transitions; the mix needs {target} from it",
            path=path,
            field="transitions",
        )
    lengths = np.array([s.stop - s.start for s in slices])
    order = rng.permutation(len(slices))
    count = int(np.searchsorted(np.cumsum(lengths[order]), target) + 1)
    chosen = np.sort(order[:count])
    return np.concatenate([np.arange(slices[i].start, slices[i].stop) for i in chosen])


def _part(ds: Dataset, idx: np.ndarray, extras: set[str]) -> tr.Transitions:
    sub = ds.transitions.take(idx)
    sub = sub.replace(extras={k: v for k, v in sub.extras.items() if k in extras})
    if len(sub) and not tr.trailing_episode_complete(sub):
        # the source's trailing incomplete episode was drawn: cut it explicitly
        timeouts = np.asarray(sub.timeouts).copy()
        timeouts[-1] = 1
        sub = sub.replace(timeouts=timeouts.astype(np.asarray(sub.timeouts).dtype))
    return sub


def mix_datasets(
    random: Dataset,
    expert: Dataset,
    expert_fraction: float,
    *,
    size: int | None = None,
    seed: int = 0,
    name: str | None = None,
    paths: tuple[str, str] = ("random", "expert"),
) -> Dataset:
    """``(1 - f)·size`` transitions of ``random`` and ``f·size`` of ``expert``, each as whole
    episodes drawn without replacement (rounded up to the episode that reaches the target),
    random episodes first, each part in its file's order. ``size`` defaults to
    ``len(random)``; extra columns are kept where both sources have them. Terminals and
    timeouts are kept as they are; a drawn trailing incomplete episode gets an explicit
    time-out (boundaries are never glued).

    Errors (`DatasetError`, naming the file, ``paths``, and the field): a fraction outside
    (0, 1), a source too small, an empty source, different env ids or spaces.
    """
    if not 0.0 < expert_fraction < 1.0:
        raise DatasetError(
            f"--expert-fraction must be in (0, 1), got {expert_fraction}", field="expert_fraction"
        )
    for ds, path in zip((random, expert), paths, strict=True):
        if len(ds) == 0:
            raise DatasetError("is empty", path=path, field="transitions")
    a, b = random.metadata, expert.metadata
    if a.env_id and b.env_id and a.env_id != b.env_id:
        raise DatasetError(
            f"env id {b.env_id!r} differs from the random dataset's {a.env_id!r}",
            path=paths[1],
            field="env_id",
        )
    for label, x, y in (
        ("observation_space", a.observation_space, b.observation_space),
        ("action_space", a.action_space, b.action_space),
    ):
        if tuple(x.shape) != tuple(y.shape) or x.kind != y.kind:
            raise DatasetError(
                f"{y.describe()} differs from the random dataset's {x.describe()}",
                path=paths[1],
                field=label,
            )
    total = len(random) if size is None else int(size)
    if total <= 0:
        raise DatasetError(f"--size must be positive, got {total}", field="size")
    n_expert = int(total * expert_fraction)
    n_random = int(total * (1.0 - expert_fraction))
    rng = np.random.default_rng(seed)
    idx_random = _episodes(random, n_random, rng, paths[0])
    idx_expert = _episodes(expert, n_expert, rng, paths[1])
    shared = set(random.transitions.extras) & set(expert.transitions.extras)
    parts = [_part(random, idx_random, shared), _part(expert, idx_expert, shared)]
    t = tr.concatenate([p for p in parts if len(p)])
    refs = {(m.ref_min_score, m.ref_max_score) for m in (a, b)}
    ref_min, ref_max = refs.pop() if len(refs) == 1 else (None, None)
    n_episodes = [len(tr.episode_slices(p)) if len(p) else 0 for p in parts]
    meta = DatasetMetadata(
        observation_space=a.observation_space,
        action_space=a.action_space,
        env_id=a.env_id or b.env_id,
        source="mix",
        provenance={
            "parents": [_parent(random), _parent(expert)],
            "transforms": [
                {
                    "op": "mix",
                    "expert_fraction": expert_fraction,
                    "fraction_of": "transitions",
                    "size": total,
                    "seed": seed,
                    "random_transitions": len(parts[0]),
                    "expert_transitions": len(parts[1]),
                    "random_episodes": n_episodes[0],
                    "expert_episodes": n_episodes[1],
                    "sampling": "whole episodes, without replacement",
                }
            ],
        },
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        boundaries_inferred=a.boundaries_inferred or b.boundaries_inferred,
        name=name or f"{a.name or 'random'}+{b.name or 'expert'}-{expert_fraction:g}",
    )
    return Dataset.create(t, meta, check_spaces=False)
