"""`Dataset`: transitions plus the metadata that makes them usable and comparable.

Metadata records where the data came from (source and provenance, content hash), the spaces,
the environment id, the reference returns for normalized scores and whether any episode
boundary had to be inferred by a loader.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hybridrl.data import transitions as tr
from hybridrl.data.transitions import Transitions
from hybridrl.types import DatasetError, SpaceSpec

FORMAT_VERSION = 1


@dataclass(frozen=True)
class DatasetMetadata:
    """Describes a dataset.

    Attributes:
        observation_space, action_space: the spaces the data lives in.
        env_id: Gymnasium id of the environment the data came from, if any.
        source: how the data entered hybridrl (``collect``, ``npz``, ``d4rl-hdf5``, ``minari``,
            ``concat``, ``filter``, ``corrupt``...).
        provenance: free-form facts about how it was made (policy, seed, noise, file, parents).
        ref_min_score, ref_max_score: returns of a random and an expert policy, for
            normalized scores ``100 * (R - min) / (max - min)``.
        boundaries_inferred: True when a loader had to infer episode ends (e.g. D4RL files
            without ``timeouts``); ``provenance['inferred_boundaries']`` says how.
        name: a short human name (file stem or Minari id).
    """

    observation_space: SpaceSpec
    action_space: SpaceSpec
    env_id: str | None = None
    source: str = "unknown"
    provenance: dict[str, Any] = field(default_factory=dict)
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    boundaries_inferred: bool = False
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "env_id": self.env_id,
            "source": self.source,
            "provenance": self.provenance,
            "observation_space": self.observation_space.to_json(),
            "action_space": self.action_space.to_json(),
            "ref_min_score": self.ref_min_score,
            "ref_max_score": self.ref_max_score,
            "boundaries_inferred": self.boundaries_inferred,
        }

    @staticmethod
    def from_json(data: dict[str, Any], *, path: str | None = None) -> DatasetMetadata:
        try:
            return DatasetMetadata(
                observation_space=SpaceSpec.from_json(data["observation_space"]),
                action_space=SpaceSpec.from_json(data["action_space"]),
                env_id=data.get("env_id"),
                source=data.get("source", "unknown"),
                provenance=dict(data.get("provenance") or {}),
                ref_min_score=_opt_float(data.get("ref_min_score")),
                ref_max_score=_opt_float(data.get("ref_max_score")),
                boundaries_inferred=bool(data.get("boundaries_inferred", False)),
                name=data.get("name"),
            )
        except KeyError as exc:
            raise DatasetError(f"metadata lacks {exc}", path=path, field="metadata") from exc


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


@dataclass(frozen=True)
class Dataset:
    """A validated set of transitions with metadata. Arrays live on the host (numpy).

    Build one with `Dataset.create`, a loader (`hybridrl.data.load_dataset`) or
    `hybridrl.data.collect`. Every helper returns a new dataset; nothing is modified in place.
    """

    transitions: Transitions
    metadata: DatasetMetadata

    @staticmethod
    def create(
        transitions: Transitions,
        metadata: DatasetMetadata,
        *,
        path: str | None = None,
        check_spaces: bool = True,
    ) -> Dataset:
        """Validate and wrap. Raises `DatasetError` naming ``path`` and the bad field."""
        transitions = transitions.as_numpy()
        tr.validate_transitions(transitions, path=path)
        if check_spaces:
            check_against_spaces(
                transitions, metadata.observation_space, metadata.action_space, path=path
            )
        return Dataset(transitions, metadata)

    def __repr__(self) -> str:
        # One line: the arrays would flood a REPL or a log (and say nothing at a glance).
        m = self.metadata
        env = f", env {m.env_id}" if m.env_id else ""
        return (
            f"Dataset({m.name or 'unnamed'!r}: {len(self)} transitions, {self.num_episodes} "
            f"episodes, observations {m.observation_space.describe()}, actions "
            f"{m.action_space.describe()}{env}, source {m.source})"
        )

    # ---------------------------------------------------------------- basic facts
    def __len__(self) -> int:
        return len(self.transitions)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_slices())

    def episode_slices(self) -> list[slice]:
        return tr.episode_slices(self.transitions)

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode (the last may be incomplete)."""
        rewards = np.asarray(self.transitions.rewards, dtype=np.float64)
        if len(rewards) == 0:
            return np.zeros(0)
        starts = np.array([s.start for s in self.episode_slices()], dtype=np.int64)
        return np.add.reduceat(rewards, starts)

    def episode_lengths(self) -> np.ndarray:
        return np.array([s.stop - s.start for s in self.episode_slices()], dtype=np.int64)

    def content_hash(self) -> str:
        """SHA-256 over the arrays' bytes, shapes and dtypes (metadata excluded)."""
        h = hashlib.sha256()
        t = self.transitions
        items = [(name, getattr(t, name)) for name in tr.CORE_FIELDS]
        items += [(f"extras/{k}", t.extras[k]) for k in sorted(t.extras)]
        for name, arr in items:
            arr = np.ascontiguousarray(arr)
            h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    def normalized_score(self, returns: float | np.ndarray) -> float | np.ndarray:
        """``100 * (R - ref_min) / (ref_max - ref_min)`` using the metadata's references."""
        lo, hi = self.metadata.ref_min_score, self.metadata.ref_max_score
        if lo is None or hi is None:
            raise DatasetError(
                f"dataset {self.metadata.name or ''} has no reference returns "
                "(ref_min_score/ref_max_score) for normalized scores",
                field="metadata",
            )
        return 100.0 * (np.asarray(returns) - lo) / (hi - lo)

    # ---------------------------------------------------------------- derived datasets
    def with_metadata(self, **changes: Any) -> Dataset:
        return Dataset(self.transitions, replace(self.metadata, **changes))

    def with_extras(self, **extras: np.ndarray) -> Dataset:
        merged = {**self.transitions.extras, **{k: np.asarray(v) for k, v in extras.items()}}
        return Dataset.create(
            self.transitions.replace(extras=merged), self.metadata, check_spaces=False
        )

    def with_mc_returns(
        self, gamma: float, *, sparse_reward: bool = False, failure_reward: float | None = None
    ) -> Dataset:
        """Adds ``extras['mc_returns']`` (Cal-QL's Monte-Carlo returns, see `calql_mc_returns`)."""
        mc = tr.calql_mc_returns(
            self.transitions, gamma, sparse_reward=sparse_reward, failure_reward=failure_reward
        )
        return self.with_extras(mc_returns=mc)

    def with_next_actions(self) -> Dataset:
        """Adds ``extras['next_actions']`` and ``extras['has_next_action']`` (the next step's
        action from episode order, zeros and mask 0 at episode ends; see
        `hybridrl.data.transitions.next_actions`). Actions are as stored: a run builds its
        own from the actions mapped onto [-1, 1]."""
        na, has = tr.next_actions(self.transitions)
        return self.with_extras(next_actions=na, has_next_action=has)

    def with_episode_ids(self) -> Dataset:
        return self.with_extras(episode_ids=tr.episode_ids(self.transitions))

    def transform_rewards(self, scale: float = 1.0, shift: float = 0.0) -> Dataset:
        """Rewards become ``scale * r + shift`` (e.g. IQL's AntMaze ``shift=-1``)."""
        t = self.transitions
        rewards = (np.asarray(t.rewards, np.float64) * scale + shift).astype(np.float32)
        prov = derived_provenance(self, "reward_transform", {"scale": scale, "shift": shift})
        return Dataset(t.replace(rewards=rewards), replace(self.metadata, provenance=prov))

    def filter_top_episodes(self, fraction: float) -> Dataset:
        """Keep the episodes with the highest returns, a ``fraction`` of all episodes (%BC).

        Ties at the cut keep the earlier episodes; at least one episode is always kept.
        """
        if not 0.0 < fraction <= 1.0:
            raise DatasetError(f"fraction must be in (0, 1], got {fraction}")
        slices = self.episode_slices()
        returns = self.episode_returns()
        keep = max(1, round(fraction * len(slices)))
        order = np.argsort(-returns, kind="stable")[:keep]
        idx = np.concatenate([np.arange(slices[i].start, slices[i].stop) for i in sorted(order)])
        prov = derived_provenance(
            self, "filter_top_episodes", {"fraction": fraction, "episodes_kept": int(keep)}
        )
        sub = self.transitions.take(idx)
        if not tr.trailing_episode_complete(sub):
            # A kept incomplete final episode may now sit between complete ones: mark its cut.
            sub = sub.replace(timeouts=_with_last_flag(sub.timeouts))
        return Dataset(sub, replace(self.metadata, provenance=prov, source="filter"))

    def split_episodes(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Split whole episodes at random into (first, rest) with ``fraction`` of episodes."""
        slices = self.episode_slices()
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(slices))
        k = round(fraction * len(slices))
        out = []
        for chosen in (np.sort(perm[:k]), np.sort(perm[k:])):
            idx = np.concatenate(
                [np.arange(slices[i].start, slices[i].stop) for i in chosen] or [np.zeros(0, int)]
            ).astype(np.int64)
            sub = self.transitions.take(idx)
            if len(sub) and not tr.trailing_episode_complete(sub) and chosen[-1] != len(slices) - 1:
                sub = sub.replace(timeouts=_with_last_flag(sub.timeouts))
            out.append(Dataset(sub, self.metadata))
        return out[0], out[1]

    def observation_stats(self, eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean and std (std floored at ``eps``) of the observations."""
        obs = np.asarray(self.transitions.observations, np.float64)
        return obs.mean(axis=0).astype(np.float32), np.maximum(obs.std(axis=0), eps).astype(
            np.float32
        )

    def normalize_observations(
        self, mean: np.ndarray | None = None, std: np.ndarray | None = None
    ) -> Dataset:
        """Standardize observations and next observations (stats from this data by default)."""
        if mean is None or std is None:
            mean, std = self.observation_stats()
        t = self.transitions
        obs = ((np.asarray(t.observations) - mean) / std).astype(np.float32)
        nxt = ((np.asarray(t.next_observations) - mean) / std).astype(np.float32)
        prov = derived_provenance(self, "normalize_observations", {})
        prov["obs_mean"], prov["obs_std"] = mean.tolist(), std.tolist()
        space = SpaceSpec.box_from_data(obs)
        meta = replace(self.metadata, provenance=prov, observation_space=space)
        return Dataset(t.replace(observations=obs, next_observations=nxt), meta)

    def summary(self) -> dict[str, Any]:
        """Key facts as a JSON-friendly dict (see `hybridrl.data.inspect` for more)."""
        returns = self.episode_returns()
        return {
            "name": self.metadata.name,
            "env_id": self.metadata.env_id,
            "transitions": len(self),
            "episodes": len(returns),
            "terminals": int(np.sum(self.transitions.terminals)),
            "timeouts": int(np.sum(self.transitions.timeouts)),
            "return_mean": float(returns.mean()) if len(returns) else None,
        }


def concatenate_datasets(datasets: list[Dataset], name: str | None = None) -> Dataset:
    """Join datasets end to end (e.g. medium + expert). Spaces must match.

    A part whose last episode is incomplete gets a time-out on its last step, so that the join
    never glues two episodes together.
    """
    if not datasets:
        raise DatasetError("concatenate needs at least one dataset")
    first = datasets[0].metadata
    parts = []
    for ds in datasets:
        m = ds.metadata
        if (m.observation_space.shape, m.action_space.shape) != (
            first.observation_space.shape,
            first.action_space.shape,
        ):
            raise DatasetError(
                f"cannot concatenate {m.name}: spaces {m.observation_space.describe()} / "
                f"{m.action_space.describe()} differ from {first.observation_space.describe()} / "
                f"{first.action_space.describe()}",
                field="observation_space",
            )
        t = ds.transitions
        if len(t) and not tr.trailing_episode_complete(t):
            t = t.replace(timeouts=_with_last_flag(t.timeouts))
        parts.append(t)
    refs = {(d.metadata.ref_min_score, d.metadata.ref_max_score) for d in datasets}
    ref_min, ref_max = refs.pop() if len(refs) == 1 else (None, None)
    meta = DatasetMetadata(
        observation_space=first.observation_space,
        action_space=first.action_space,
        env_id=first.env_id,
        source="concat",
        provenance={"parents": [_parent(d) for d in datasets]},
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        boundaries_inferred=any(d.metadata.boundaries_inferred for d in datasets),
        name=name or "+".join(str(d.metadata.name) for d in datasets),
    )
    return Dataset.create(tr.concatenate(parts), meta, check_spaces=False)


def check_against_spaces(
    t: Transitions,
    obs_space: SpaceSpec,
    act_space: SpaceSpec,
    *,
    path: str | None = None,
    bound_tol: float = 1e-5,
) -> None:
    """Raise `DatasetError` if shapes do not match the spaces or actions leave their bounds."""
    obs = np.asarray(t.observations)
    if obs.shape[1:] != tuple(obs_space.shape):
        raise DatasetError(
            f"shape per step {obs.shape[1:]} does not match the observation space "
            f"{obs_space.describe()}",
            path=path,
            field="observations",
        )
    act = np.asarray(t.actions)
    if act_space.kind == "discrete":
        _check_discrete_actions(act, act_space, path)
        return
    if act.shape[1:] != tuple(act_space.shape):
        raise DatasetError(
            f"shape per step {act.shape[1:]} does not match the action space "
            f"{act_space.describe()}",
            path=path,
            field="actions",
        )
    if act.size:
        lo, hi = act_space.low_array, act_space.high_array
        below = act < lo - bound_tol
        above = act > hi + bound_tol
        if np.any(below | above):
            rows = np.flatnonzero(np.any((below | above).reshape(len(act), -1), axis=1))
            raise DatasetError(
                f"{rows.size} rows lie outside the action space bounds {act_space.describe()} "
                f"(first at row {int(rows[0])}: {act[rows[0]].tolist()})",
                path=path,
                field="actions",
            )


def _check_discrete_actions(act: np.ndarray, space: SpaceSpec, path: str | None) -> None:
    """The discrete-action convention: an integer array of shape (N,) with values in [0, n)."""
    assert space.n is not None
    n = space.n
    if not np.issubdtype(act.dtype, np.integer):
        raise DatasetError(
            f"holds {act.dtype} values, but the action space {space.describe()} needs integer "
            f"actions in [0, {n}) (store them as int64, e.g. actions.astype(np.int64))",
            path=path,
            field="actions",
        )
    if act.ndim != 1:
        hint = "; flatten it to (N,)" if act.ndim == 2 and act.shape[1] == 1 else ""
        raise DatasetError(
            f"has shape {act.shape}, but the action space {space.describe()} needs shape "
            f"(N,){hint}",
            path=path,
            field="actions",
        )
    bad = np.flatnonzero((act < 0) | (act >= n))
    if bad.size:
        raise DatasetError(
            f"{bad.size} rows hold actions outside [0, {n}) of the action space "
            f"{space.describe()} (first at row {int(bad[0])}: {int(act[bad[0]])})",
            path=path,
            field="actions",
        )


def has_bounds(space: SpaceSpec) -> bool:
    """False for a box unbounded everywhere: what a loader records for a file that does not
    say its spaces (an npz without metadata, a D4RL file loaded without its env)."""
    if space.kind != "box":
        return True
    return bool(np.isfinite(space.low_array).any() or np.isfinite(space.high_array).any())


def with_env_spaces(
    ds: Dataset, obs_space: SpaceSpec, act_space: SpaceSpec, env_id: str
) -> Dataset:
    """``ds`` with ``env_id``'s spaces in place of the unbounded ones its file left it.

    The data is checked against the env's spaces first, so a real violation (an action outside
    the env's bounds) is an error naming the file, the field and the first bad row. The spaces
    go into the metadata because `hybridrl.training.offline.unit_actions` maps actions onto
    [-1, 1] with the metadata's bounds. Spaces the metadata does state are kept: whether they
    agree with the env is the caller's question.
    """
    m = ds.metadata
    adopt_obs, adopt_act = not has_bounds(m.observation_space), not has_bounds(m.action_space)
    if not (adopt_obs or adopt_act):
        return ds
    where = str(m.provenance.get("file") or m.name or "dataset")
    obs = obs_space if adopt_obs else m.observation_space
    act = act_space if adopt_act else m.action_space
    check_against_spaces(ds.transitions, obs, act, path=where)
    prov = {**m.provenance, "spaces_from_env": env_id}
    return Dataset(
        ds.transitions, replace(m, observation_space=obs, action_space=act, provenance=prov)
    )


def _with_last_flag(flags: np.ndarray) -> np.ndarray:
    flags = np.array(flags, copy=True)
    flags[-1] = 1.0
    return flags


def _parent(ds: Dataset) -> dict[str, Any]:
    return {"name": ds.metadata.name, "source": ds.metadata.source, "hash": ds.content_hash()}


def derived_provenance(ds: Dataset, op: str, args: dict[str, Any]) -> dict[str, Any]:
    """``ds``'s provenance with ``{"op": op, **args}`` appended to its ``transforms`` list."""
    prov = dict(ds.metadata.provenance)
    ops = list(prov.get("transforms", []))
    ops.append({"op": op, **args})
    prov["transforms"] = ops
    return prov


def metadata_json(ds: Dataset) -> str:
    """Metadata plus the content hash, as stored in every file format."""
    data = ds.metadata.to_json()
    data["hash"] = ds.content_hash()
    data["num_episodes"] = ds.num_episodes
    return json.dumps(data, sort_keys=True)
