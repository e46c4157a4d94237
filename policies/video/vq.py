"""The image tokenizer: a small VQ autoencoder from camera frames to a grid of discrete codes.

Read top to bottom. VQ-VAE's recipe (strided-conv encoder, codebook, mirrored decoder) with
the codebook tricks that keep every code alive (checkpoints/video/vq_quantizer.py: l2-normalised
codes,
EMA updates, dead-code restarts). The loss is the mean squared pixel error plus an L1 loss on
image gradients (sharper edges) plus the commitment loss. Squared, not L1: small objects on a
large plain table are a minority of pixels, and L1 (a median) learns to paint them over with
table for longer. No perceptual network, since none can be downloaded here.

Shapes (B = batch, H = W = image_size, h = w = image_size / downsample, D = code_dim):
    frames (B, H, W, 3) uint8 -> encoder -> (B, D, h, w) -> quantizer -> codes (B, h, w) int64
    codes (B, h, w) -> codebook (B, D, h, w) -> decoder -> frames (B, H, W, 3) uint8

Codes are local ids in [0, codebook_size); `codes_to_ids`/`ids_to_codes` place them in the
shared vocabulary's image segment (action_codec.vocab).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from action_codec.vocab import VocabLayout
from policies.video.vq_quantizer import VectorQuantizer

FORMAT = "motoken.vq_tokenizer"
FORMAT_VERSION = 1
NORM_GROUPS = 8  # GroupNorm groups; every channel width is a multiple of it


class TokenizerError(ValueError):
    """Base class of every image-tokenizer error."""


class TokenizerInputError(TokenizerError):
    """Frames or codes of the wrong shape or dtype."""


class CodeRangeError(TokenizerError):
    """A code outside [0, codebook_size), or a vocabulary id outside the image codes."""


class NotATokenizerError(TokenizerError):
    """A directory that does not hold a tokenizer this code can load."""


class UnknownTokenizerConfigError(TokenizerError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class VQConfig:
    image_size: int = 128  # frames are (image_size, image_size, 3) uint8
    channels: tuple[int, ...] = (32, 64, 128)  # one stride-2 level each: downsample 2**len
    res_blocks: int = 1  # residual blocks after each level
    code_dim: int = 32
    codebook_size: int = 2048
    beta: float = 0.25  # commitment loss weight
    ema_decay: float = 0.99
    restart_after: int = 50  # a code unused for this many training batches restarts
    edge_weight: float = 0.5  # weight of the L1 loss on image gradients (sharper edges)

    def __post_init__(self) -> None:
        if not self.channels or any(c <= 0 or c % NORM_GROUPS for c in self.channels):
            raise ValueError(f"channels must be non-empty multiples of {NORM_GROUPS}, "
                             f"got {self.channels}")
        if self.image_size % self.downsample:
            raise ValueError(f"image_size {self.image_size} is not divisible by the "
                             f"downsampling factor {self.downsample}")
        if self.codebook_size < 2 or self.code_dim < 2:
            raise ValueError(f"codebook_size and code_dim must be >= 2, got "
                             f"{self.codebook_size}, {self.code_dim}")
        if not 0 < self.ema_decay < 1 or self.beta < 0 or self.restart_after < 1:
            raise ValueError(f"need 0 < ema_decay < 1, beta >= 0, restart_after >= 1; got "
                             f"{self.ema_decay}, {self.beta}, {self.restart_after}")

    @property
    def downsample(self) -> int:
        return 2 ** len(self.channels)

    @property
    def grid(self) -> int:
        """Side of the code grid: each frame becomes grid x grid codes."""
        return self.image_size // self.downsample

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VQConfig:
        return cls(**{**data, "channels": tuple(data["channels"])})

    def fake_inputs(self, batch: int = 2, seed: int = 0) -> torch.Tensor:
        """Random uint8 frames (batch, H, W, 3) of the size this config accepts."""
        g = torch.Generator().manual_seed(seed)
        size = (batch, self.image_size, self.image_size, 3)
        return torch.randint(0, 256, size, generator=g, dtype=torch.uint8)


# Named sizes. "small" is the default. "tiny" trains in a few hundred steps on a CPU (tests):
# no residual blocks, and a codebook that averages over ~10 batches instead of ~100.
CONFIGS: dict[str, VQConfig] = {
    "tiny": VQConfig(channels=(8, 16, 32), res_blocks=0, code_dim=8, codebook_size=128,
                     ema_decay=0.9, restart_after=10),
    "small": VQConfig(),
    "base": VQConfig(channels=(64, 128, 256), res_blocks=2, code_dim=64, codebook_size=4096),
}


def get_config(name: str) -> VQConfig:
    """The named tokenizer config, or an error listing the names (and the closest one)."""
    if name in CONFIGS:
        return CONFIGS[name]
    close = difflib.get_close_matches(name, CONFIGS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownTokenizerConfigError(
        f"unknown tokenizer config {name!r}; known: {', '.join(sorted(CONFIGS))}{hint}")


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(NORM_GROUPS, ch)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.norm2 = nn.GroupNorm(NORM_GROUPS, ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C, h, w)
        return x + self.conv2(F.silu(self.norm2(h)))  # (B, C, h, w)


class Encoder(nn.Module):
    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, cfg.channels[0], 3, padding=1)
        layers, prev = [], cfg.channels[0]
        for ch in cfg.channels:  # each level halves the resolution
            layers.append(nn.Conv2d(prev, ch, 4, stride=2, padding=1))
            layers.extend(ResBlock(ch) for _ in range(cfg.res_blocks))
            prev = ch
        self.levels = nn.Sequential(*layers)
        self.norm = nn.GroupNorm(NORM_GROUPS, prev)
        self.out = nn.Conv2d(prev, cfg.code_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.levels(self.stem(x))  # (B, C_last, h, w)
        return self.out(F.silu(self.norm(x)))  # (B, D, h, w)


class Decoder(nn.Module):
    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        widths = cfg.channels[::-1]
        self.inp = nn.Conv2d(cfg.code_dim, widths[0], 3, padding=1)
        layers: list[nn.Module] = [ResBlock(widths[0]) for _ in range(cfg.res_blocks)]
        for j, ch in enumerate(widths):  # mirrors the encoder: up, then the level's blocks
            last = j == len(widths) - 1
            nxt = widths[-1] if last else widths[j + 1]
            layers.append(nn.ConvTranspose2d(ch, nxt, 4, stride=2, padding=1))  # doubles h, w
            if not last:  # no blocks at full resolution, like the encoder (cost)
                layers.extend(ResBlock(nxt) for _ in range(cfg.res_blocks))
        self.levels = nn.Sequential(*layers)
        self.norm = nn.GroupNorm(NORM_GROUPS, widths[-1])
        self.out = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.levels(self.inp(z))  # (B, C_first, H, W)
        return self.out(F.silu(self.norm(x)))  # (B, 3, H, W), pixels in about [-1, 1]


class VQOutput(NamedTuple):
    recon: torch.Tensor  # (B, 3, H, W) float, pixels in [-1, 1] scale
    codes: torch.Tensor  # (B, h, w) int64
    loss: torch.Tensor  # scalar: recon_loss + commit_loss
    recon_loss: torch.Tensor  # scalar
    commit_loss: torch.Tensor  # scalar
    perplexity: torch.Tensor  # scalar


class VQTokenizer(nn.Module):
    """Frames <-> codes. `encode`/`decode` for use, `forward` for training.

    Example:
        >>> tok = VQTokenizer(get_config("small"))
        >>> codes = tok.encode(frames)  # (B, 128, 128, 3) uint8 -> (B, 16, 16) int64
        >>> frames2 = tok.decode(codes)  # (B, 128, 128, 3) uint8
    """

    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = VectorQuantizer(cfg.codebook_size, cfg.code_dim, cfg.beta,
                                         cfg.ema_decay, cfg.restart_after)
        self.decoder = Decoder(cfg)

    @property
    def device(self) -> torch.device:
        return self.quantizer.embed.device

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _pixels(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        frames = torch.as_tensor(frames)
        S = self.cfg.image_size
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[1:] != (S, S, 3):
            raise TokenizerInputError(
                f"frames must be uint8 of shape (B, {S}, {S}, 3), got {frames.dtype} of "
                f"shape {tuple(frames.shape)}")
        x = frames.to(self.device).permute(0, 3, 1, 2).float()  # (B, 3, H, W)
        return x / 127.5 - 1.0

    def forward(self, frames: torch.Tensor | np.ndarray) -> VQOutput:
        """Reconstruct uint8 frames (B, H, W, 3) through the codebook, with the losses."""
        x = self._pixels(frames)  # (B, 3, H, W)
        q = self.quantizer(self.encoder(x))
        recon = self.decoder(q.z_q)  # (B, 3, H, W)
        recon_loss = F.mse_loss(recon, x)
        if self.cfg.edge_weight:
            recon_loss = recon_loss + self.cfg.edge_weight * edge_loss(recon, x)
        return VQOutput(recon, q.codes, recon_loss + q.commit_loss, recon_loss,
                        q.commit_loss, q.perplexity)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 frames (B, H, W, 3) -> codes (B, grid, grid) int64 in [0, codebook_size)."""
        z = F.normalize(self.encoder(self._pixels(frames)), dim=1)  # (B, D, h, w)
        B, D, h, w = z.shape
        return self.quantizer.lookup(z.permute(0, 2, 3, 1).reshape(-1, D)).view(B, h, w)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Codes (B, grid, grid) int -> uint8 frames (B, H, W, 3).

        Raises:
            TokenizerInputError: Not integers, or not of shape (B, grid, grid).
            CodeRangeError: A code outside [0, codebook_size); codes are never clamped.
        """
        codes = torch.as_tensor(codes)
        G, K = self.cfg.grid, self.cfg.codebook_size
        if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
            raise TokenizerInputError(f"codes must be integers, got {codes.dtype}")
        if codes.dim() != 3 or codes.shape[1:] != (G, G):
            raise TokenizerInputError(
                f"codes must have shape (B, {G}, {G}), got {tuple(codes.shape)}")
        _check_codes(codes, K, "code")
        z = self.quantizer.embed[codes.to(self.device, torch.int64)]  # (B, h, w, D)
        x = self.decoder(z.permute(0, 3, 1, 2))  # (B, 3, H, W)
        return to_uint8(x)

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write `model.safetensors` and `config.json` (format marker + config) into directory."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": self.cfg.to_dict()}
        (directory / "config.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> VQTokenizer:
        """Rebuild a tokenizer written by `save`, in eval mode.

        Raises:
            NotATokenizerError: No tokenizer config/weights, another format or version, or
                weights that do not fit the stored config.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = _read_meta(directory)
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise NotATokenizerError(
                f"{directory} holds format={meta.get('format')!r} version="
                f"{meta.get('version')!r}; this code reads {FORMAT!r} version {FORMAT_VERSION}")
        weights = directory / "model.safetensors"
        if not weights.is_file():
            raise NotATokenizerError(f"{directory} has a tokenizer config but no {weights.name}")
        try:
            tok = cls(VQConfig.from_dict(meta["config"]))
            tok.load_state_dict(load_file(str(weights)))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise NotATokenizerError(f"{directory}: weights or config unusable: {exc}") from exc
        return tok.to(device).eval()


def is_tokenizer(path: str | Path) -> bool:
    """True when `path` is a directory written by `VQTokenizer.save`."""
    try:
        return _read_meta(Path(path)).get("format") == FORMAT
    except NotATokenizerError:
        return False


def _read_meta(directory: Path) -> dict:
    path = directory / "config.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NotATokenizerError(f"{directory} is not a tokenizer directory (expected "
                                 f"config.json with format {FORMAT!r}): {exc}") from exc
    if not isinstance(meta, dict):
        raise NotATokenizerError(f"{path} is not a JSON object")
    return meta


def edge_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 distance between the horizontal and vertical differences of two (B, 3, H, W) images."""
    dx = F.l1_loss(a[..., :, 1:] - a[..., :, :-1], b[..., :, 1:] - b[..., :, :-1])
    dy = F.l1_loss(a[..., 1:, :] - a[..., :-1, :], b[..., 1:, :] - b[..., :-1, :])
    return dx + dy


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) pixels in [-1, 1] -> (B, H, W, 3) uint8, rounded."""
    x = ((x.float() + 1.0) * 127.5).round().clamp(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def psnr(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Per-frame PSNR in dB of two uint8 frame batches (B, H, W, 3) -> (B,)."""
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    mse = (a - b).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(255.0 ** 2 / mse)


# -- the shared vocabulary ---------------------------------------------------------------------
def codes_to_ids(codes: torch.Tensor | np.ndarray, layout: VocabLayout,
                 codebook_size: int) -> torch.Tensor | np.ndarray:
    """Local codes [0, codebook_size) -> global ids in `layout`'s image segment (same type).

    Raises:
        CodeRangeError: The image segment is smaller than the codebook, or a code is outside
            [0, codebook_size).
    """
    start = _image_start(layout, codebook_size)
    _check_codes(codes, codebook_size, "code")
    return _as_int64(codes) + start


def ids_to_codes(ids: torch.Tensor | np.ndarray, layout: VocabLayout,
                 codebook_size: int) -> torch.Tensor | np.ndarray:
    """Global ids of `layout`'s image segment -> local codes [0, codebook_size) (same type).

    Raises:
        CodeRangeError: The image segment is smaller than the codebook, or an id is not one
            of the codebook's ids (outside the segment, or past the codebook inside it).
    """
    start = _image_start(layout, codebook_size)
    _check_codes(ids, codebook_size, "image id", start=start)
    return _as_int64(ids) - start


def _image_start(layout: VocabLayout, codebook_size: int) -> int:
    seg = layout.ranges["image"]
    if seg.size < codebook_size:
        raise CodeRangeError(f"the vocabulary's image segment holds {seg.size} ids, fewer than "
                             f"the tokenizer's codebook of {codebook_size}: build the layout "
                             f"with VocabSizes(image={codebook_size}) or more")
    return seg.start


def _as_int64(values: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    if isinstance(values, torch.Tensor):
        if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
            raise TokenizerInputError(f"codes must be integers, got {values.dtype}")
        return values.to(torch.int64)
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        raise TokenizerInputError(f"codes must be integers, got dtype {values.dtype}")
    return values.astype(np.int64)


def _check_codes(codes: torch.Tensor | np.ndarray, size: int, what: str,
                 start: int = 0) -> None:
    codes = _as_int64(codes)
    if codes.reshape(-1).shape[0] == 0:
        return
    lo, hi = int(codes.min()), int(codes.max())
    if lo < start or hi >= start + size:
        raise CodeRangeError(f"{what} {lo if lo < start else hi} is outside the codebook's "
                             f"range [{start}, {start + size})")
