"""Saving and restoring pytrees (agent states, buffers) atomically with flax serialization."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from hybridrl.data.io import atomic_path
from hybridrl.types import HybridRLError

T = TypeVar("T")


def save_pytree(tree: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``tree`` (arrays, flax structs, optax states) to ``path`` atomically (msgpack)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(serialization.to_bytes(tree))
    return path


def load_pytree(template: T, path: str | os.PathLike[str]) -> T:
    """Read a pytree saved by `save_pytree` into the structure of ``template``.

    ``template`` supplies the static parts (network definitions, optimizers, config); a file
    written for another structure or shapes raises `HybridRLError` naming the file.
    """
    p = Path(path)
    if not p.exists():
        raise HybridRLError(f"checkpoint {p} does not exist")
    try:
        restored = serialization.from_bytes(template, p.read_bytes())
    except (ValueError, KeyError, TypeError) as exc:
        raise HybridRLError(f"checkpoint {p} does not match this configuration: {exc}") from exc
    _check_shapes(template, restored, p)
    return like_template(template, restored)


def like_template(template: T, restored: T) -> T:
    """``restored`` with each leaf of the template's kind: a Python scalar where the template
    has one (config numbers, a fresh `TrainState`'s ``step``) and a weakly typed scalar array
    where the template has one. msgpack gives strongly typed NumPy arrays, which trace to
    other input types (``f32[]`` instead of ``f32[]{weak_type=True}``): every compiled
    program would be compiled again after a resume (seconds each), with the same numbers."""

    def like(a: Any, b: Any) -> Any:
        if isinstance(a, bool | int | float) and np.ndim(b) == 0:
            return type(a)(np.asarray(b).item())
        if isinstance(a, jax.Array) and a.weak_type and a.ndim == 0:
            weak = jnp.asarray(np.asarray(b).item())
            return weak if weak.dtype == a.dtype else jnp.asarray(b, a.dtype)
        return b

    return jax.tree_util.tree_map(like, template, restored)


def _check_shapes(template: Any, restored: Any, p: Path) -> None:
    leaves = zip(
        jax.tree_util.tree_leaves_with_path(template),
        jax.tree_util.tree_leaves(restored),
        strict=True,
    )
    for (where, a), b in leaves:
        if np.shape(a) != np.shape(b):
            raise HybridRLError(
                f"checkpoint {p} does not match this configuration: "
                f"{jax.tree_util.keystr(where)} has shape {np.shape(b)}, expected {np.shape(a)}"
            )


def save_checkpoint(tree: Any, meta: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a pytree and a JSON-able ``meta`` dict into one file, atomically.

    One file (not a pytree file plus a sidecar) so that a kill between two writes can never
    pair a state with the counters of another step.
    """
    path = Path(path)
    payload = {"tree": serialization.to_state_dict(tree), "meta": json.dumps(meta)}
    with atomic_path(path) as tmp:
        tmp.write_bytes(serialization.msgpack_serialize(payload))
    return path


def load_checkpoint(template: T, path: str | os.PathLike[str]) -> tuple[T, dict[str, Any]]:
    """Read a `save_checkpoint` file into the structure of ``template``; returns (tree, meta).

    A truncated or foreign file, or one written for other shapes, raises `HybridRLError`
    naming the file.
    """
    p = Path(path)
    if not p.exists():
        raise HybridRLError(f"checkpoint {p} does not exist")
    try:
        payload = serialization.msgpack_restore(p.read_bytes())
        meta = json.loads(payload["meta"])
        restored = serialization.from_state_dict(template, payload["tree"])
    except (ValueError, KeyError, TypeError) as exc:
        raise HybridRLError(f"checkpoint {p} is unreadable or from another run: {exc}") from exc
    except Exception as exc:  # msgpack raises its own exception types on truncated input
        raise HybridRLError(f"checkpoint {p} is unreadable (truncated?): {exc}") from exc
    _check_shapes(template, restored, p)
    return like_template(template, restored), meta


def stored_shape(path: str | os.PathLike[str], *keys: str) -> tuple[int, ...]:
    """The shape of one array in a `save_checkpoint` file, found by its state-dict keys."""
    p = Path(path)
    try:
        node: Any = serialization.msgpack_restore(p.read_bytes())["tree"]
        for k in keys:
            node = node[k]
    except Exception as exc:  # missing key, truncated file
        raise HybridRLError(f"checkpoint {p} has no array {'/'.join(keys)}: {exc}") from exc
    return tuple(np.shape(node))


def load_checkpoint_entry(
    path: str | os.PathLike[str], name: str, template_of: Callable[[dict[str, Any]], T]
) -> tuple[T, dict[str, Any]]:
    """One entry (e.g. ``"state"``) of a `save_checkpoint` file, without the others (no
    buffers, no key): ``template_of(meta)`` gives its structure, which may depend on the
    checkpoint's counters. Returns (entry, meta); errors name the file."""
    p = Path(path)
    if not p.exists():
        raise HybridRLError(f"checkpoint {p} does not exist")
    try:
        payload = serialization.msgpack_restore(p.read_bytes())
        meta = json.loads(payload["meta"])
        stored = payload["tree"][name]
    except Exception as exc:  # msgpack raises its own exception types on truncated input
        raise HybridRLError(f"checkpoint {p} is unreadable (truncated?): {exc}") from exc
    template = template_of(meta)
    try:
        restored = serialization.from_state_dict(template, stored)
    except (ValueError, KeyError, TypeError) as exc:
        raise HybridRLError(f"checkpoint {p}: its '{name}' does not match: {exc}") from exc
    _check_shapes(template, restored, p)
    return like_template(template, restored), meta
