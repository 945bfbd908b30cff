"""Agents: one small module per algorithm, each with ``Config``, ``State``, ``init``,
``update`` and ``act`` (pure functions of pytrees), and ``SPEC`` (`AgentSpec`: what it needs from
the runner). `get_agent` looks one up by name, `agent_spec` reads its declaration."""

from __future__ import annotations

from types import ModuleType

from hybridrl.agents import (
    awac,
    bc,
    calql,
    cql,
    edac,
    famo2o,
    iql,
    npg,
    ppo,
    props,
    rebrac,
    ro2o,
    sac,
    td3,
    td3_bc,
)
from hybridrl.agents.spec import AgentSpec
from hybridrl.types import HybridRLError

AGENTS: dict[str, ModuleType] = {
    "sac": sac,
    "bc": bc,
    "td3": td3,
    "td3_bc": td3_bc,
    "rebrac": rebrac,
    "iql": iql,
    "awac": awac,
    "cql": cql,
    "calql": calql,
    "edac": edac,
    "ro2o": ro2o,
    "famo2o": famo2o,
    "ppo": ppo,
    "npg": npg,
    "props": props,
}


def get_agent(name: str) -> ModuleType:
    """The agent module registered as ``name`` (e.g. ``"sac"``)."""
    try:
        return AGENTS[name]
    except KeyError:
        raise HybridRLError(
            f"unknown agent '{name}'; available: {', '.join(sorted(AGENTS))}"
        ) from None


def agent_spec(agent: str | ModuleType) -> AgentSpec:
    """The `AgentSpec` an agent module declares as ``SPEC`` (by module or registry name)."""
    module = get_agent(agent) if isinstance(agent, str) else agent
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, AgentSpec):
        raise HybridRLError(f"agent module {module.__name__} declares no SPEC (an AgentSpec)")
    return spec
