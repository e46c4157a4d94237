#!/usr/bin/env bash
# Rebuild the shipped video run (policies/video/): the default policy fine-tuned jointly with
# a video-prediction head, and the VQ tokenizer whose codes the head predicts, bundled in
# policies/video/video_head/tokenizer/ so the run works from any clone.
#   bash scripts/train_video.sh      (about 65 min on a 2-core CPU: 2 collect, 23 tokenizer, 40 train)
# Environment overrides: STEPS (joint training steps, default 1000), DATA, TOK, RUN.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-1000}
DATA=${DATA:-data/pick_place_dart400_env}
TOK=${TOK:-runs/tok1}
RUN=${RUN:-runs/video_${STEPS}}
AGENT=${AGENT:-.venv/bin/agent}

if [ ! -f "$DATA/meta/info.json" ]; then  # the same demonstrations as scripts/train_default.sh
  "$AGENT" collect --env mujoco:pick_place --policy scripted --episodes 400 --out "$DATA" \
    --num-envs 2 --vcodec h264 --seed 0 --action-noise 0.01,0.05
fi
if [ ! -f "$TOK/model.safetensors" ]; then
  "$AGENT" train-tokenizer --data "$DATA" --out "$TOK" --config small --steps 1000 \
    --cameras front --frame-stride 2
fi
"$AGENT" train --data "$DATA" --out "$RUN" --init policies/default --steps "$STEPS" --lr 3e-4 \
  --tokenizer "$TOK" --video-weight 0.5 --video-horizon 8 --threads 2
rm -rf policies/video && mkdir -p policies/video
for f in model.safetensors config.json vocab.json text_tokenizer.json video_config.json \
         train_config.json; do
  cp "$RUN/$f" policies/video/
done
for d in state_codec action_codec plan_codec video_head; do
  if [ -d "$RUN/$d" ]; then cp -r "$RUN/$d" policies/video/; fi
done
mkdir -p policies/video/video_head/tokenizer
for f in model.safetensors config.json train_config.json eval.json; do
  cp "$TOK/$f" policies/video/video_head/tokenizer/
done
echo "video run updated from $RUN (tokenizer $TOK)"
