"""Minari datasets: load them as hybridrl datasets and write hybridrl datasets as Minari ones.

Minari stores whole episodes: ``T + 1`` observations (the reset observation first), ``T``
actions, rewards, ``terminations`` and ``truncations``, and ``infos`` whose entry 0 comes from
``reset`` and entry ``t + 1`` from step ``t``. hybridrl reads step ``t`` as
``(obs[t], act[t], rew[t], obs[t + 1])`` with ``terminals = terminations`` and
``timeouts = truncations``.

What survives `save_minari` -> `load_minari`:

- In Minari's own fields: the transitions (observations, actions, rewards, the two flags),
  the spaces (Box and Discrete), the environment (its spec, when Gymnasium can make
  ``env_id``) and the reference scores (``ref_min_score`` / ``ref_max_score`` metadata keys,
  which `minari.get_normalized_score` reads).
- In additions Minari keeps but does not interpret: extras, as ``infos['hybridrl_extras']``
  (row 0 zero, row ``t + 1`` step ``t``'s value, following Minari's info layout), and the full
  hybridrl metadata JSON with the content hash, under the metadata key ``hybridrl_metadata``.
  When that hash matches the data read back, the original metadata (source, provenance, name,
  ``boundaries_inferred``) is restored exactly; when it does not (the Minari dataset was changed
  after writing) Minari's own fields are used and a warning is issued.

Not representable: a next observation that differs from the following observation inside an
episode (Minari keeps one observation sequence per episode), so `save_minari` refuses such data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector import EpisodeBuffer
from minari.dataset.minari_dataset import parse_dataset_id

from hybridrl.data import transitions as tr
from hybridrl.data.dataset import Dataset, DatasetMetadata, metadata_json
from hybridrl.data.transitions import Transitions
from hybridrl.types import DatasetError, HybridRLError, SpaceSpec

METADATA_KEY = "hybridrl_metadata"
EXTRAS_INFO_KEY = "hybridrl_extras"
_NAMESPACE_FILE = "namespace_metadata.json"
# Minari nags about every optional field left empty; these say nothing about the data.
_QUIET = (
    r"`(code_permalink|author|author_email|algorithm_name|description|eval_env)` is set to None",
    r"env_spec is None",
)


class NotInLocalStoreError(DatasetError):
    """A Minari id that is not in the local store. The message says how to download it in
    the caller's terms: ``download=True`` from Python, ``--download`` from the CLI
    (`with_download_hint`)."""

    def __init__(self, dataset_id: str, store: Path, local: list[str], *, hint: str) -> None:
        self.dataset_id, self.store, self.local = dataset_id, store, local
        super().__init__(
            f"Minari dataset {dataset_id!r} is not in the local store {store} "
            f"(local ids: {', '.join(local) if local else 'none'}); {hint} to fetch it from "
            "the Minari server",
            path=str(store / dataset_id),
        )

    def with_download_hint(self, hint: str) -> NotInLocalStoreError:
        return NotInLocalStoreError(self.dataset_id, self.store, self.local, hint=hint)


def minari_store_path() -> Path:
    """The local Minari store: ``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env) if env else Path.home() / ".minari" / "datasets"


# --------------------------------------------------------------------------------- loading
def load_minari(dataset_id: str, *, download: bool = False) -> Dataset:
    """Load the Minari dataset ``dataset_id`` (e.g. ``D4RL/door/human-v2``) as a `Dataset`.

    An episode whose last step has neither a termination nor a truncation is closed with a
    time-out on that step (Minari marks the episode end explicitly by its length; hybridrl
    needs a flag), counted in ``provenance['unflagged_episode_ends']``. Per-step numeric infos
    become extras ``info_<name>``; others are listed in ``provenance['skipped_infos']``.

    Raises:
        DatasetError: for an id not in the local store (with ``download=False``; the message
            lists the local ids), Dict/Tuple spaces, or malformed episodes.
    """
    store = minari_store_path()
    where = str(store / dataset_id)
    try:
        mds = minari.load_dataset(dataset_id, download=download)
    except FileNotFoundError as exc:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            local = sorted(minari.list_local_datasets())
        raise NotInLocalStoreError(dataset_id, store, local, hint="pass download=True") from exc
    except ValueError as exc:
        raise DatasetError(f"cannot open Minari dataset {dataset_id!r}: {exc}", path=where) from exc

    obs_spec = _spec(mds.observation_space, "observation_space", where)
    act_spec = _spec(mds.action_space, "action_space", where)
    raw = mds.storage.metadata
    stored = _stored_json(raw.get(METADATA_KEY), where)

    t, facts = _read_episodes(mds, where)
    if stored is not None:
        restored = _restore(t, facts, stored, where)
        if restored is not None:
            return restored
        warnings.warn(
            f"Minari dataset {dataset_id!r} holds hybridrl metadata whose content hash does "
            "not match its data (changed after it was written); using Minari's own metadata",
            stacklevel=2,
        )

    env_id = mds.env_spec.id if mds.env_spec is not None else None
    prov: dict[str, Any] = {
        "minari_id": dataset_id,
        "minari_version": str(mds.minari_version),
        "minari_library_version": minari.__version__,
    }
    for key in ("author", "algorithm_name", "code_permalink"):
        if raw.get(key):
            value = raw[key]
            prov[key] = sorted(value) if isinstance(value, set) else value
    if facts["unflagged"]:
        prov["unflagged_episode_ends"] = facts["unflagged"]
        prov["unflagged_episode_ends_rule"] = (
            "an episode ending without termination or truncation gets timeouts=1 on its last step"
        )
    if facts["skipped_infos"]:
        prov["skipped_infos"] = facts["skipped_infos"]
    if mds.env_spec is not None:
        # The recorded time limit and constructor arguments: the runner makes its envs with
        # them (`env_options`), so online episodes match the data's.
        prov["env_spec"] = {
            "id": mds.env_spec.id,
            "max_episode_steps": mds.env_spec.max_episode_steps,
            "kwargs": dict(mds.env_spec.kwargs or {}),
        }
    native = DatasetMetadata(
        observation_space=obs_spec,
        action_space=act_spec,
        env_id=env_id,
        source="minari",
        provenance=prov,
        ref_min_score=_opt_float(raw.get("ref_min_score")),
        ref_max_score=_opt_float(raw.get("ref_max_score")),
        name=dataset_id,
    )
    if stored is not None:
        prov["stale_hybridrl_metadata"] = stored
    return Dataset.create(t, native, path=where)


def _restore(
    t: Transitions, facts: dict[str, Any], stored: dict[str, Any], where: str
) -> Dataset | None:
    """The dataset with its saved metadata, if the data is exactly what hybridrl wrote."""
    meta = DatasetMetadata.from_json(stored, path=where)
    candidates = [t]
    if stored.get("trailing_episode_incomplete") and facts["last_unflagged"]:
        # Saved with an incomplete last episode: hybridrl left it unflagged.
        candidates.insert(0, replace(t, timeouts=_set_last(t.timeouts, 0.0)))
    for cand in candidates:
        if Dataset(cand, meta).content_hash() == stored.get("hash"):
            return Dataset.create(cand, meta, path=where)
    return None


def _read_episodes(mds: Any, where: str) -> tuple[Transitions, dict[str, Any]]:
    parts: list[Transitions] = []
    info_rows: dict[str, list[np.ndarray]] = {}
    skipped: set[str] = set()
    unflagged = 0
    last_unflagged = False
    n_eps = 0
    for ep in mds.iterate_episodes():
        n = len(ep.rewards)
        if n == 0:
            continue
        field = f"episode_{ep.id}"
        obs = ep.observations
        if not isinstance(obs, np.ndarray) or not isinstance(ep.actions, np.ndarray):
            raise DatasetError(
                "holds non-array observations or actions; hybridrl reads Box and Discrete "
                "spaces only",
                path=where,
                field=field,
            )
        if obs.shape[0] != n + 1 or ep.actions.shape[0] != n:
            raise DatasetError(
                f"has {obs.shape[0]} observations and {ep.actions.shape[0]} actions for {n} "
                f"rewards (expected {n + 1} and {n})",
                path=where,
                field=field,
            )
        terms = np.asarray(ep.terminations, dtype=bool)
        truncs = np.asarray(ep.truncations, dtype=bool).copy()
        last_unflagged = not (terms[-1] or truncs[-1])
        if last_unflagged:
            truncs[-1] = True
            unflagged += 1
        extras: dict[str, np.ndarray] = {}
        for key, value in (ep.infos or {}).items():
            if key == EXTRAS_INFO_KEY and isinstance(value, dict):
                extras.update({k: np.asarray(v)[1:] for k, v in value.items()})
            elif _per_step(value, n):
                extras[f"info_{key}"] = np.asarray(value)[1:]
            else:
                skipped.add(key)
        for key, value in extras.items():
            info_rows.setdefault(key, []).append(value)
        n_eps += 1
        parts.append(tr.make_transitions(obs[:-1], ep.actions, ep.rewards, obs[1:], terms, truncs))
    # Keep only extras every episode has with one trailing shape and dtype.
    extras_all: dict[str, np.ndarray] = {}
    for key, rows in info_rows.items():
        if len(rows) == n_eps and len({(r.shape[1:], r.dtype) for r in rows}) == 1:
            extras_all[key] = np.concatenate(rows)
        else:
            skipped.add(key)
    if not parts:
        raise DatasetError("holds no transitions (an empty dataset)", path=where)
    t = replace(tr.concatenate(parts), extras=extras_all)
    facts = {
        "unflagged": unflagged,
        "last_unflagged": last_unflagged,
        "skipped_infos": sorted(skipped),
    }
    return t, facts


def _per_step(value: Any, n: int) -> bool:
    arr = np.asarray(value) if isinstance(value, np.ndarray | list) else None
    return (
        arr is not None
        and arr.ndim >= 1
        and arr.shape[0] == n + 1
        and (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_)
    )


def _spec(space: gym.Space, field: str, where: str) -> SpaceSpec:
    try:
        return SpaceSpec.from_gym(space)
    except HybridRLError as exc:
        raise DatasetError(
            f"{space} is not supported: hybridrl reads Box and Discrete spaces; flatten Dict "
            "or Tuple observations first (gymnasium.wrappers.FlattenObservation when "
            "collecting, or gymnasium.spaces.flatten on the episodes)",
            path=where,
            field=field,
        ) from exc


def _stored_json(raw: Any, where: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (TypeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"is not valid JSON: {exc}", path=where, field=METADATA_KEY) from exc
    return data if isinstance(data, dict) else None


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _set_last(flags: Any, value: float) -> np.ndarray:
    out = np.array(flags, copy=True)
    out[-1] = value
    return out


# --------------------------------------------------------------------------------- saving
def save_minari(
    ds: Dataset,
    dataset_id: str,
    *,
    author: str | None = None,
    description: str | None = None,
    overwrite: bool = False,
    eval_env: str | gym.Env | Any | None = None,
) -> Path:
    """Write ``ds`` to the local Minari store as ``dataset_id``; returns its directory.

    The result is an ordinary Minari dataset (``minari.load_dataset(dataset_id)`` reads it).
    It is built under a hidden temporary store next to the real one and renamed into place, so
    a crash never leaves a half-written dataset under ``dataset_id`` (at worst a hidden
    ``.hybridrl-tmp-*`` folder that Minari ignores; with ``overwrite=True`` a crash during the
    final swap of two renames can leave the old copy in a hidden ``.hybridrl-old-*`` folder).
    While it is built, ``MINARI_DATASETS_PATH`` points at that folder, so do not use Minari
    from another thread meanwhile.

    Args:
        ds: the dataset. Inside an episode ``next_observations[t]`` must equal
            ``observations[t + 1]`` (Minari keeps one observation sequence per episode).
        dataset_id: a Minari id, ``(namespace/)name-v<version>``.
        author, description: stored in Minari's metadata.
        overwrite: replace an existing dataset with that id.
        eval_env: Minari's evaluation environment (id, spec or env), if not the data's.

    Reference scores are written straight into Minari's ``ref_min_score``/``ref_max_score``
    keys rather than passed to Minari, which would otherwise need an evaluation environment
    and might estimate a missing minimum with 100 random episodes.
    """
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError) as exc:
        raise DatasetError(
            f"{dataset_id!r} is not a Minari dataset id; ids look like 'namespace/name-v0'"
        ) from exc
    store = minari_store_path()
    final = store / dataset_id
    if final.exists() and not overwrite:
        raise DatasetError(
            f"Minari dataset {dataset_id!r} already exists; pass overwrite=True to replace it",
            path=str(final),
        )
    t = ds.transitions.as_numpy()
    _check_continuous(t, dataset_id)
    meta = ds.metadata
    stored = json.loads(metadata_json(ds))
    stored["trailing_episode_incomplete"] = not tr.trailing_episode_complete(t)
    buffers = [_episode_buffer(t, sl) for sl in tr.episode_slices(t)]
    extra_meta: dict[str, Any] = {METADATA_KEY: json.dumps(stored, sort_keys=True)}
    if meta.ref_min_score is not None:
        extra_meta["ref_min_score"] = float(meta.ref_min_score)
    if meta.ref_max_score is not None:
        extra_meta["ref_max_score"] = float(meta.ref_max_score)

    store.mkdir(parents=True, exist_ok=True)
    tmp_store = store / f".hybridrl-tmp-{uuid.uuid4().hex}"
    env = _try_make(meta.env_id)
    try:
        with _store_at(tmp_store), warnings.catch_warnings():
            for message in _QUIET:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            mds = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=env,
                eval_env=eval_env,
                author=author,
                description=description
                or f"hybridrl dataset {meta.name or dataset_id} (source: {meta.source})",
                action_space=meta.action_space.to_gym(),
                observation_space=meta.observation_space.to_gym(),
                jpeg_encoding=False,  # lossless: the data must read back bit for bit
            )
        mds.storage.update_metadata(extra_meta)
        _move_into_place(tmp_store, store, dataset_id)
    finally:
        if env is not None:
            env.close()
        shutil.rmtree(tmp_store, ignore_errors=True)
    return final


def _check_continuous(t: Transitions, dataset_id: str) -> None:
    if len(t) < 2:
        return
    nxt = np.asarray(t.next_observations)[:-1]
    cur = np.asarray(t.observations)[1:]
    same = np.all((nxt == cur).reshape(len(t) - 1, -1), axis=1)
    bad = np.flatnonzero(~same & ~t.episode_ends[:-1])
    if bad.size:
        raise DatasetError(
            f"cannot be written as Minari dataset {dataset_id!r}: at {bad.size} steps inside "
            f"an episode (first at row {int(bad[0])}) the next observation is not the "
            "following observation, and Minari keeps one observation sequence per episode; "
            "mark those steps as time-outs or use save_hdf5/save_npz",
            field="next_observations",
        )


def _episode_buffer(t: Transitions, sl: slice) -> EpisodeBuffer:
    obs = np.asarray(t.observations)
    last = np.asarray(t.next_observations)[sl.stop - 1 : sl.stop]
    infos = None
    if t.extras:
        # Minari's info row 0 comes from reset, row t+1 from step t.
        infos = {
            EXTRAS_INFO_KEY: {
                k: np.concatenate([np.zeros_like(v[:1]), v[sl]])
                for k, v in ((k, np.asarray(v)) for k, v in t.extras.items())
            }
        }
    return EpisodeBuffer(
        observations=np.concatenate([obs[sl], last]),
        actions=np.asarray(t.actions)[sl],
        rewards=np.asarray(t.rewards)[sl],
        terminations=np.asarray(t.terminals)[sl] > 0,
        truncations=np.asarray(t.timeouts)[sl] > 0,
        infos=infos,
    )


def _try_make(env_id: str | None) -> gym.Env | None:
    """The environment, if Gymnasium can make it here (Minari then records its spec)."""
    if env_id is None:
        return None
    try:
        return gym.make(env_id)
    except Exception:
        return None


@contextlib.contextmanager
def _store_at(path: Path) -> Iterator[None]:
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def _move_into_place(tmp_store: Path, store: Path, dataset_id: str) -> None:
    """Rename the finished dataset from the temporary store onto its id in ``store``."""
    src, final = tmp_store / dataset_id, store / dataset_id
    # Namespace folders carry a metadata file that Minari uses to list namespaces.
    parts = Path(dataset_id).parts[:-1]
    for i in range(1, len(parts) + 1):
        ns = Path(*parts[:i])
        (store / ns).mkdir(exist_ok=True)
        if (
            not (store / ns / _NAMESPACE_FILE).exists()
            and (tmp_store / ns / _NAMESPACE_FILE).exists()
        ):
            shutil.copyfile(tmp_store / ns / _NAMESPACE_FILE, store / ns / _NAMESPACE_FILE)
    trash = None
    if final.exists():
        trash = store / f".hybridrl-old-{uuid.uuid4().hex}"
        os.replace(final, trash)
    try:
        os.replace(src, final)
    except BaseException:
        if trash is not None:
            os.replace(trash, final)
        raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
