#!/usr/bin/env bash
# Train one policy for mujoco:pick_place, pick_place_hard, push, reach and pybullet:pick_place
# (issue 33): DART demonstrations of every env's scripted expert, instructions drawn from the
# training phrasings (envs/phrasings.py), one small token policy with a 48-token text window.
#   bash scripts/train_generalist.sh        (collection ~15 min, then ~1 s per step on 2 cores)
# Environment overrides: STEPS, CONFIG, RUN, DATA_ROOT, THREADS, TRAIN_ARGS (extra flags; default
# --balance-envs), COPY=1 to install the result as checkpoints/default.
# Not yet the default's recipe: run 2 (STEPS=6000, the defaults here) reached pick_place 96,
# pick_place_hard 88, pybullet:pick_place 83, reach 43 and push 31% on 100 held-out seeds each
# (experiments/generalist/NOTE.md, section 7). Next: TRAIN_ARGS="--balance-envs --text-noise 0.5".
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-5500}
CONFIG=${CONFIG:-small}
DATA_ROOT=${DATA_ROOT:-data/generalist}
RUN=${RUN:-runs/generalist_${CONFIG}_${STEPS}}
AGENT=${AGENT:-.venv/bin/agent}
NOISE=0.01,0.05

# env, episodes, first seed: pick_place gets the most (it needs the most precise grasp), reach
# the fewest (its episodes are 8 steps long).
SETS="mujoco:pick_place 300 0
mujoco:pick_place_hard 150 100000
mujoco:push 250 200000
mujoco:reach 150 300000
pybullet:pick_place 300 400000"

DATA_ARGS=()
while read -r env n seed; do
  dir="$DATA_ROOT/${env/:/_}_$n"
  if [ ! -f "$dir/meta/info.json" ]; then
    "$AGENT" collect --env "$env" --policy scripted --episodes "$n" --out "$dir" \
      --num-envs 2 --vcodec h264 --seed "$seed" --action-noise "$NOISE" --phrasings train
  fi
  DATA_ARGS+=(--data "$dir")
done <<< "$SETS"

"$AGENT" train "${DATA_ARGS[@]}" --out "$RUN" --config "$CONFIG" --steps "$STEPS" \
  --chunk 8 --execute 4 --eval-env mujoco:pick_place --eval-every 1100 --eval-episodes 10 \
  --threads "${THREADS:-2}" --film --text-len 48 --text-vocab 512 ${TRAIN_ARGS---balance-envs}

if [ "${COPY:-0}" = 1 ]; then
  mkdir -p checkpoints/default
  rm -rf checkpoints/default/*
  cp "$RUN"/{model.safetensors,config.json,vocab.json,text_tokenizer.json} checkpoints/default/
  for d in state_codec action_codec plan_codec; do
    if [ -d "$RUN/$d" ]; then cp -r "$RUN/$d" checkpoints/default/; fi
  done
  echo "default policy updated from $RUN"
fi
