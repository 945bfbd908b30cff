"""Small shared types: array aliases, space descriptions and the library's error class.

`SpaceSpec` is a plain, JSON-serialisable description of a Gymnasium ``Box`` or ``Discrete``
space. Datasets carry one for observations and one for actions so that a file can be checked
against an environment without importing the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

Array = Any  # a numpy or jax array; kept loose so both pass through the same helpers


class HybridRLError(ValueError):
    """Base class of the errors hybridrl raises for bad input."""


class DatasetError(HybridRLError):
    """A dataset file or array is malformed; the message names the file and the field."""

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None):
        where = []
        if path is not None:
            where.append(f"file {path!s}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = f"[{', '.join(where)}] " if where else ""
        super().__init__(prefix + message)
        self.path = path
        self.field = field


@dataclass(frozen=True)
class SpaceSpec:
    """A Box or Discrete space as plain data.

    Attributes:
        kind: ``"box"`` or ``"discrete"``.
        shape: the shape of one element (``()`` for discrete).
        dtype: numpy dtype name of one element.
        low, high: per-element bounds for boxes (lists, may hold +-inf); ``None`` for discrete.
        n: number of actions for discrete spaces: actions are int64 indices in ``[0, n)``,
            stored as an array of shape (N,) (Gymnasium ``Discrete(n)`` with ``start=0``).
    """

    kind: str
    shape: tuple[int, ...]
    dtype: str
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    n: int | None = None

    @staticmethod
    def from_gym(space: gym.Space) -> SpaceSpec:
        if isinstance(space, gym.spaces.Box):
            return SpaceSpec(
                kind="box",
                shape=tuple(int(d) for d in space.shape),
                dtype=np.dtype(space.dtype).name,
                low=tuple(float(x) for x in np.asarray(space.low).ravel()),
                high=tuple(float(x) for x in np.asarray(space.high).ravel()),
            )
        if isinstance(space, gym.spaces.Discrete):
            if int(space.start) != 0:
                # data store indices in [0, n); a shifted space would need the shift everywhere
                raise HybridRLError(
                    f"unsupported space {space!r}: hybridrl handles Discrete spaces that start "
                    "at 0 (actions are indices in [0, n))"
                )
            return SpaceSpec(kind="discrete", shape=(), dtype="int64", n=int(space.n))
        raise HybridRLError(
            f"unsupported space {space!r}: hybridrl handles Box and Discrete spaces "
            "(flatten Dict/Tuple observations with gymnasium.wrappers.FlattenObservation)"
        )

    @staticmethod
    def box_from_data(values: np.ndarray) -> SpaceSpec:
        """An unbounded box with the shape and dtype of ``values[0]``."""
        shape = tuple(int(d) for d in values.shape[1:])
        size = int(np.prod(shape)) if shape else 1
        return SpaceSpec(
            kind="box",
            shape=shape,
            dtype=np.dtype(values.dtype).name,
            low=(-np.inf,) * size,
            high=(np.inf,) * size,
        )

    def to_gym(self) -> gym.Space:
        if self.kind == "discrete":
            assert self.n is not None
            return gym.spaces.Discrete(self.n)
        assert self.low is not None and self.high is not None
        return gym.spaces.Box(
            low=np.asarray(self.low, dtype=self.dtype).reshape(self.shape),
            high=np.asarray(self.high, dtype=self.dtype).reshape(self.shape),
            dtype=np.dtype(self.dtype),
        )

    @property
    def low_array(self) -> np.ndarray:
        assert self.low is not None
        return np.asarray(self.low, dtype=np.float64).reshape(self.shape)

    @property
    def high_array(self) -> np.ndarray:
        assert self.high is not None
        return np.asarray(self.high, dtype=np.float64).reshape(self.shape)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "shape": list(self.shape), "dtype": self.dtype}
        if self.kind == "box":
            # JSON has no infinity: store bounds as strings only where infinite.
            out["low"] = [_float_to_json(x) for x in (self.low or ())]
            out["high"] = [_float_to_json(x) for x in (self.high or ())]
        else:
            out["n"] = self.n
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> SpaceSpec:
        try:
            kind = data["kind"]
            if kind == "discrete":
                return SpaceSpec(kind="discrete", shape=(), dtype="int64", n=int(data["n"]))
            return SpaceSpec(
                kind="box",
                shape=tuple(int(d) for d in data["shape"]),
                dtype=str(data["dtype"]),
                low=tuple(float(x) for x in data["low"]),
                high=tuple(float(x) for x in data["high"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"malformed space description {data!r}: {exc}") from exc

    def describe(self) -> str:
        if self.kind == "discrete":
            return f"Discrete({self.n})"
        lo, hi = self.low_array, self.high_array
        if lo.size and np.all(lo == lo.flat[0]) and np.all(hi == hi.flat[0]):
            return f"Box({lo.flat[0]:g}, {hi.flat[0]:g}, {self.shape}, {self.dtype})"
        return f"Box({self.shape}, {self.dtype})"


def _float_to_json(x: float) -> float | str:
    return x if np.isfinite(x) else ("inf" if x > 0 else "-inf")
