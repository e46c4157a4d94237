"""The checkpoints motoken ships: data, not code. Each folder is a complete token-policy
checkpoint (config.json, weights, codecs, tokenizer) that `--policy PATH` loads.

    default/     the policy `agent run` uses without --policy: one policy for pick_place,
                 pick_place_hard, push, reach (mk6) and pybullet:pick_place (panda), rebuilt by
                 scripts/train_default.sh
    pick_place/  the pick-and-place specialist (mk6 only; the default until stop 43), rebuilt
                 by scripts/train_pick_place.sh
    video/       pick_place/ plus a video-prediction head, for lookahead
                 (scripts/train_video.sh)
"""

from pathlib import Path

ROOT = Path(__file__).parent
DEFAULT = ROOT / "default"
PICK_PLACE = ROOT / "pick_place"
VIDEO = ROOT / "video"
