#!/usr/bin/env bash
# Train one policy for mujoco:pick_place, pick_place_hard, push, reach and pybullet:pick_place
# (issue 33): DART demonstrations of every env's scripted expert, instructions drawn from the
# training phrasings (envs/phrasings.py), one small token policy with a 48-token text window,
# envs sampled equally (--balance-envs) and half the instructions word-noised (--text-noise 0.5).
#   bash scripts/train_generalist.sh        (collection ~8 min, then ~0.4 s per step on 2 free cores)
# Then DAGGER_ROUNDS (3) rounds of DAgger on push, each DAGGER_EPISODES (200) policy rollouts
# labelled by the expert and DAGGER_STEPS (2500) more steps from the latest weights. With
# PLAN_STEPS=N, N more with the plan re-cut into xyz blocks (--plan-block xyz: 20 decoder calls
# per chunk instead of 39); off by default: 2500 such steps cost 3-12 points per env (NOTE.md
# section 12).
# Environment overrides: STEPS, CONFIG, RUN, DATA_ROOT, THREADS, TRAIN_ARGS (extra flags),
# DAGGER_ROUNDS/EPISODES/STEPS, BASE_RUN (a trained run to start the DAgger rounds from),
# PLAN_STEPS (default 0: the plan token by token), COPY=1 to install the result as
# checkpoints/default (what scripts/train_default.sh does).
# Figures of each run in experiments/generalist/NOTE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-6000}
CONFIG=${CONFIG:-small}
DATA_ROOT=${DATA_ROOT:-data/generalist}
RUN=${RUN:-runs/generalist_${CONFIG}_${STEPS}}
AGENT=${AGENT:-.venv/bin/agent}

# env, episodes, first seed, DART noise (POS m, ROT rad), name tag. Reach gets more episodes
# and 3x the noise: its expert goes straight to the ball in ~9 steps, so clean demonstrations
# hold no state off that line to recover from (run 2's reach failures drift away; NOTE.md
# section 7). Push is tagged "markov": recorded with the push script that acts on the present
# state alone (NOTE.md section 11), so datasets of the earlier scripts (no tag: the first;
# "steer": the stateful steering one) are never reused by mistake.
SETS="mujoco:pick_place 300 0 0.01,0.05 -
mujoco:pick_place_hard 150 100000 0.01,0.05 -
mujoco:push 500 200000 0.01,0.05 markov
mujoco:reach 600 300000 0.03,0.1 -
pybullet:pick_place 300 400000 0.01,0.05 -"

DATA_ARGS=()
while read -r env n seed noise tag; do
  dir="$DATA_ROOT/${env/:/_}_$n"
  if [ "$tag" != - ]; then dir="${dir}_$tag"; fi
  if [ ! -f "$dir/meta/info.json" ]; then
    "$AGENT" collect --env "$env" --policy scripted --episodes "$n" --out "$dir" \
      --num-envs 2 --vcodec h264 --seed "$seed" --action-noise "$noise" --phrasings train
  fi
  DATA_ARGS+=(--data "$dir")
done <<< "$SETS"

if [ -z "${BASE_RUN:-}" ]; then
  "$AGENT" train "${DATA_ARGS[@]}" --out "$RUN" --config "$CONFIG" --steps "$STEPS" \
    --chunk 8 --execute 4 --eval-env mujoco:pick_place --eval-every 1100 --eval-episodes 10 \
    --threads "${THREADS:-2}" --film --text-len 48 --text-vocab 512 ${TRAIN_ARGS---balance-envs --text-noise 0.5}
else
  RUN=$BASE_RUN  # start the DAgger rounds from a trained run instead
fi

finished() {  # RUN STEPS: RUN's metrics reached STEPS (a stage already trained is kept)
  tail -n 1 "$1/metrics.jsonl" 2>/dev/null | grep -q "\"step\": $2,"
}

# DAgger on push (NOTE.md section 11): each round, the latest policy pushes on training seeds,
# the scripted expert labels every state it reaches (agent collect --expert), and the policy
# trains DAGGER_STEPS more on all the data so far, from its own weights. A round already
# trained (its run's metrics reached DAGGER_STEPS) is kept, so raising DAGGER_ROUNDS on a
# finished recipe runs only the new rounds, on all the rounds' data.
for r in $(seq 1 "${DAGGER_ROUNDS:-3}"); do
  dir="$DATA_ROOT/mujoco_push_dagger${r}_$(basename "$RUN")"
  if [ ! -f "$dir/meta/info.json" ]; then
    "$AGENT" collect --env mujoco:push --policy "$RUN" --expert scripted \
      --episodes "${DAGGER_EPISODES:-200}" --out "$dir" --num-envs 2 --vcodec h264 \
      --seed $((250000 + 1000 * (r - 1))) --phrasings train
  fi
  DATA_ARGS+=(--data "$dir")
  if ! finished "${RUN}_dagger$r" "${DAGGER_STEPS:-2500}"; then
    "$AGENT" train "${DATA_ARGS[@]}" --out "${RUN}_dagger$r" --init "$RUN" \
      --steps "${DAGGER_STEPS:-2500}" --eval-env mujoco:push --eval-every 1250 \
      --eval-episodes 10 --threads "${THREADS:-2}" --balance-envs --text-noise 0.5
  fi
  RUN=${RUN}_dagger$r
done

# The plan in xyz blocks (NOTE.md section 12): the same weights read the new slot layout, and
# fine-tuning on all the data adapts them to predicting a position's three values together
# (measured: not enough in 2500 steps, so PLAN_STEPS is 0 unless set).
if [ "${PLAN_STEPS:-0}" != 0 ]; then
  if ! finished "${RUN}_xyz" "${PLAN_STEPS:-0}"; then
    "$AGENT" train "${DATA_ARGS[@]}" --out "${RUN}_xyz" --init "$RUN" --plan-block xyz \
      --steps "${PLAN_STEPS:-0}" --eval-env mujoco:push --eval-every 1250 \
      --eval-episodes 10 --threads "${THREADS:-2}" --balance-envs --text-noise 0.5
  fi
  RUN=${RUN}_xyz
fi

if [ "${COPY:-0}" = 1 ]; then
  mkdir -p checkpoints/default
  rm -rf checkpoints/default/*
  cp "$RUN"/{model.safetensors,config.json,vocab.json,text_tokenizer.json} checkpoints/default/
  for d in state_codec action_codec plan_codec; do
    if [ -d "$RUN/$d" ]; then cp -r "$RUN/$d" checkpoints/default/; fi
  done
  echo "default policy updated from $RUN"
fi
