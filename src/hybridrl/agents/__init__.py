"""Agents: one small module per algorithm, each with ``Config``, ``State``, ``init``,
``update`` and ``act`` (pure functions of pytrees). `get_agent` looks one up by name."""

from __future__ import annotations

from types import ModuleType

from hybridrl.agents import sac

# registration anchors (one line per agent group; keep sorted when finalizing)
# <agents-bc-td3>
# <agents-iql-awac>
# <agents-cql-calql>
# <agents-edac>
from hybridrl.types import HybridRLError

AGENTS: dict[str, ModuleType] = {
    "sac": sac,
    # <registry-bc-td3>
    # <registry-iql-awac>
    # <registry-cql-calql>
    # <registry-edac>
}


def get_agent(name: str) -> ModuleType:
    """The agent module registered as ``name`` (e.g. ``"sac"``)."""
    try:
        return AGENTS[name]
    except KeyError:
        raise HybridRLError(
            f"unknown agent '{name}'; available: {', '.join(sorted(AGENTS))}"
        ) from None
