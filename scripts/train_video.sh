#!/usr/bin/env bash
# Rebuild the shipped video run (checkpoints/video/): the pick-and-place policy
# (checkpoints/pick_place) fine-tuned jointly with
# a video-prediction head, and the VQ tokenizer whose codes the head predicts, bundled in
# checkpoints/video/video_head/tokenizer/ so the run works from any clone.
#   bash scripts/train_video.sh      (about 2.6 h on a 2-core CPU: 2 min collect, 23 tokenizer,
#                                     40 stage 1, 87 stage 2)
# Stage 1 trains the head on its codes alone (cross-entropy, from checkpoints/pick_place);
# stage 2 continues that run's policy and head with the pixel loss too (--video-pixel-weight).
# Environment overrides: STEPS (stage 1 steps, default 1000), PIXEL_STEPS (stage 2, default
# 2000; 0 skips it), PIXEL_WEIGHT (default 1.0), DATA, TOK, RUN.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-1000}
DATA=${DATA:-data/pick_place_dart400_env}
TOK=${TOK:-runs/tok1}
PIXEL_STEPS=${PIXEL_STEPS:-2000}
PIXEL_WEIGHT=${PIXEL_WEIGHT:-1.0}
RUN=${RUN:-runs/video_${STEPS}}
AGENT=${AGENT:-.venv/bin/agent}

if [ ! -f "$DATA/meta/info.json" ]; then  # the same demonstrations as scripts/train_pick_place.sh
  "$AGENT" collect --env mujoco:pick_place --policy scripted --episodes 400 --out "$DATA" \
    --num-envs 2 --vcodec h264 --seed 0 --action-noise 0.01,0.05
fi
if [ ! -f "$TOK/model.safetensors" ]; then
  "$AGENT" train-tokenizer --data "$DATA" --out "$TOK" --config small --steps 1000 \
    --cameras front --frame-stride 2
fi
"$AGENT" train --data "$DATA" --out "$RUN" --init checkpoints/pick_place --steps "$STEPS" --lr 3e-4 \
  --tokenizer "$TOK" --video-weight 0.5 --video-horizon 8 --threads 2
if [ "$PIXEL_STEPS" -gt 0 ]; then
  "$AGENT" train --data "$DATA" --out "${RUN}_px" --init "$RUN" --steps "$PIXEL_STEPS" \
    --lr 3e-4 --tokenizer "$TOK" --video-pixel-weight "$PIXEL_WEIGHT" --threads 2
  RUN=${RUN}_px
fi
rm -rf checkpoints/video && mkdir -p checkpoints/video
for f in model.safetensors config.json vocab.json text_tokenizer.json video_config.json \
         train_config.json; do
  cp "$RUN/$f" checkpoints/video/
done
for d in state_codec action_codec plan_codec video_head; do
  if [ -d "$RUN/$d" ]; then cp -r "$RUN/$d" checkpoints/video/; fi
done
mkdir -p checkpoints/video/video_head/tokenizer
for f in model.safetensors config.json train_config.json eval.json; do
  cp "$TOK/$f" checkpoints/video/video_head/tokenizer/
done
echo "video run updated from $RUN (tokenizer $TOK)"
