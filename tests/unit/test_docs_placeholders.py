"""No template placeholder survives in the docs (issue #18 §4).

Results pages were once committed with unreplaced template tokens (``CQL_RUNS``, ``CQL_IQM``,
``CQL_SEEDS_NOTE`` in docs/results.md). A placeholder is an upper-case token with an
underscore (two or more letters before it), a ``{{...}}`` slot, or TODO/TBD/FIXME, found in
prose: code blocks, indented code and inline code spans are skipped, since constants and
environment variables written there are names, not slots.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(
    r"\b[A-Z]{2,}[A-Z0-9]*(?:_[A-Z0-9]+)+\b|\{\{[^}]*\}\}|\b(?:TODO|TBD|FIXME)\b"
)


def _prose(text: str) -> str:
    """The text with fenced blocks, indented code lines and inline code spans removed."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"^(?: {4}|\t).*$", "", text, flags=re.M)
    return re.sub(r"`[^`]*`", "", text)


def placeholders(text: str) -> list[str]:
    return [m.group() for m in PLACEHOLDER.finditer(_prose(text))]


def test_the_check_finds_the_placeholders_that_once_shipped() -> None:
    shipped = (
        "| CQL (below) | CQL_RUNS | 9 | CQL_IQM |\n"
        "- **More seeds.** Offline runs have two seeds (CQL: CQL_SEEDS_NOTE).\n"
        "Score {{score}}; TODO rerun.\n"
    )
    assert placeholders(shipped) == ["CQL_RUNS", "CQL_IQM", "CQL_SEEDS_NOTE", "{{score}}", "TODO"]


def test_names_in_code_and_math_symbols_are_not_placeholders() -> None:
    text = (
        "Set `XLA_FLAGS` or `D3RLPY_PYTHON=.venv/bin/python\nD3RLPY_PYTHONPATH=x`.\n"
        "```bash\nHYBRIDRL_CACHE=1 hybridrl run\n```\n"
        "    MUJOCO_GL=egl python x.py\n"
        "The loss L_Q and the critics Q_1, Q_N.\n"
    )
    assert placeholders(text) == []


def test_no_placeholder_left_in_docs_or_readme() -> None:
    files = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    found = {
        str(path.relative_to(ROOT)): hits
        for path in files
        if (hits := placeholders(path.read_text(encoding="utf-8")))
    }
    assert not found, f"unreplaced placeholders: {found}"
