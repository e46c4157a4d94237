#!/usr/bin/env bash
# The generalist's six held-out evals (NOTE.md's tables): 100 seeds on each of the five envs,
# and pick_place with the held-out phrasings; two at a time (2 cores), ~7 min on a quiet VM.
#   bash experiments/generalist/eval_all.sh RUN OUTDIR
# Writes OUTDIR/NAME.log (the full output) and OUTDIR/NAME.json (its last line).
set -euo pipefail
RUN=${1:?usage: eval_all.sh RUN OUTDIR}
OUT=${2:?usage: eval_all.sh RUN OUTDIR}
cd "$(dirname "$0")/../.."
mkdir -p "$OUT"
export MUJOCO_GL=${MUJOCO_GL:-egl}
ev() {  # env, name, extra flags
  .venv/bin/agent eval --env "$1" --policy "$RUN" --episodes "${EPISODES:-100}" --backend onnx \
    --json "${@:3}" > "$OUT/$2.log" 2>&1
  tail -n 1 "$OUT/$2.log" > "$OUT/$2.json"
}
(ev mujoco:pick_place pick_place; ev mujoco:push push; ev mujoco:reach reach) &
(ev pybullet:pick_place pybullet_pick_place; ev mujoco:pick_place_hard pick_place_hard
 ev mujoco:pick_place pick_place_heldout --phrasings heldout) &
wait
