#!/bin/bash
# A/B of the shipped-feature benches on two checkouts, interleaved so that both see the same load.
#   bash experiments/restructure_check/ab.sh BASE_DIR MAIN_DIR OUT_DIR
# BASE_DIR: a worktree at 8b0347d (before the restructure); MAIN_DIR: a checkout after it. Each
# side runs with its own code on PYTHONPATH and the same interpreter (.venv of this checkout).
set -eu
base=$1 main=$2 out=$3
PY=${PY:-$(pwd)/.venv/bin/python}
export MUJOCO_GL=egl
mkdir -p "$out"
for i in 1 2 3; do
  for side in base main; do
    dir=${!side}
    (cd "$dir" && PYTHONPATH="$dir" "$PY" bench/loop.py | tail -1 > "$out/loop_${side}_$i.json")
  done
done
for i in 1 2; do
  for side in base main; do
    dir=${!side}
    (cd "$dir" && PYTHONPATH="$dir" MOTOKEN_CACHE="$out/cache_$side" "$PY" bench/inference.py \
      | tail -1 > "$out/inf_${side}_$i.json")
  done
done
