"""Datasets: the transition format, file formats, collection, inspection, corruption, replay.

`load_dataset` and `save_dataset` accept one string for every format:

=======================  ===============================================================
``path.npz``             hybridrl npz (`hybridrl.data.io`)
``path.hdf5``/``.h5``    D4RL-format HDF5 (`hybridrl.data.d4rl`)
``minari:ID``            a Minari dataset in the local store (`hybridrl.data.minari_io`)
``ID``                   same as ``minari:ID`` when no such file exists (ids contain ``/``)
=======================  ===============================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hybridrl.data.dataset import Dataset, DatasetMetadata, concatenate_datasets
from hybridrl.data.transitions import Transitions, make_transitions
from hybridrl.types import DatasetError

FORMATS = ("npz", "hdf5", "minari")

__all__ = [
    "FORMATS",
    "Dataset",
    "DatasetMetadata",
    "Transitions",
    "concatenate_datasets",
    "dataset_format",
    "load_dataset",
    "make_transitions",
    "save_dataset",
]


def dataset_format(spec: str | os.PathLike[str]) -> tuple[str, str]:
    """Split a dataset string (or path) into (format, path or Minari id)."""
    spec = os.fspath(spec)
    if spec.startswith("minari:"):
        return "minari", spec[len("minari:") :]
    suffix = Path(spec).suffix.lower()
    if suffix == ".npz":
        return "npz", spec
    if suffix in (".hdf5", ".h5"):
        return "hdf5", spec
    if not os.path.exists(spec) and "/" in spec and not suffix:
        return "minari", spec
    raise DatasetError(
        f"cannot tell the format of '{spec}': use a .npz, .hdf5/.h5 path or 'minari:ID'"
    )


def load_dataset(spec: str | os.PathLike[str], **kwargs: Any) -> Dataset:
    """Load a dataset from any supported format; ``kwargs`` go to the format's loader.

    Examples: ``load_dataset("runs/pendulum.npz")``,
    ``load_dataset("hopper-medium-v2.hdf5", dataset_id="hopper-medium-v2")``,
    ``load_dataset("minari:mujoco/hopper/medium-v0", download=True)``.
    """
    fmt, target = dataset_format(spec)
    if fmt == "npz":
        from hybridrl.data.io import load_npz

        return load_npz(target, **kwargs)
    if fmt == "hdf5":
        from hybridrl.data.d4rl import load_hdf5

        return load_hdf5(target, **kwargs)
    from hybridrl.data.minari_io import load_minari

    return load_minari(target, **kwargs)


def save_dataset(
    ds: Dataset, spec: str | os.PathLike[str], *, overwrite: bool = False, **kwargs: Any
) -> str:
    """Save ``ds`` atomically; returns where it went (a path, or the Minari dataset path).

    Every format refuses an existing target (`DatasetError` naming it) unless
    ``overwrite=True``; ``kwargs`` go to the format's writer.
    """
    fmt, target = dataset_format(spec)
    if fmt == "npz":
        from hybridrl.data.io import save_npz

        return str(save_npz(ds, target, overwrite=overwrite, **kwargs))
    if fmt == "hdf5":
        from hybridrl.data.d4rl import save_hdf5

        return str(save_hdf5(ds, target, overwrite=overwrite, **kwargs))
    from hybridrl.data.minari_io import save_minari

    return str(save_minari(ds, target, overwrite=overwrite, **kwargs))
