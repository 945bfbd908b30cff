"""What a measurement ran on, for results pages that name their hardware beside every number
(the benchmark scripts print it)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else `platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, visible CPUs, load average now, JAX version and backend, Python and the UTC
    time: a JSON-able record of the conditions of a measurement."""
    import jax

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "loadavg": [round(x, 2) for x in load] if load else None,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def describe_machine(info: dict[str, Any] | None = None) -> str:
    """`machine_info` as one line."""
    info = machine_info() if info is None else info
    load = " ".join(f"{x:.2f}" for x in info["loadavg"] or [])
    return (
        f"{platform.node()}: {info['cpu']}, nproc {info['nproc']}, load average {load}, "
        f"JAX {info['jax']} on {info['backend']}, {info['date']}"
    )
