"""The checkpoints motoken ships: data, not code. Each folder is a complete token-policy
checkpoint (config.json, weights, codecs, tokenizer) that `--policy PATH` loads.

    default/  the policy `agent run` uses without --policy (rebuilt by scripts/train_default.sh)
    video/    the default plus a video-prediction head, for lookahead (scripts/train_video.sh)
"""

from pathlib import Path

ROOT = Path(__file__).parent
DEFAULT = ROOT / "default"
VIDEO = ROOT / "video"
