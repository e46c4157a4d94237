"""Glue between a TokenPolicy, its VideoHead and the VQ tokenizer: imagine a chunk's future.

`FuturePredictor(policy, head, tokenizer)` is a lookahead `PredictFn` (policies.video.lookahead):
for
one observation and K candidate chunks it encodes the present (the head camera's frame with
the tokenizer, the state with the state codec) once, builds the K trunk contexts [prefix +
chunk ids], runs the head once over the batch and decodes the predicted state bins with the
policy's state codec; `frames` renders the predicted frames too (for side-by-side videos),
the way the head was trained to be rendered (RENDERINGS; policies.video.head, "Rendering").
`video_targets` turns real future frames and states into the head's training targets.

A run trained with `agent train --tokenizer TOK` keeps its head in RUN/video_head/
(model.safetensors + config.json, which names the tokenizer and the SHA-256 of its weights);
`load_imagination(RUN)` gives back (policy, head, tokenizer) and refuses a tokenizer whose
weights are not the ones the head was trained against: its codes would mean other pictures.
A run that travels (e.g. one committed to the repository) carries its tokenizer along in
RUN/video_head/tokenizer/; `tokenizer_dir` prefers that copy to the recorded path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from envs.types import Observation
from policies.model.token_policy import TokenPolicy
from policies.video.head import (
    Present,
    VideoHead,
    VideoHeadConfig,
    VideoHeadError,
    expected_frames,
    state_bins,
)
from policies.video.vq import VQConfig, VQTokenizer, to_uint8

HEAD_DIR = "video_head"
HEAD_FORMAT = "motoken.video_head"
HEAD_VERSION = 2  # 2: conditioned on the present frame (policies.video.head)
RENDERINGS = ("argmax", "expected")  # most likely code per cell; expected code embedding


class NoVideoHeadError(VideoHeadError):
    """A run directory without a (readable) video head."""


class TokenizerMismatchError(VideoHeadError):
    """A tokenizer other than the one the head was trained against."""


class FuturePredictor:
    """(obs, chunks (K, H, Da)) -> predicted states (K, state_dim) float32.

    render: how predicted frames are drawn (RENDERINGS); default "expected" for a head trained
    with a pixel loss (it learned to be drawn that way), else "argmax"."""

    def __init__(self, policy: TokenPolicy, head: VideoHead, tokenizer: VQTokenizer,
                 render: str | None = None) -> None:
        c, p = head.cfg, policy.config
        render = render or ("expected" if c.pixel_weight > 0 else "argmax")
        if render not in RENDERINGS:
            raise VideoHeadError(f"unknown rendering {render!r}; choose one of {RENDERINGS}")
        self.render_mode = render
        problems = []
        if c.state_dim != p.state_dim:
            problems.append(f"head state_dim {c.state_dim} != policy state_dim {p.state_dim}")
        if c.state_bins != policy.state_codec.vocab_size:
            problems.append(f"head state_bins {c.state_bins} != state codec bins "
                            f"{policy.state_codec.vocab_size}")
        if c.camera >= len(p.cameras):
            problems.append(f"head camera {c.camera} is not one of the policy's "
                            f"{len(p.cameras)} cameras {p.cameras}")
        if (tokenizer.cfg.grid, tokenizer.cfg.codebook_size) != (c.grid, c.codebook_size):
            problems.append(f"tokenizer grid/codebook ({tokenizer.cfg.grid}, "
                            f"{tokenizer.cfg.codebook_size}) != head's ({c.grid}, "
                            f"{c.codebook_size})")
        if problems:
            raise VideoHeadError("video head does not fit this policy: " + "; ".join(problems))
        self.policy, self.head, self.tokenizer = policy, head, tokenizer

    def context(self, obs: Observation, chunks: np.ndarray) -> torch.Tensor:
        """(K, S, D) trunk embeddings of [prefix + chunk ids] for each of the K chunks."""
        pol, model = self.policy, self.policy.model
        pol.check_observation(obs)
        K = len(chunks)
        dev = model.embed.weight.device
        frames = np.stack([obs.images[c] for c in pol.config.cameras])[None]  # (1, C, H, W, 3)
        text_ids, state_ids = pol.text_ids([obs.instruction]), pol.observation_state_ids(obs)
        # A policy with plan tokens writes its plan before the actions: the chunk follows it.
        plan = pol.write_plan(text_ids, frames, state_ids)  # (1, plan_dim + 1) or (1, 0)
        text = torch.as_tensor(text_ids, device=dev)  # (1, T)
        state = torch.as_tensor(np.concatenate([state_ids, plan], axis=1), device=dev)
        prefix = model.prefix_embeddings(text, torch.as_tensor(frames, device=dev),
                                         state)  # (1, P, D)
        ids = torch.as_tensor(pol.action_ids(np.asarray(chunks, np.float32)),
                              device=dev)  # (K, H * Da)
        return torch.cat([prefix.expand(K, -1, -1), model.embed(ids)], dim=1)  # (K, S, D)

    @torch.no_grad()
    def present(self, obs: Observation, rows: int = 1) -> Present:
        """The observation as the head reads it, repeated for `rows` candidates: the head
        camera's frame as VQ codes (rows, G, G) and the state as bins (rows, state_dim)."""
        pol, dev = self.policy, self.policy.model.embed.weight.device
        frame = obs.images[pol.config.cameras[self.head.cfg.camera]][None]  # (1, H, W, 3)
        codes = self.tokenizer.encode(frame).to(dev)  # (1, G, G)
        bins = torch.as_tensor(pol.state_codec.encode(obs.state[None].astype(np.float32)),
                               dtype=torch.int64, device=dev)  # (1, state_dim)
        return Present(codes.expand(rows, -1, -1), bins.expand(rows, -1))

    @torch.no_grad()
    def predict(self, obs: Observation, chunks: np.ndarray,
                horizon: int | torch.Tensor | None = None) -> tuple[torch.Tensor, np.ndarray]:
        """Future code logits (K, G, G, codebook_size) and states (K, state_dim) float32,
        `horizon` steps ahead (default the head's cfg.horizon; a (K,) tensor: one per row).
        `render` draws the logits; their argmax is the most likely code of each cell."""
        x = self.context(obs, chunks)  # (K, S, D)
        pred = self.head(self.policy.model, x, self.present(obs, len(x)), horizon)
        bins = state_bins(pred.state_logits)  # (K, state_dim)
        states = self.policy.state_codec.decode(bins.cpu().numpy())  # (K, state_dim)
        return pred.code_logits, states.astype(np.float32)

    def __call__(self, obs: Observation, chunks: np.ndarray) -> np.ndarray:
        return self.predict(obs, chunks)[1]  # (K, state_dim)

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """Codes (K, G, G) -> frames of the head's camera, (K, H, W, 3) uint8."""
        with torch.no_grad():
            return self.tokenizer.decode(codes.to(self.tokenizer.device)).cpu().numpy()

    @torch.no_grad()
    def render(self, code_logits: torch.Tensor, how: str | None = None) -> np.ndarray:
        """Code logits (K, G, G, codebook_size) -> frames (K, H, W, 3) uint8, drawn `how`
        (RENDERINGS; default this predictor's render mode)."""
        how = how or self.render_mode
        if how not in RENDERINGS:
            raise VideoHeadError(f"unknown rendering {how!r}; choose one of {RENDERINGS}")
        logits = code_logits.to(self.tokenizer.device)
        if how == "argmax":
            return self.decode(logits.argmax(-1))
        return to_uint8(expected_frames(logits, self.tokenizer)).cpu().numpy()

    def frames(self, obs: Observation, chunks: np.ndarray,
               horizon: int | torch.Tensor | None = None) -> np.ndarray:
        """Predicted frames of the head's camera, (K, H, W, 3) uint8."""
        return self.render(self.predict(obs, chunks, horizon)[0])


@torch.no_grad()
def video_targets(tokenizer: VQTokenizer, policy: TokenPolicy, future_frames: np.ndarray,
                  future_states: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Real future frames (B, H, W, 3) uint8 and states (B, state_dim) -> the head's targets:
    codes (B, G, G) int64 and state bins (B, state_dim) int64, both local ids."""
    codes = tokenizer.encode(future_frames).cpu()  # (B, G, G)
    bins = policy.state_codec.encode(np.asarray(future_states, np.float32))  # (B, state_dim)
    return codes, torch.as_tensor(bins, dtype=torch.int64)


# -- the head in a run directory ----------------------------------------------------------------
def tokenizer_sha256(tokenizer_dir: Path) -> str:
    """SHA-256 of a tokenizer's weights file: what the head's codes are codes of."""
    weights = Path(tokenizer_dir) / "model.safetensors"
    if not weights.is_file():
        raise TokenizerMismatchError(f"{tokenizer_dir} has no model.safetensors; a tokenizer "
                                     f"is a directory written by `agent train-tokenizer`")
    h = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tokenizer_record(tokenizer_dir: Path, tokenizer: VQTokenizer) -> dict:
    """What RUN/video_head/config.json says about the tokenizer: path, config, weights hash."""
    return {"path": str(Path(tokenizer_dir).resolve()), "config": tokenizer.cfg.to_dict(),
            "weights_sha256": tokenizer_sha256(tokenizer_dir)}


def save_video_head(head: VideoHead, tokenizer: dict, run: Path) -> None:
    """Write RUN/video_head/: the head's weights and config, and `tokenizer_record`."""
    from safetensors.torch import save_file

    out = Path(run) / HEAD_DIR
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    meta = {"format": HEAD_FORMAT, "version": HEAD_VERSION, "head": head.cfg.to_dict(),
            "tokenizer": tokenizer}
    (out / "config.json").write_text(json.dumps(meta, indent=2))


def has_video_head(run: Path) -> bool:
    return (Path(run) / HEAD_DIR / "config.json").is_file()


def load_video_head(run: Path, d_model: int) -> tuple[VideoHead, dict]:
    """The head saved in RUN/video_head/ and its tokenizer record {path, config, sha256}."""
    from safetensors.torch import load_file

    d = Path(run) / HEAD_DIR
    if not has_video_head(run):
        raise NoVideoHeadError(f"{run} has no video head ({d}/config.json missing); train one "
                               f"with `agent train ... --tokenizer TOK`")
    meta = json.loads((d / "config.json").read_text())
    if meta.get("format") != HEAD_FORMAT or meta.get("version") != HEAD_VERSION:
        old = " (version 1 heads do not read the present frame; train the head again)" \
            if meta.get("version") == 1 else ""
        raise NoVideoHeadError(f"{d} holds format={meta.get('format')!r} version="
                               f"{meta.get('version')!r}; this code reads {HEAD_FORMAT!r} "
                               f"version {HEAD_VERSION}{old}")
    head = VideoHead(VideoHeadConfig(**meta["head"]), d_model)
    head.load_state_dict(load_file(str(d / "model.safetensors")))
    return head.eval(), meta["tokenizer"]


def check_tokenizer(record: dict, tokenizer_dir: Path) -> VQTokenizer:
    """Load the tokenizer at `tokenizer_dir` if it is the one `record` names, else an error."""
    got = tokenizer_sha256(tokenizer_dir)
    if got != record["weights_sha256"]:
        raise TokenizerMismatchError(
            f"tokenizer {tokenizer_dir} (weights sha256 {got[:12]}) is not the one the video "
            f"head was trained against ({record['path']}, sha256 "
            f"{record['weights_sha256'][:12]}); its codes would mean other images. Use that "
            f"tokenizer, or train the head again with this one")
    tok = VQTokenizer.load(tokenizer_dir)
    if tok.cfg != VQConfig.from_dict(record["config"]):
        raise TokenizerMismatchError(f"tokenizer {tokenizer_dir} config {tok.cfg.to_dict()} != "
                                     f"the recorded {record['config']}")
    return tok


def tokenizer_dir(run: Path, record: dict) -> Path:
    """Where the head's tokenizer is: RUN/video_head/tokenizer/ if the run carries a copy (the
    hash check still applies), else the path recorded at training."""
    bundled = Path(run) / HEAD_DIR / "tokenizer"
    return bundled if (bundled / "model.safetensors").is_file() else Path(record["path"])


def load_imagination(run: Path, tokenizer: Path | None = None
                     ) -> tuple[TokenPolicy, VideoHead, VQTokenizer]:
    """(policy, head, tokenizer) of a run trained with a video head.

    Args:
        run: the `agent train --tokenizer` output directory.
        tokenizer: where the tokenizer is now (default: `tokenizer_dir(run, record)`).

    Raises:
        NoVideoHeadError: the run has no video head.
        TokenizerMismatchError: the tokenizer's weights are not the ones recorded.
        VideoHeadError: the head does not fit the policy.
    """
    policy = TokenPolicy.load(Path(run))
    head, record = load_video_head(run, policy.model.cfg.d_model)
    tok = check_tokenizer(record, Path(tokenizer or tokenizer_dir(run, record)))
    FuturePredictor(policy, head, tok)  # raises if the parts do not fit together
    return policy, head, tok
