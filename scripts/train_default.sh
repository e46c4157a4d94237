#!/usr/bin/env bash
# Rebuild the shipped default policy (policies/default/) from scratch with the project's own
# commands: collect scripted demonstrations, train the token policy, copy the checkpoint.
#   bash scripts/train_default.sh            (about 60-70 min on a 2-core CPU)
# Environment overrides: EPISODES, STEPS, CONFIG, DATA, RUN.
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES=${EPISODES:-200}
STEPS=${STEPS:-5000}
CONFIG=${CONFIG:-small}
DATA=${DATA:-data/pick_place_${EPISODES}}
RUN=${RUN:-runs/default_${CONFIG}_${STEPS}}
AGENT=${AGENT:-.venv/bin/agent}

if [ ! -f "$DATA/meta/info.json" ]; then
  "$AGENT" collect --env mujoco:pick_place --policy scripted --episodes "$EPISODES" \
    --out "$DATA" --num-envs 2 --vcodec h264 --seed 0
fi
"$AGENT" train --data "$DATA" --out "$RUN" --config "$CONFIG" --steps "$STEPS" \
  --eval-env mujoco:pick_place --eval-every 1000 --eval-episodes 10 --threads 2
mkdir -p policies/default
for f in model.safetensors config.json vocab.json; do cp "$RUN/$f" policies/default/; done
rm -rf policies/default/state_codec policies/default/action_codec
cp -r "$RUN/state_codec" "$RUN/action_codec" policies/default/
echo "default policy updated from $RUN"
