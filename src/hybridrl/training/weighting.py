"""Trajectory weighting as a phase's sampler: the per-row sampling distribution of an
`Offline` phase (or of the dataset's share of an `Online` phase's batches), computed once per
run from the prepared dataset's episodes.

Hong, Agrawal, Tachet des Combes, Laroche, ICLR 2023, "Harnessing Mixed Offline Reinforcement
Learning Datasets via Trajectory Weighting" (official code Improbable-AI/harness-offline-rl,
``d3rlpy_impls/weighted.py`` @ f88e210, ``d3rlpy_examples/weighted_datasets.py`` @ cb6e709).
The weights are `hybridrl.data.samplers.trajectory_weights`; this module checks that a
dataset can be weighted, turns the weights into the device CDF `sample_weighted` reads, and
describes them for ``run.json``.

Nothing here is state: the CDF is a pure function of the dataset (whose content hash is in the
run's fingerprint) and the phase's sampler settings, so a resumed run recomputes the same CDF
and continues bit-identically.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import jax
import numpy as np

from hybridrl.data.dataset import Dataset
from hybridrl.data.samplers import probabilities_to_cdf, trajectory_weights
from hybridrl.data.transitions import episode_slices, trailing_episode_complete
from hybridrl.training.phases import SAMPLERS, Offline, Online, Phase
from hybridrl.training.recipes import Recipe
from hybridrl.types import HybridRLError

SamplerKey = tuple[str, float]


def phase_sampler(phase: Phase) -> SamplerKey | None:
    """``(sampler, temperature)`` of a phase that draws dataset rows with weights, else None."""
    if isinstance(phase, Offline | Online) and phase.sampler != "uniform":
        return phase.sampler, float(phase.sampler_temperature)
    return None


def with_sampler(recipe: Recipe, sampler: str, temperature: float | None = None) -> Recipe:
    """``recipe`` with ``sampler`` (and ``temperature``, when given) on every phase that draws
    dataset rows: each `Offline` phase and each `Online` phase with ``offline_ratio > 0``
    (the CLI's ``--sampler``/``--sampler-temperature``). A recipe with no such phase is
    refused, as is a sampler name not in `SAMPLERS`."""
    if sampler not in SAMPLERS:
        raise HybridRLError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    changes: dict[str, Any] = {"sampler": sampler}
    if temperature is not None:
        changes["sampler_temperature"] = temperature

    def apply(r: Recipe) -> Recipe:
        phases, hit = [], False
        for p in r.phases:
            if isinstance(p, Offline) or (isinstance(p, Online) and p.offline_ratio > 0):
                p, hit = dataclasses.replace(p, **changes), True
            phases.append(p)
        if not hit:
            raise HybridRLError(
                f"--sampler: recipe '{r.name}' has no phase that samples the dataset (an "
                "offline phase, or an online phase with offline_ratio > 0)"
            )
        return dataclasses.replace(r, phases=tuple(phases))

    out = apply(recipe)
    if recipe.sparse_variant is not None:
        out = dataclasses.replace(out, sparse_variant=apply(recipe.sparse_variant))
    out.validate()
    return out


def dataset_weights(dataset: Dataset, sampler: str, temperature: float) -> np.ndarray:
    """`trajectory_weights` of ``dataset`` after the checks that make them meaningful:
    at least two episodes, and for AW more episodes than the regression's parameters (else
    V(s0) fits every return exactly, every advantage is 0 and AW would silently be uniform).
    Errors are `HybridRLError` naming the dataset."""
    name = dataset.metadata.name or "dataset"
    t = dataset.transitions
    slices = episode_slices(t)
    if len(slices) < 2:
        raise HybridRLError(
            f"dataset {name}: sampler {sampler!r} weights episodes against each other and "
            f"needs at least 2; found {len(slices)} (episodes end at terminals or timeouts)"
        )
    if sampler == "advantage":
        params = int(np.prod(np.asarray(t.observations).shape[1:])) + 1
        if len(slices) <= params:
            raise HybridRLError(
                f"dataset {name}: sampler 'advantage' fits V(s0) with {params} parameters and "
                f"needs more episodes than that; found {len(slices)}"
            )
    return trajectory_weights(t, method=sampler, temperature=temperature)  # type: ignore[arg-type]


def sampler_record(dataset: Dataset, phase: Phase, weights: np.ndarray) -> dict[str, Any]:
    """What ``run.json`` records of a phase's weighted sampler: its settings, the episodes,
    the probability mass of the best-weighted tenth of them, the effective number of
    episodes (1 / Σ P_i² over episode masses P_i) and a hash of the weights."""
    key = phase_sampler(phase)
    assert key is not None
    t = dataset.transitions
    slices = episode_slices(t)
    mass = np.add.reduceat(weights, [s.start for s in slices])
    top = max(1, len(mass) // 10)
    return {
        "phase": phase.label,
        "sampler": key[0],
        "temperature": key[1],
        "episodes": len(slices),
        "trailing_episode_complete": trailing_episode_complete(t),
        "top_10pct_episode_mass": float(np.sort(mass)[::-1][:top].sum()),
        "effective_episodes": float(1.0 / np.sum(mass**2)),
        "weights_sha256": hashlib.sha256(np.ascontiguousarray(weights).tobytes()).hexdigest(),
    }


def sampler_cdfs(
    phases: tuple[Phase, ...], dataset: Dataset | None
) -> tuple[dict[SamplerKey, jax.Array], list[dict[str, Any]]]:
    """The device CDF of every weighted sampler the phases use (one per setting) and one
    ``run.json`` record per weighted phase. A weighted phase without a dataset is refused."""
    cdfs: dict[SamplerKey, jax.Array] = {}
    weights: dict[SamplerKey, np.ndarray] = {}
    records = []
    for p in phases:
        key = phase_sampler(p)
        if key is None:
            continue
        if dataset is None:
            raise HybridRLError(f"phase '{p.label}': sampler {key[0]!r} needs a dataset")
        if key not in weights:
            weights[key] = dataset_weights(dataset, *key)
            cdfs[key] = probabilities_to_cdf(weights[key])
        records.append(sampler_record(dataset, p, weights[key]))
    return cdfs, records
