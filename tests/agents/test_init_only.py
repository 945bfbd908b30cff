"""Config fields read only by ``init`` are declared `init_only`, so `SetConfig` refuses them
instead of silently changing a value the built networks and optimizers never read again."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import hybridrl
from hybridrl.agents import AGENTS
from hybridrl.agents.spec import init_only_fields

PACKAGE = Path(hybridrl.__file__).parent


def _config_reads() -> dict[str, set[tuple[str, str]]]:
    """For each attribute name, the (module path, function) pairs in the package that read it
    from a config (``config.X``, ``cfg.X``, ``<anything>.config.X``) or by
    ``getattr(..., "X")``."""
    reads: dict[str, set[tuple[str, str]]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                name = None
                if isinstance(node, ast.Attribute):
                    base = node.value
                    if (isinstance(base, ast.Name) and base.id in ("config", "cfg")) or (
                        isinstance(base, ast.Attribute) and base.attr == "config"
                    ):
                        name = node.attr
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "getattr"
                    and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                ):
                    name = str(node.args[1].value)
                if name is not None:
                    reads.setdefault(name, set()).add((rel, fn.name))
    return reads


def _reads_that_count(agent: str, name: str) -> set[str]:
    """The functions outside ``init`` whose reads of ``name`` can reach ``agent``'s config:
    in the agent's own module, the agent modules its Config inherits from or its module
    imports, and every module outside ``agents/`` (the runner, evaluation...). Another
    agent's function reading a field of the same name does not count."""
    module = AGENTS[agent]
    own = {f"agents/{Path(module.__file__).stem}.py"}
    for base in module.Config.__mro__:
        if base.__module__.startswith("hybridrl.agents."):
            own.add(f"agents/{base.__module__.rsplit('.', 1)[1]}.py")
    tree = ast.parse(Path(module.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "hybridrl.agents":
            own.update(f"agents/{alias.name}.py" for alias in node.names)
    return {
        fn
        for rel, fn in READS.get(name, set())
        if fn != "init" and (not rel.startswith("agents/") or rel in own)
    }


READS = _config_reads()


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_fields_read_only_by_init_are_declared_init_only(agent):
    config_cls = AGENTS[agent].Config
    declared = init_only_fields(config_cls)
    undeclared = sorted(
        f.name
        for f in dataclasses.fields(config_cls)
        if not _reads_that_count(agent, f.name) and f.name not in declared
    )
    assert not undeclared, (
        f"{agent}.Config fields {undeclared} are read only by init; declare them "
        "init_only (hybridrl.agents.spec) so SetConfig refuses to change them"
    )


def test_the_scan_sees_a_field_read_outside_init():
    # The guard above cannot pass vacuously: a traced field read by the updates is seen.
    assert _reads_that_count("td3", "tau")
    # famo2o's own functions read `critic_lr`; they do not make npg's field a live one
    assert ("agents/famo2o.py", "_with_learning_rates") in READS["critic_lr"]
    assert not _reads_that_count("npg", "critic_lr")
    assert "actor_lr" in init_only_fields(AGENTS["td3"].Config)
    assert "tau" not in init_only_fields(AGENTS["td3"].Config)
