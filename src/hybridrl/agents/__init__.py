"""Agents: one small module per algorithm, each with ``Config``, ``State``, ``init``,
``update`` and ``act`` (pure functions of pytrees). `get_agent` looks one up by name."""

from __future__ import annotations

from types import ModuleType

from hybridrl.agents import awac, bc, calql, cql, edac, iql, sac, td3, td3_bc
from hybridrl.types import HybridRLError

AGENTS: dict[str, ModuleType] = {
    "sac": sac,
    "bc": bc,
    "td3": td3,
    "td3_bc": td3_bc,
    "iql": iql,
    "awac": awac,
    "cql": cql,
    "calql": calql,
    "edac": edac,
}


def get_agent(name: str) -> ModuleType:
    """The agent module registered as ``name`` (e.g. ``"sac"``)."""
    try:
        return AGENTS[name]
    except KeyError:
        raise HybridRLError(
            f"unknown agent '{name}'; available: {', '.join(sorted(AGENTS))}"
        ) from None
