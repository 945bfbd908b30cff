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
from hybridrl.types import DatasetError, SpaceSpec


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


def save_npz(ds: Dataset, path: str | os.PathLike[str], *, compress: bool = True) -> Path:
    """Write ``ds`` to ``path`` atomically as npz; returns the path."""
    path = Path(path)
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
    """Read a dataset written by `save_npz` (or any npz with the core fields).

    An npz without ``__metadata__`` is accepted if it has the core fields; its spaces are then
    unbounded boxes taken from the arrays and ``source`` is ``npz``. ``check_spaces=False``
    accepts actions outside the stored bounds (e.g. a corruption study without clipping).
    """
    p = str(path)
    if not os.path.exists(p):
        raise DatasetError("no such file", path=p)
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DatasetError(
            f"not a readable npz file (truncated or corrupt?): {exc}", path=p
        ) from exc
    for name in ("observations", "actions", "rewards", "terminals"):
        if name not in arrays:
            raise DatasetError("is missing", path=p, field=name)
    if "next_observations" not in arrays:
        raise DatasetError(
            "is missing; hybridrl npz files store next observations explicitly "
            "(use the D4RL HDF5 loader for files that do not)",
            path=p,
            field="next_observations",
        )
    meta_raw = arrays.pop("__metadata__", None)
    extras = {k[len("extras/") :]: v for k, v in arrays.items() if k.startswith("extras/")}
    _check_lengths(arrays, extras, p)
    t = make_transitions(
        arrays["observations"],
        arrays["actions"],
        arrays["rewards"],
        arrays["next_observations"],
        arrays["terminals"],
        arrays.get("timeouts"),
        extras,
    )
    if meta_raw is None:
        meta = DatasetMetadata(
            observation_space=SpaceSpec.box_from_data(np.asarray(t.observations)),
            action_space=SpaceSpec.box_from_data(np.asarray(t.actions)),
            source="npz",
            name=Path(p).stem,
        )
        stored_hash = None
    else:
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


def _check_lengths(arrays: dict[str, np.ndarray], extras: dict[str, np.ndarray], p: str) -> None:
    n = arrays["rewards"].shape[0] if arrays["rewards"].ndim else -1
    for name, arr in [*arrays.items(), *((f"extras/{k}", v) for k, v in extras.items())]:
        if arr.ndim == 0 or arr.shape[0] != n:
            raise DatasetError(
                f"has {arr.shape[0] if arr.ndim else 'no'} rows but 'rewards' has {n}",
                path=p,
                field=name,
            )
