#!/usr/bin/env bash
# Rebuild the shipped default policy (checkpoints/default/) from scratch with the project's own
# commands: collect scripted demonstrations, train the token policy, copy the checkpoint.
#   bash scripts/train_default.sh            (about 60-65 min on a 2-core CPU)
# Environment overrides: EPISODES, NOISE, STEPS, CHUNK, CONFIG, DATA, RUN, TRAIN_ARGS (extra flags;
# default --film, as runs/obj1 was trained; TRAIN_ARGS= for none).
#
# The demonstrations are collected DART-style (Laskey et al. 2017): the expert's actions are
# executed with Gaussian noise (1 cm, 0.05 rad per step) and each frame is labelled with what
# the expert wanted (`expert_action`), so the policy learns how to recover from the small
# errors it will make itself, instead of only the expert's own narrow path.
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES=${EPISODES:-400}
NOISE=${NOISE:-0.01,0.05}
STEPS=${STEPS:-3300}
CHUNK=${CHUNK:-8}
CONFIG=${CONFIG:-small}
DATA=${DATA:-data/pick_place_dart${EPISODES}_env}
RUN=${RUN:-runs/default_${CONFIG}_${STEPS}}
AGENT=${AGENT:-.venv/bin/agent}

if [ ! -f "$DATA/meta/info.json" ]; then
  "$AGENT" collect --env mujoco:pick_place --policy scripted --episodes "$EPISODES" \
    --out "$DATA" --num-envs 2 --vcodec h264 --seed 0 --action-noise "$NOISE"
fi
"$AGENT" train --data "$DATA" --out "$RUN" --config "$CONFIG" --steps "$STEPS" \
  --chunk "$CHUNK" --execute 4 --eval-env mujoco:pick_place --eval-every 1100 --eval-episodes 10 \
  --threads 2 ${TRAIN_ARGS---film}
mkdir -p checkpoints/default
for f in model.safetensors config.json vocab.json text_tokenizer.json; do
  cp "$RUN/$f" checkpoints/default/
done
rm -rf checkpoints/default/state_codec checkpoints/default/action_codec checkpoints/default/plan_codec
for d in state_codec action_codec plan_codec; do
  if [ -d "$RUN/$d" ]; then cp -r "$RUN/$d" checkpoints/default/; fi
done
echo "default policy updated from $RUN"
