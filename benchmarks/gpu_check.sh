#!/usr/bin/env bash
# GPU check (issue #16): hybridrl's updates/s beside d3rlpy, 1M IQL updates, vmapped seeds.
#
#   bash benchmarks/gpu_check.sh --out DIR [--budget SECONDS] [--tiny] [other gpu_check.py run options]
#
# Writes DIR/gpu_check.json (rewritten after every section) and DIR/gpu_check.log. The budget
# (default 420 s) covers everything from this script's start, wheel installs included.
#
# On a machine without hybridrl's environment (a lent GPU machine: jax, flax, optax, torch but
# no gymnasium or d3rlpy, no network), carry the repository's .whl/ (wheels prepared with
# `pip download`, see docs/performance.md): this script installs them with pip --no-index into
# /tmp/site_hybridrl (gymnasium 1.4 for hybridrl, run from src/ without installing) and
# /tmp/site_d3rlpy (d3rlpy 2.8.1 with its pinned gymnasium 1.0.0 and gym), two directories
# because the gymnasium pins differ. Elsewhere it uses .venv and .venv-compare.
set -uo pipefail
T0=$(date +%s)
cd "$(dirname "$0")/.."
OUT="" BUDGET=420 TINY=0 REST=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --budget) BUDGET="$2"; shift 2 ;;
        --tiny) TINY=1; shift ;;
        *) REST+=("$1"); shift ;;
    esac
done
[ -n "$OUT" ] || { echo "gpu_check.sh: --out DIR is required" >&2; exit 2; }
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
export PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1
{
echo "[gpu_check] $(date -u +%FT%TZ) host $(hostname) nproc $(nproc) load $(cut -d' ' -f1-3 /proc/loadavg)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader

if [ -n "${PYTHON:-}" ]; then :
elif [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python
else PYTHON=$(command -v python3); fi
D3_ARGS=()
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    pipi() { "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --disable-pip-version-check --target "$@"; }
    w() { ls .whl/"$1"-*.whl 2>/dev/null | head -n1; }
    if [ ! -d /tmp/site_hybridrl ]; then
        echo "[gpu_check] installing hybridrl's missing wheels into /tmp/site_hybridrl"
        pipi /tmp/site_hybridrl "$(w gymnasium-1.4.0)" "$(w farama_notifications)" \
            || echo "[gpu_check] WARNING: hybridrl wheel install failed"
    fi
    if [ ! -d /tmp/site_d3rlpy ]; then
        echo "[gpu_check] installing d3rlpy's wheels into /tmp/site_d3rlpy"
        pipi /tmp/site_d3rlpy "$(w d3rlpy)" "$(w gymnasium-1.0.0)" "$(w gym)" "$(w structlog)" \
            "$(w dataclasses_json)" "$(w marshmallow)" "$(w typing_inspect)" \
            "$(w mypy_extensions)" "$(w farama_notifications)" \
            || echo "[gpu_check] WARNING: d3rlpy wheel install failed"
    fi
    export PYTHONPATH="$PWD/src:/tmp/site_hybridrl${PYTHONPATH:+:$PYTHONPATH}"
    D3_ARGS=(--d3rlpy-python "${D3RLPY_PYTHON:-$PYTHON}"
        --d3rlpy-pythonpath "${D3RLPY_PYTHONPATH:-/tmp/site_d3rlpy}")
else
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
    [ -n "${D3RLPY_PYTHON:-}" ] && D3_ARGS=(--d3rlpy-python "$D3RLPY_PYTHON")
    [ -n "${D3RLPY_PYTHONPATH:-}" ] && D3_ARGS+=(--d3rlpy-pythonpath "$D3RLPY_PYTHONPATH")
fi
# d3rlpy on the GPU when torch sees one
DEVICE=cpu
if [ "$TINY" = 0 ] && command -v nvidia-smi >/dev/null; then DEVICE=cuda:0; fi
ARGS=(run --out "$OUT" --budget "$BUDGET" --t0 "$T0" --d3rlpy-device "$DEVICE")
[ "$TINY" = 1 ] && ARGS+=(--tiny)
echo "[gpu_check] $PYTHON benchmarks/gpu_check.py ${ARGS[*]} ${D3_ARGS[*]} ${REST[*]}"
"$PYTHON" -u benchmarks/gpu_check.py "${ARGS[@]}" "${D3_ARGS[@]}" "${REST[@]}"
rc=$?
echo "[gpu_check] exit $rc after $(( $(date +%s) - T0 )) s"
exit $rc
} 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
