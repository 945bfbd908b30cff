"""D4RL-format HDF5 files and D4RL's normalized-score reference table.

A D4RL file holds flat arrays over all steps: ``observations``, ``actions``, ``rewards``,
``terminals`` and usually ``timeouts``; some also hold ``next_observations``, ``infos/*``
(per-step side information) and ``metadata/*`` (who made it). hybridrl's own HDF5 files use
the same keys, always with ``next_observations`` and ``timeouts``, plus ``extras/<name>`` and
``metadata/hybridrl_metadata`` (the metadata JSON with the content hash), so D4RL tooling can
read them and `load_hdf5` restores them exactly.

How a file without ``next_observations`` becomes transitions follows D4RL's
``qlearning_dataset``: ``next_observations[i] = observations[i + 1]``, and the last row and every
time-out row are dropped because their true next state is not in the file. Deviations, each
made so that episode boundaries stay explicit (see `hybridrl.data.transitions`):

1. The kept row just before a dropped time-out row gets ``timeouts = 1`` (D4RL leaves it
   unflagged, which glues the episode to the next one).
2. A row that is both terminal and time-out is kept as a terminal row (D4RL drops it and loses
   the terminal); its next observation does not matter because bootstrapping stops there.
   Terminal rows keep ``observations[i + 1]`` as next observation, as D4RL does.
3. Without a ``timeouts`` key and with ``max_episode_steps``, the per-episode step counter
   restarts at 0 after every terminal (D4RL's counter restarts at 1 after a terminal, an
   off-by-one), and a row is a time-out when the counter reaches ``max_episode_steps - 1``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import numpy as np

from hybridrl.data import transitions as tr
from hybridrl.data.dataset import Dataset, DatasetMetadata, metadata_json
from hybridrl.data.io import atomic_path, refuse_existing
from hybridrl.types import DatasetError, HybridRLError, SpaceSpec

#: D4RL's normalized-score references, ``(random return, expert return)`` per task family.
#: Source: D4RL ``d4rl/infos.py`` (``REF_MIN_SCORE`` / ``REF_MAX_SCORE``,
#: https://github.com/Farama-Foundation/D4RL). D4RL repeats one pair for every dataset of a
#: family and version (e.g. all ``hopper-*``), except maze2d where each maze has its own pair.
D4RL_REF_SCORES: dict[str, tuple[float, float]] = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
    "antmaze": (0.0, 1.0),
    "pen": (96.262799, 3076.8331017826877),
    "hammer": (-274.856578, 12794.134825156867),
    "relocate": (-6.425911, 4233.877797728884),
    "door": (-56.512833, 2880.5693087298737),
    "kitchen": (0.0, 4.0),
    "maze2d-open": (0.01, 20.66),
    "maze2d-umaze": (23.85, 161.86),
    "maze2d-medium": (13.13, 277.39),
    "maze2d-large": (6.7, 273.99),
    "maze2d-open-dense": (11.17817, 27.166538620695782),
    "maze2d-umaze-dense": (68.537689, 193.66285642381482),
    "maze2d-medium-dense": (44.264742, 297.4552547777125),
    "maze2d-large-dense": (30.569041, 303.4857382709002),
}

_VERSION_RE = re.compile(r"-v\d+$")
_REQUIRED = ("observations", "actions", "rewards", "terminals")
_FLAGS = ("rewards", "terminals", "timeouts")
_KNOWN = (*_REQUIRED, "timeouts", "next_observations")
_HYBRIDRL_KEY = "hybridrl_metadata"


def d4rl_reference_scores(dataset_id: str) -> tuple[float, float] | None:
    """``(ref_min_score, ref_max_score)`` of a D4RL dataset id, or None if not in the table.

    Matches families, ignoring the version: ``hopper-medium-v2`` and ``hopper-expert-v0`` give
    the hopper pair, ``maze2d-large-dense-v1`` the large dense maze pair. Values come from
    D4RL's ``d4rl/infos.py`` (see `D4RL_REF_SCORES`).
    """
    name = _VERSION_RE.sub("", dataset_id.strip().lower())
    if name.startswith("maze2d-"):
        return D4RL_REF_SCORES.get(name)
    return D4RL_REF_SCORES.get(name.split("-", 1)[0])


# --------------------------------------------------------------------------------- loading
def load_hdf5(
    path: str | os.PathLike[str],
    *,
    env_id: str | None = None,
    dataset_id: str | None = None,
    observation_space: SpaceSpec | gym.Space | None = None,
    action_space: SpaceSpec | gym.Space | None = None,
    max_episode_steps: int | None = None,
    verify_hash: bool = True,
) -> Dataset:
    """Read a D4RL-format HDF5 file (or one written by `save_hdf5`) into a `Dataset`.

    Args:
        path: the ``.hdf5`` file.
        env_id: Gymnasium id of the evaluation environment; recorded in the metadata and, when
            a space is not given, used to take the spaces from ``gymnasium.make(env_id)``.
        dataset_id: D4RL id such as ``hopper-medium-v2``: the dataset's name and the key for
            the reference scores (`d4rl_reference_scores`).
        observation_space, action_space: the spaces (override the environment's). Without
            them or ``env_id`` the spaces are unbounded boxes shaped like the data.
        max_episode_steps: the time limit, needed to place episode ends in a file without
            ``timeouts`` and ``next_observations``.
        verify_hash: for hybridrl-written files, check the stored content hash.

    Episode ends are never guessed silently: when a file lacks ``timeouts`` they are derived
    from ``max_episode_steps`` or, if the file has ``next_observations``, from steps whose next
    observation is not the following observation; either way ``boundaries_inferred`` is set
    and ``provenance['inferred_boundaries']`` names the rule. See the module docstring for
    how files without ``next_observations`` are converted.

    Raises:
        DatasetError: naming the file and field, for a missing or unreadable file, a missing
            key, mismatched lengths, bad shapes, NaN/inf, or data outside the spaces.
    """
    p = str(path)
    if not os.path.exists(p):
        raise DatasetError("no such file", path=p)
    if not h5py.is_hdf5(p):
        raise DatasetError("not an HDF5 file (no HDF5 signature; truncated or corrupt?)", path=p)
    arrays, infos, extras, file_meta, stored_json = _read_hdf5(p)
    return from_d4rl_arrays(
        p,
        arrays,
        infos,
        extras,
        file_meta,
        stored_json,
        env_id=env_id,
        dataset_id=dataset_id,
        observation_space=observation_space,
        action_space=action_space,
        max_episode_steps=max_episode_steps,
        verify_hash=verify_hash,
    )


def from_d4rl_arrays(
    p: str,
    arrays: dict[str, np.ndarray],
    infos: dict[str, np.ndarray],
    extras: dict[str, np.ndarray],
    file_meta: dict[str, Any],
    stored_json: str | None,
    *,
    env_id: str | None = None,
    dataset_id: str | None = None,
    observation_space: SpaceSpec | gym.Space | None = None,
    action_space: SpaceSpec | gym.Space | None = None,
    max_episode_steps: int | None = None,
    verify_hash: bool = True,
    source: str = "d4rl-hdf5",
) -> Dataset:
    """`load_hdf5` after the file is read: D4RL-layout arrays of file ``p`` as a `Dataset`
    (also how `hybridrl.data.io.load_npz` reads a plain npz without next observations)."""
    ignored = sorted(k for k in arrays if k not in _KNOWN)
    arrays = {k: v for k, v in arrays.items() if k in _KNOWN}
    n = _check_arrays(arrays, extras, p)
    _check_finite({**arrays, **_prefixed("extras", extras)}, p)
    # Infos are optional side data: unusable ones are skipped (and listed), not fatal.
    skipped_infos = {}
    for k, v in infos.items():
        if v.ndim == 0 or v.shape[0] != n:
            skipped_infos[k] = f"shape {v.shape} is not per step ({n} rows)"
        elif np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)):
            skipped_infos[k] = "holds NaN or inf"
        elif not (np.issubdtype(v.dtype, np.number) or v.dtype == np.bool_):
            skipped_infos[k] = f"dtype {v.dtype} is not numeric"
    infos = {k: v for k, v in infos.items() if k not in skipped_infos}

    obs = arrays["observations"]
    terminals = arrays["terminals"] > 0
    has_next = "next_observations" in arrays
    prov: dict[str, Any] = {"file": p}
    inferred: str | None = None
    if "timeouts" in arrays:
        timeouts = arrays["timeouts"] > 0
    elif max_episode_steps is not None:
        timeouts = _timeouts_from_step_limit(terminals, max_episode_steps, p)
        inferred = (
            f"no 'timeouts' in the file: a step is a time-out when the per-episode step "
            f"counter (restarting at 0 after each episode end) reaches max_episode_steps-1 "
            f"= {max_episode_steps - 1}"
        )
    elif has_next:
        timeouts = _timeouts_from_discontinuities(arrays, terminals)
        inferred = (
            "no 'timeouts' in the file: a non-terminal step whose next observation differs "
            "from the following step's observation ends an episode (time-out)"
        )
    else:
        raise DatasetError(
            "is missing and the file has no 'next_observations', so episode ends cannot be "
            "told from the data; pass max_episode_steps= (the environment's time limit)",
            path=p,
            field="timeouts",
        )

    per_step = {**_prefixed("info_", infos, sep=""), **extras}
    if has_next:
        next_obs = arrays["next_observations"]
        keep = np.ones(n, dtype=bool)
        new_timeouts = timeouts
    else:
        keep, next_obs, new_timeouts = _qlearning_rows(obs, terminals, timeouts)
        prov["qlearning_conversion"] = {
            "rows_in_file": int(n),
            "rows_dropped": int(n - keep.sum()),
            "rule": "next_obs[i] = obs[i+1]; last row and time-out rows dropped; the row "
            "before a dropped time-out is flagged timeouts=1",
        }
    rows: slice | np.ndarray = slice(None) if keep.all() else keep  # no copy if all kept
    t = tr.make_transitions(
        obs[rows],
        arrays["actions"][rows],
        arrays["rewards"][rows],
        next_obs[rows],
        terminals[rows],
        new_timeouts[rows],
        {k: v[rows] for k, v in per_step.items()},
    )
    if len(t) == 0:
        dropped = "" if has_next else " (a file without next_observations loses its last row)"
        raise DatasetError(f"holds no transitions (an empty dataset){dropped}", path=p)

    stored_meta, stored_hash = _parse_stored(stored_json, p)
    obs_spec, act_spec = _spaces(observation_space, action_space, env_id, stored_meta, t, p)
    refs = d4rl_reference_scores(dataset_id) if dataset_id else None
    if stored_meta is not None:
        meta = stored_meta
        changes: dict[str, Any] = {
            "observation_space": obs_spec,
            "action_space": act_spec,
            "env_id": env_id or meta.env_id,
            "name": dataset_id or meta.name,
        }
        if refs is not None:
            changes["ref_min_score"], changes["ref_max_score"] = refs
        meta = replace(meta, **changes)
    else:
        if refs is None and "ref_min_score" in file_meta and "ref_max_score" in file_meta:
            refs = (float(file_meta["ref_min_score"]), float(file_meta["ref_max_score"]))
        if inferred:
            prov["inferred_boundaries"] = inferred
        if skipped_infos:
            prov["skipped_infos"] = skipped_infos
        if ignored:
            prov["ignored_keys"] = ignored
        if file_meta:
            prov["hdf5_metadata"] = file_meta
        if dataset_id:
            prov["d4rl_dataset_id"] = dataset_id
        meta = DatasetMetadata(
            observation_space=obs_spec,
            action_space=act_spec,
            env_id=env_id,
            source=source,
            provenance=prov,
            ref_min_score=refs[0] if refs else None,
            ref_max_score=refs[1] if refs else None,
            boundaries_inferred=inferred is not None,
            name=dataset_id or Path(p).stem,
        )
    ds = Dataset.create(t, meta, path=p)
    if verify_hash and stored_hash is not None and stored_hash != ds.content_hash():
        raise DatasetError(
            "content hash does not match the arrays: the file was modified or damaged",
            path=p,
            field=f"metadata/{_HYBRIDRL_KEY}.hash",
        )
    return ds


def _read_hdf5(
    p: str,
) -> tuple[
    dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any], str | None
]:
    """Top-level arrays, ``infos/*``, ``extras/*``, simple ``metadata/*`` values, stored JSON."""
    arrays: dict[str, np.ndarray] = {}
    groups: dict[str, dict[str, np.ndarray]] = {"infos": {}, "extras": {}}
    file_meta: dict[str, Any] = {}
    stored: str | None = None
    try:
        with h5py.File(p, "r") as f:
            for key, item in f.items():
                if isinstance(item, h5py.Dataset):
                    arrays[key] = np.asarray(item[()])
                elif key in groups:
                    for sub, d in item.items():
                        if isinstance(d, h5py.Dataset):  # nested groups are not per-step data
                            groups[key][sub] = np.asarray(d[()])
            if isinstance(f.get("metadata"), h5py.Group):
                group = f["metadata"]
                values: dict[str, Any] = dict(group.attrs.items())

                def visit(name: str, obj: Any) -> None:  # returning a value would stop h5py
                    if isinstance(obj, h5py.Dataset) and obj.ndim == 0:
                        values.setdefault(name, obj[()])

                group.visititems(visit)
                for k, v in values.items():
                    simple = _simple(v)
                    if k == _HYBRIDRL_KEY and isinstance(simple, str):
                        stored = simple
                    elif simple is not None:
                        file_meta[k] = simple
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise DatasetError(
            f"not a readable HDF5 file (truncated or corrupt?): {exc}", path=p
        ) from exc
    return arrays, groups["infos"], groups["extras"], file_meta, stored


def _simple(v: Any) -> Any:
    """A JSON-friendly scalar or string from an HDF5 value, or None for anything bigger."""
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, str | bool | int | float):
        return v
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bytes_ | bytes):
        return bytes(v).decode("utf-8", errors="replace")
    if isinstance(v, np.str_):
        return str(v)
    return None


def _check_arrays(arrays: dict[str, np.ndarray], extras: dict[str, np.ndarray], p: str) -> int:
    """Required keys, (N,)/(N,1) flags, equal lengths. Returns N. Squeezes flags in place."""
    for name in _REQUIRED:
        if name not in arrays:
            raise DatasetError(
                "is missing (a D4RL file needs observations, actions, rewards, terminals)",
                path=p,
                field=name,
            )
    for name in _FLAGS:
        if name not in arrays:
            continue
        arr = arrays[name]
        if arr.ndim == 2 and arr.shape[1] == 1:
            arrays[name] = arr = arr[:, 0]
        if arr.ndim != 1:
            raise DatasetError(
                f"must have shape (N,) or (N, 1), got {arr.shape}", path=p, field=name
            )
    n = int(arrays["rewards"].shape[0])
    for name, arr in [*arrays.items(), *_prefixed("extras", extras).items()]:
        if arr.ndim == 0 or arr.shape[0] != n:
            raise DatasetError(
                f"has {arr.shape[0] if arr.ndim else 'no'} rows but 'rewards' has {n}",
                path=p,
                field=name,
            )
    for name in ("terminals", "timeouts"):
        if name in arrays and not np.all((arrays[name] == 0) | (arrays[name] == 1)):
            raise DatasetError("must hold only 0/1 flags", path=p, field=name)
    if "next_observations" in arrays and (
        arrays["next_observations"].shape != arrays["observations"].shape
    ):
        raise DatasetError(
            f"shape {arrays['next_observations'].shape} differs from observations' "
            f"{arrays['observations'].shape}",
            path=p,
            field="next_observations",
        )
    return n


def _check_finite(fields: dict[str, np.ndarray], p: str) -> None:
    for name, arr in fields.items():
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            bad = np.flatnonzero(~np.all(np.isfinite(arr.reshape(len(arr), -1)), axis=1))
            raise DatasetError(
                f"holds NaN or inf in {bad.size} rows (first at row {int(bad[0])})",
                path=p,
                field=name,
            )


def _prefixed(prefix: str, d: dict[str, np.ndarray], sep: str = "/") -> dict[str, np.ndarray]:
    return {f"{prefix}{sep}{k}": v for k, v in d.items()}


def _timeouts_from_step_limit(terminals: np.ndarray, max_steps: int, p: str) -> np.ndarray:
    if max_steps < 1:
        raise DatasetError(f"max_episode_steps must be >= 1, got {max_steps}", path=p)
    timeouts = np.zeros(len(terminals), dtype=bool)
    step = 0
    for i, term in enumerate(terminals):
        if step == max_steps - 1 and not term:
            timeouts[i] = True
        step = 0 if (term or timeouts[i]) else step + 1
    return timeouts


def _timeouts_from_discontinuities(
    arrays: dict[str, np.ndarray], terminals: np.ndarray
) -> np.ndarray:
    n = len(terminals)
    probe = tr.make_transitions(
        arrays["observations"],
        np.zeros(n, np.float32),
        np.zeros(n, np.float32),
        arrays["next_observations"],
        terminals,
    )
    timeouts = np.zeros(n, dtype=bool)
    timeouts[tr.find_discontinuities(probe)] = True
    return timeouts


def _qlearning_rows(
    obs: np.ndarray, terminals: np.ndarray, timeouts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows kept, next observations and time-out flags for a file without next observations."""
    n = len(obs)
    dropped_timeout = timeouts & ~terminals
    keep = ~dropped_timeout
    if n:
        keep[-1] = False
    next_obs = np.empty_like(obs)
    if n:
        next_obs[:-1] = obs[1:]
        next_obs[-1] = obs[-1]
    new_timeouts = np.zeros(n, dtype=bool)
    prev = np.flatnonzero(dropped_timeout) - 1
    prev = prev[prev >= 0]
    prev = prev[keep[prev] & ~terminals[prev]]
    new_timeouts[prev] = True
    return keep, next_obs, new_timeouts


def _parse_stored(stored: str | None, p: str) -> tuple[DatasetMetadata | None, str | None]:
    if stored is None:
        return None, None
    try:
        data = json.loads(stored)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"is not valid JSON: {exc}", path=p, field=f"metadata/{_HYBRIDRL_KEY}"
        ) from exc
    return DatasetMetadata.from_json(data, path=p), data.get("hash")


def _spaces(
    obs_arg: SpaceSpec | gym.Space | None,
    act_arg: SpaceSpec | gym.Space | None,
    env_id: str | None,
    stored: DatasetMetadata | None,
    t: tr.Transitions,
    p: str,
) -> tuple[SpaceSpec, SpaceSpec]:
    """Explicit spaces, else the environment's, else the stored ones, else boxes from data."""
    obs_spec = _as_spec(obs_arg, "observation_space", p)
    act_spec = _as_spec(act_arg, "action_space", p)
    if (obs_spec is None or act_spec is None) and env_id is not None:
        try:
            env = gym.make(env_id)
        except Exception as exc:
            raise DatasetError(
                f"cannot make environment {env_id!r} to read its spaces ({exc}); "
                "pass observation_space= and action_space=",
                path=p,
                field="env_id",
            ) from exc
        try:
            obs_spec = obs_spec or _as_spec(env.observation_space, "observation_space", p)
            act_spec = act_spec or _as_spec(env.action_space, "action_space", p)
        finally:
            env.close()
    if stored is not None:
        obs_spec = obs_spec or stored.observation_space
        act_spec = act_spec or stored.action_space
    obs_spec = obs_spec or SpaceSpec.box_from_data(np.asarray(t.observations))
    act_spec = act_spec or SpaceSpec.box_from_data(np.asarray(t.actions))
    return obs_spec, act_spec


def _as_spec(space: SpaceSpec | gym.Space | None, field: str, p: str) -> SpaceSpec | None:
    if space is None or isinstance(space, SpaceSpec):
        return space
    try:
        return SpaceSpec.from_gym(space)
    except HybridRLError as exc:
        raise DatasetError(str(exc), path=p, field=field) from exc


# --------------------------------------------------------------------------------- saving
def save_hdf5(ds: Dataset, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``ds`` to ``path`` atomically in D4RL layout; returns the path.

    Keys: ``observations``, ``actions``, ``rewards``, ``terminals`` and ``timeouts`` (bool, as
    in D4RL), ``next_observations``, ``extras/<name>``, and a ``metadata`` group holding
    ``hybridrl_metadata`` (the metadata JSON with the content hash) plus ``ref_min_score`` /
    ``ref_max_score`` attributes when known. `load_hdf5` restores the dataset exactly. An
    existing ``path`` is replaced only with ``overwrite=True``.
    """
    path = Path(path)
    refuse_existing(path, overwrite)
    t = ds.transitions
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("observations", data=np.asarray(t.observations))
        f.create_dataset("actions", data=np.asarray(t.actions))
        f.create_dataset("rewards", data=np.asarray(t.rewards))
        f.create_dataset("terminals", data=np.asarray(t.terminals) > 0)
        f.create_dataset("timeouts", data=np.asarray(t.timeouts) > 0)
        f.create_dataset("next_observations", data=np.asarray(t.next_observations))
        group = f.create_group("extras")
        for name, value in t.extras.items():
            group.create_dataset(name, data=np.asarray(value))
        meta = f.create_group("metadata")
        # A dataset, not an attribute: attributes are limited to 64 KiB.
        meta.create_dataset(_HYBRIDRL_KEY, data=metadata_json(ds))
        if ds.metadata.ref_min_score is not None:
            meta.attrs["ref_min_score"] = ds.metadata.ref_min_score
        if ds.metadata.ref_max_score is not None:
            meta.attrs["ref_max_score"] = ds.metadata.ref_max_score
    return path
