"""A device-side ring replay buffer: a pytree of fixed-capacity arrays plus two counters.

Everything here except `from_dataset` is a pure function of jax arrays, so it can run inside
``jax.jit`` and ``lax.scan`` (e.g. a whole collect-and-update loop compiled once). The capacity
and batch sizes are static (they are array shapes); the counters are traced int32 scalars.

Layout invariant: the valid rows are always ``data[0:size]``. Rows are written at
``insert_index, insert_index + 1, ...`` modulo the capacity, starting from row 0, so until the
buffer is full ``insert_index == size``; once full, every row is valid and each add overwrites
the oldest rows. Uniform sampling therefore only needs ``randint(0, size)``.

A full buffer (``size == capacity``, what `from_dataset` returns by default) doubles as the
static offline dataset of hybrid RL: there is no separate device-dataset type.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hybridrl.data.dataset import Dataset
from hybridrl.data.transitions import Transitions
from hybridrl.types import Array, HybridRLError


@struct.dataclass
class ReplayBuffer:
    """A ring buffer of transitions living on the device.

    Attributes:
        data: `Transitions` whose every array has leading dimension ``capacity``.
        insert_index: int32 scalar, the row the next transition is written to.
        size: int32 scalar, the number of valid rows (``data[:size]``), at most ``capacity``.
    """

    data: Transitions
    insert_index: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        """Number of rows (static: read from the array shapes, usable under ``jit``)."""
        return int(self.data.rewards.shape[0])


def _device_dtype(dtype: np.dtype) -> np.dtype:
    # float64/int64 become float32/int32 unless jax_enable_x64 is set; asking jnp for a 64-bit
    # buffer without x64 would warn on every call.
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def replay_init(example: Transitions, capacity: int) -> ReplayBuffer:
    """An empty buffer of ``capacity`` rows shaped like ``example``.

    Args:
        example: a *batch* of transitions (leading dimension N >= 0, as everywhere in
            hybridrl; only the per-row shapes and dtypes are used, e.g. a dataset, one
            ``env.step`` of N vector envs, or ``jax.ShapeDtypeStruct`` leaves).
        capacity: number of rows, a Python int > 0.

    Returns:
        A buffer of zeros with ``insert_index == size == 0``. 64-bit dtypes are stored as
        jax's canonical dtypes (32-bit unless ``jax_enable_x64``).
    """
    capacity = int(capacity)
    if capacity <= 0:
        raise HybridRLError(f"replay buffer capacity must be positive, got {capacity}")

    def zeros(x: Array) -> jax.Array:
        if len(x.shape) == 0:
            raise HybridRLError(
                "replay_init expects a batch of transitions (every field with a leading "
                f"dimension), got a field of shape {tuple(x.shape)}; add one with x[None]"
            )
        return jnp.zeros((capacity, *x.shape[1:]), _device_dtype(x.dtype))

    return ReplayBuffer(
        data=jax.tree_util.tree_map(zeros, example),
        insert_index=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def check_same_layout(a: Transitions, b: Transitions, what: str) -> None:
    """Raise `HybridRLError` unless ``a`` and ``b`` have the same fields and per-row shapes.

    Runs in Python at trace time (shapes and pytree structure are static), so a mismatch is a
    clear error rather than a shape failure deep inside XLA.
    """
    keys_a, keys_b = sorted(a.extras), sorted(b.extras)
    if keys_a != keys_b:
        raise HybridRLError(
            f"{what}: extras keys differ: {keys_a} vs {keys_b}; both must carry the same "
            "extras (add the missing ones or drop them with .replace(extras=...))"
        )
    leaves_a = jax.tree_util.tree_leaves_with_path(a)
    leaves_b = jax.tree_util.tree_leaves(b)
    for (path, xa), xb in zip(leaves_a, leaves_b, strict=True):
        if tuple(xa.shape[1:]) != tuple(xb.shape[1:]):
            name = jax.tree_util.keystr(path)
            raise HybridRLError(
                f"{what}: field {name} has per-row shape {tuple(xa.shape[1:])} vs "
                f"{tuple(xb.shape[1:])}"
            )


def replay_add(buffer: ReplayBuffer, batch: Transitions) -> ReplayBuffer:
    """Write a batch of B transitions (B static, e.g. N vector envs) into the ring.

    Row j of the batch goes to ``(insert_index + j) % capacity``; when the buffer is full the
    oldest rows are overwritten. If ``B > capacity`` only the last ``capacity`` rows of the batch
    are kept (the others would be overwritten within the same call anyway), which keeps every
    scatter index unique. Values are cast to the buffer's dtypes. Pure and jit-able.
    """
    check_same_layout(buffer.data, batch, "replay_add")
    cap = buffer.capacity
    b = int(batch.rewards.shape[0])
    if b == 0:
        return buffer
    start = buffer.insert_index
    if b > cap:
        batch = batch.map(lambda x: x[b - cap :])
        start = (start + (b - cap)) % cap
    rows = (start + jnp.arange(min(b, cap), dtype=jnp.int32)) % cap

    def write(dst: jax.Array, src: Array) -> jax.Array:
        src = jnp.asarray(src, dst.dtype).reshape((rows.shape[0], *dst.shape[1:]))
        return dst.at[rows].set(src, unique_indices=True, mode="promise_in_bounds")

    data = jax.tree_util.tree_map(write, buffer.data, batch)
    return ReplayBuffer(
        data=data,
        insert_index=((buffer.insert_index + b) % cap).astype(jnp.int32),
        size=jnp.minimum(buffer.size + b, cap).astype(jnp.int32),
    )


def gather(data: Transitions, indices: jax.Array) -> Transitions:
    """Rows ``indices`` of every field; indices must lie in ``[0, len(data))``."""
    return data.map(lambda x: x.at[indices].get(mode="promise_in_bounds"))


def replay_sample_indices(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> jax.Array:
    """``batch_size`` row indices drawn uniformly, with replacement, from ``[0, size)``.

    An empty buffer (``size == 0``) yields index 0 (a zero row); callers that may sample an empty
    buffer should mask or fall back, as `hybridrl.data.samplers.sample_mixed` does.
    """
    high = jnp.maximum(buffer.size, 1)
    return jax.random.randint(key, (batch_size,), 0, high, dtype=jnp.int32)


def replay_sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Transitions:
    """A batch of ``batch_size`` transitions drawn uniformly with replacement from the valid rows.

    ``size`` may be traced (it is, inside a training loop); ``batch_size`` is static.
    """
    return gather(buffer.data, replay_sample_indices(buffer, key, batch_size))


def from_dataset(ds: Dataset | Transitions, capacity: int | None = None) -> ReplayBuffer:
    """A device buffer pre-filled with a dataset's transitions (host-side; not jit-able).

    Rows ``0..len(ds)-1`` hold the dataset in order, so ``size == len(ds)`` and the next add
    goes to row ``len(ds) % capacity``. With ``capacity=None`` (the default) the buffer is
    exactly full: the form used for a static offline dataset. A larger capacity seeds an online
    buffer that keeps growing (e.g. RLPD/Cal-QL style warm starts).

    Raises:
        HybridRLError: if ``capacity < len(ds)`` or the dataset is empty and no capacity is given.
    """
    t = ds.transitions if isinstance(ds, Dataset) else ds
    n = len(t)
    cap = n if capacity is None else int(capacity)
    if cap <= 0:
        raise HybridRLError("from_dataset needs a non-empty dataset or a positive capacity")
    if cap < n:
        raise HybridRLError(
            f"capacity {cap} is smaller than the dataset ({n} transitions); "
            "pass capacity >= len(ds) or subsample the dataset first"
        )

    def fill(x: Array) -> jax.Array:
        x = np.asarray(x)
        dtype = _device_dtype(x.dtype)
        arr = jnp.asarray(x.astype(dtype, copy=False))
        if cap == n:
            return arr
        pad = jnp.zeros((cap - n, *x.shape[1:]), dtype)
        return jnp.concatenate([arr, pad], axis=0)

    return ReplayBuffer(
        data=jax.tree_util.tree_map(fill, t),
        insert_index=jnp.asarray(n % cap, jnp.int32),
        size=jnp.asarray(n, jnp.int32),
    )
