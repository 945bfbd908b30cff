"""The dataset of a run, prepared once: checked against the env, its observation statistics,
reward factor, reference returns and content hash computed a single time, and the offline
transitions the phases sample (actions on [-1, 1], rewards scaled, Monte-Carlo returns where
an agent reads them). The runner and every executor read this object; none goes back to the
dataset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hybridrl.data.d4rl import d4rl_reference_scores
from hybridrl.data.dataset import Dataset, check_against_spaces, with_env_spaces
from hybridrl.data.transitions import Transitions, calql_mc_returns
from hybridrl.data.transitions import next_actions as next_action_extras
from hybridrl.envs.make import env_options, env_spaces, recorded_env_options
from hybridrl.training.context import RunSettings
from hybridrl.training.offline import unit_actions
from hybridrl.training.recipes import Recipe, resolve_reward_normalization
from hybridrl.types import HybridRLError, SpaceSpec

ObsStats = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PreparedData:
    """Everything a run derives from its env and dataset, computed once.

    Attributes:
        settings: the run settings, with the env options the dataset recorded filled in.
        dataset: the dataset checked against the env (it takes the env's spaces where the
            file stated none), or None.
        obs_space, act_space: the env's own spaces (before the [-1, 1] action rescaling).
        obs_dim, act_dim: flat observation size; action size (the number of actions for a
            discrete space).
        obs_stats: ``(mean, std)`` of the dataset's observations when the recipe normalises
            observations with them (computed as ``recipe.observation_stats`` says), else None.
        reward_factor: the data-dependent factor of ``recipe.reward_normalization``.
        reward_normalization: the normalization in effect ("auto" resolved from the
            dataset's metadata; recorded in ``run.json``).
        reward_scale, reward_bias: what the agent learns from, ``r' = scale * r + bias``.
        reference: ``(random, expert)`` returns for normalised scores, or None.
        content_hash: the dataset's content hash (for the fingerprint), or None.
    """

    settings: RunSettings
    dataset: Dataset | None
    obs_space: SpaceSpec
    act_space: SpaceSpec
    obs_dim: int
    act_dim: int
    obs_stats: ObsStats | None
    reward_factor: float
    reward_normalization: str
    reward_scale: float
    reward_bias: float
    reference: tuple[float, float] | None
    content_hash: str | None

    @property
    def discrete(self) -> bool:
        return self.act_space.kind == "discrete"

    @property
    def score_unit(self) -> str:
        return "normalized" if self.reference else "return"

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """Observations as the agent sees them: flat float32, standardised with
        ``obs_stats`` when the recipe asks for it."""
        obs = np.asarray(obs, np.float32).reshape(len(obs), -1)
        if self.obs_stats is None:
            return obs
        mean, std = self.obs_stats
        return ((obs - mean.reshape(1, -1)) / std.reshape(1, -1)).astype(np.float32)

    def score(self, ret: float) -> float:
        """A return as a normalised score (100 × (R − random) / (expert − random)) when
        reference returns are known, else the return itself."""
        if self.reference is None:
            return ret
        lo, hi = self.reference
        return 100.0 * (ret - lo) / (hi - lo)

    def scaled(self, t: Transitions) -> Transitions:
        """``t`` with the rewards the agent learns from."""
        if self.reward_scale == 1.0 and self.reward_bias == 0.0:
            return t
        rewards = np.asarray(t.rewards) * self.reward_scale + self.reward_bias
        return t.replace(rewards=rewards.astype(np.float32))

    def offline_transitions(
        self,
        *,
        mc_returns: bool,
        discount: float,
        corruption_marks: bool = False,
        next_actions: bool = False,
    ) -> Transitions | None:
        """The dataset as the agent samples it: observations normalised, actions on
        [-1, 1], rewards scaled, and with ``mc_returns`` the Monte-Carlo returns (always
        recomputed, never a stored column: with this run's discount, reward scale and sparse
        rule, the same as the online ones). ``corruption_marks``: a ``corrupted`` extra,
        1.0 on the rows any ``corrupted_<kind>`` extra marks, when the dataset has one.
        ``next_actions``: the ``next_actions`` and ``has_next_action`` extras (ReBRAC's
        dataset next actions, on [-1, 1]; `hybridrl.data.transitions.next_actions`)."""
        ds = self.dataset
        if ds is None:
            return None
        if self.obs_stats is not None:
            ds = ds.normalize_observations(*self.obs_stats)
        if mc_returns:
            t = self.scaled(ds.transitions)
            mc = calql_mc_returns(t, discount, sparse_reward=self.settings.mc_sparse_reward)
            ds = ds.with_extras(mc_returns=mc)
        keys = {"mc_returns"} if mc_returns else set()
        marks = [k for k in ds.transitions.extras if k.startswith("corrupted_")]
        if corruption_marks and marks:
            hit = np.any([np.asarray(ds.transitions.extras[k], bool) for k in marks], axis=0)
            ds = ds.with_extras(corrupted=hit.astype(np.float32))
            keys.add("corrupted")
        t = unit_actions(ds)
        t = t.replace(extras={k: v for k, v in t.extras.items() if k in keys})
        if next_actions:
            na, has = next_action_extras(t)
            t = t.replace(extras={**t.extras, "next_actions": na, "has_next_action": has})
        return self.scaled(t)


def prepare(recipe: Recipe, settings: RunSettings, dataset: Dataset | None) -> PreparedData:
    """Check ``dataset`` against ``settings.env_id`` and derive what the run needs from it.
    A recipe for sparse rewards (``reward_kind`` "sparse" in effect) turns on Cal-QL's sparse
    Monte-Carlo rule (``mc_sparse_reward``), as the official code does on such tasks."""
    if recipe.reward_kind == "sparse" and not settings.mc_sparse_reward:
        settings = dataclasses.replace(settings, mc_sparse_reward=True)
    if dataset is not None:  # the env options the data was recorded with, unless given
        steps, kwargs = recorded_env_options(settings.env_id, dataset.metadata.provenance)
        given = settings.max_episode_steps, settings.env_kwargs
        settings = dataclasses.replace(
            settings,
            max_episode_steps=steps if given[0] is None else given[0],
            env_kwargs=kwargs if given[1] is None else given[1],
        )
    options = env_options(settings.max_episode_steps, settings.env_kwargs)
    obs_space, act_space = env_spaces(settings.env_id, **options)
    obs_dim = int(np.prod(obs_space.shape))
    if act_space.kind == "discrete":
        act_dim = int(act_space.n or 0)
    else:
        act_dim = int(np.prod(act_space.shape))
    if dataset is not None:
        dataset = _checked(dataset, obs_space, act_space, settings.env_id)
    obs_stats = (
        observation_stats(dataset, recipe.observation_stats)
        if recipe.normalize_observations and dataset is not None
        else None
    )
    factor = reward_factor(recipe, dataset)
    return PreparedData(
        settings=settings,
        dataset=dataset,
        obs_space=obs_space,
        act_space=act_space,
        obs_dim=obs_dim,
        act_dim=act_dim,
        obs_stats=obs_stats,
        reward_factor=factor,
        reward_normalization=(
            "none"
            if dataset is None
            else resolve_reward_normalization(
                recipe.reward_normalization, dataset.metadata.env_id, dataset.metadata.name
            )
        ),
        reward_scale=recipe.reward_scale * factor,
        reward_bias=recipe.reward_bias,
        reference=_reference_returns(settings, dataset),
        content_hash=None if dataset is None else dataset.content_hash(),
    )


def observation_stats(dataset: Dataset, kind: str = "observations") -> ObsStats:
    """Per-dimension ``(mean, std)`` for standardising observations. "observations": over the
    observations, std floored at 1e-3 (`Dataset.observation_stats`). "observations_and_next":
    RIQL's, over the observations and next observations stacked, std + 1e-3
    (YangRui2015/RIQL @ cc07d81, ``RIQL.py`` L94-97 and L625-626)."""
    if kind == "observations":
        return dataset.observation_stats()
    if kind != "observations_and_next":
        raise HybridRLError(f"unknown observation_stats {kind!r}")
    t = dataset.transitions
    n = len(dataset)
    rows = np.concatenate(
        [
            np.asarray(t.observations, np.float64).reshape(n, -1),
            np.asarray(t.next_observations, np.float64).reshape(n, -1),
        ]
    )
    shape = np.asarray(t.observations).shape[1:]
    mean = rows.mean(axis=0).reshape(shape).astype(np.float32)
    std = (rows.std(axis=0) + 1e-3).reshape(shape).astype(np.float32)
    return mean, std


def _checked(ds: Dataset, obs_space: SpaceSpec, act_space: SpaceSpec, env_id: str) -> Dataset:
    """``ds`` checked against the env. A file that did not state its spaces (a D4RL file, an
    npz without metadata) takes the env's, so only real violations are errors."""
    ds = with_env_spaces(ds, obs_space, act_space, env_id)
    name = ds.metadata.name or "dataset"
    check_against_spaces(ds.transitions, obs_space, ds.metadata.action_space, path=name)
    meta_act = ds.metadata.action_space
    if act_space.kind == "box":
        same = (
            meta_act.kind == "box"
            and tuple(meta_act.shape) == tuple(act_space.shape)
            and np.allclose(meta_act.low_array, act_space.low_array)
            and np.allclose(meta_act.high_array, act_space.high_array)
        )
    else:
        same = meta_act.kind == act_space.kind and meta_act.n == act_space.n
    if not same:
        # Dataset actions are mapped onto [-1, 1] with the dataset's bounds and env actions
        # with the env's: the two must agree or the agent would see two action scales.
        raise HybridRLError(
            f"dataset {name}: action space {meta_act.describe()} does not match "
            f"{env_id}'s {act_space.describe()}"
        )
    return ds


def reward_factor(recipe: Recipe, dataset: Dataset | None) -> float:
    """The data-dependent reward factor of ``recipe.reward_normalization`` (1 for none),
    computed once from the dataset and applied to offline and online rewards alike."""
    if dataset is None:
        return 1.0
    setting = resolve_reward_normalization(
        recipe.reward_normalization, dataset.metadata.env_id, dataset.metadata.name
    )
    if setting == "none":
        return 1.0
    returns = dataset.episode_returns()
    spread = float(returns.max() - returns.min()) if len(returns) else 0.0
    if len(returns) < 2 or not np.isfinite(spread) or spread <= 0:
        name = dataset.metadata.name or "dataset"
        raise HybridRLError(
            f"dataset {name}: reward_normalization='return_range' needs episodes with "
            f"different returns; found {len(returns)} episode(s), spread {spread}"
        )
    return 1000.0 / spread


def _reference_returns(
    settings: RunSettings, dataset: Dataset | None
) -> tuple[float, float] | None:
    if settings.reference_returns is not None:
        return settings.reference_returns
    if dataset is not None:
        m = dataset.metadata
        if m.ref_min_score is not None and m.ref_max_score is not None:
            return (m.ref_min_score, m.ref_max_score)
    return d4rl_reference_scores(settings.env_id)
