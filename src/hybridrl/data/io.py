"""File plumbing: atomic writes and the npz format.

npz layout: one array per core field (``observations``, ``actions``, ``rewards``,
``next_observations``, ``terminals``, ``timeouts``), ``extras/<name>`` for extras and
``__metadata__`` holding the metadata JSON (with the content hash, checked on load).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hybridrl.data.dataset import Dataset, DatasetMetadata, metadata_json
from hybridrl.data.transitions import CORE_FIELDS, make_transitions
from hybridrl.types import DatasetError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import, before any threads write files


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it onto ``final`` only on success.

    A crash, exception or Ctrl-C inside the block leaves ``final`` untouched (the old file, or
    nothing) and removes the temporary file, so no half-written dataset is ever visible.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=f".tmp-{os.getpid()}{suffix}", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; the result gets the usual permissions (0666 - umask)
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def save_npz(
    ds: Dataset, path: str | os.PathLike[str], *, compress: bool = True, overwrite: bool = False
) -> Path:
    """Write ``ds`` to ``path`` atomically as npz; returns the path.

    An existing ``path`` is replaced only with ``overwrite=True`` (`refuse_existing`).
    """
    path = Path(path)
    refuse_existing(path, overwrite)
    t = ds.transitions
    arrays = {name: np.asarray(getattr(t, name)) for name in CORE_FIELDS}
    arrays.update({f"extras/{k}": np.asarray(v) for k, v in t.extras.items()})
    arrays["__metadata__"] = np.array(metadata_json(ds))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)  # type: ignore[arg-type]
    return path


def load_npz(
    path: str | os.PathLike[str], *, verify_hash: bool = True, check_spaces: bool = True
) -> Dataset:
    """Read a dataset written by `save_npz`, or a plain npz in D4RL's layout.

    An npz without ``__metadata__`` (``np.savez(f, observations=..., actions=..., ...)``) is
    read exactly as a D4RL HDF5 file with the same keys (`hybridrl.data.d4rl.from_d4rl_arrays`:
    ``timeouts`` and ``next_observations`` optional, ``infos/<name>`` and ``extras/<name>``
    keys); its spaces are then unbounded boxes shaped like the data (a run takes its env's) and
    ``source`` is ``npz``. ``check_spaces=False`` accepts actions outside the stored bounds
    (e.g. a corruption study without clipping).
    """
    p = str(path)
    if not os.path.exists(p):
        raise DatasetError("no such file", path=p)
    if not zipfile.is_zipfile(p):
        # else numpy reads it as a pickle and advises allow_pickle=True: never for a dataset
        raise DatasetError(
            "not an npz file (an npz is a zip archive; truncated or corrupt?)", path=p
        )
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DatasetError(
            f"not a readable npz file (truncated or corrupt?): {exc}", path=p
        ) from exc
    meta_raw = arrays.pop("__metadata__", None)
    if meta_raw is None:
        return _plain_npz(p, arrays)
    for name in ("observations", "actions", "rewards", "terminals", "next_observations"):
        if name not in arrays:
            raise DatasetError("is missing", path=p, field=name)
    extras = {k[len("extras/") :]: v for k, v in arrays.items() if k.startswith("extras/")}
    _check_lengths(arrays, extras, p)
    if len(arrays["rewards"]) == 0:
        raise DatasetError("holds no transitions (an empty dataset)", path=p)
    t = make_transitions(
        arrays["observations"],
        arrays["actions"],
        arrays["rewards"],
        arrays["next_observations"],
        arrays["terminals"],
        arrays.get("timeouts"),
        extras,
    )
    try:
        meta_json = json.loads(str(meta_raw))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"is not valid JSON: {exc}", path=p, field="__metadata__") from exc
    meta = DatasetMetadata.from_json(meta_json, path=p)
    stored_hash = meta_json.get("hash")
    ds = Dataset.create(t, meta, path=p, check_spaces=check_spaces)
    if verify_hash and stored_hash is not None and stored_hash != ds.content_hash():
        raise DatasetError(
            "content hash does not match the arrays: the file was modified or damaged",
            path=p,
            field="__metadata__.hash",
        )
    return ds


def _plain_npz(p: str, arrays: dict[str, np.ndarray]) -> Dataset:
    """An npz hybridrl did not write: the D4RL layout, read by the D4RL reader (one set of
    rules for foreign files, whatever their container)."""
    from hybridrl.data.d4rl import from_d4rl_arrays  # d4rl imports this module

    groups: dict[str, dict[str, np.ndarray]] = {"infos": {}, "extras": {}}
    top = {}
    for key, value in arrays.items():
        group, sep, name = key.partition("/")
        if sep and group in groups:
            groups[group][name] = value
        elif not sep:
            top[key] = value
    return from_d4rl_arrays(p, top, groups["infos"], groups["extras"], {}, None, source="npz")


def refuse_existing(path: str | os.PathLike[str], overwrite: bool) -> None:
    """The one overwrite rule of every writer (and the CLI's ``--overwrite``): an existing
    dataset is replaced only when asked, never silently."""
    if not overwrite and os.path.lexists(path):
        raise DatasetError("already exists; pass overwrite=True to replace it", path=str(path))


def _check_lengths(arrays: dict[str, np.ndarray], extras: dict[str, np.ndarray], p: str) -> None:
    n = arrays["rewards"].shape[0] if arrays["rewards"].ndim else -1
    for name, arr in [*arrays.items(), *((f"extras/{k}", v) for k, v in extras.items())]:
        if arr.ndim == 0 or arr.shape[0] != n:
            raise DatasetError(
                f"has {arr.shape[0] if arr.ndim else 'no'} rows but 'rewards' has {n}",
                path=p,
                field=name,
            )
