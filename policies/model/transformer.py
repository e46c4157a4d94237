"""The motoken token policy: one decoder-only transformer over text, image, state and action.

Read top to bottom. The recipe is Llama's as Emu3 keeps it (RMSNorm, rotary positions,
SwiGLU, no biases) plus Unified-IO 2's QK-norm, which keeps attention logits bounded when
modalities with very different statistics share one sequence.

Sequence (B = batch, S = sequence):
    [text ids (T_text)] [patches camera 0 (P)] ... [patches camera C-1 (P)]
    [begin_state] [state ids (D_s)] [end_state] ([begin_plan] [plan ids (D_p)])
    [begin_actions] [action ids (H * D_a)]
Text, state and action positions are token ids in the shared vocabulary (action_codec.vocab);
image positions are embeddings from a small CNN per camera (shared weights): a coarse grid of
feature tokens with learned 2D positions, plus spatial-softmax keypoints (robomimic's recipe
for precise object positions: each keypoint is the expected (x, y) of one feature map), and a
camera embedding. Training predicts every action id from everything before it.
Plan ids (optional, policies.model.plan_targets.plan_targets) are the policy's own estimate of
where the
named cube and plate are relative to the tool: generated before the actions (an embodied
chain of thought), so each action reads a few numbers instead of re-deriving them from pixels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int = 5000
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: float = 8 / 3  # SwiGLU's hidden width keeps the parameter count of a 4x MLP
    n_cameras: int = 2
    image_size: int = 128  # input frames are (image_size, image_size, 3) uint8
    patch_grid: int = 4  # each camera gives patch_grid**2 grid tokens ...
    n_keypoints: int = 16  # ... plus this many keypoint tokens
    cnn_width: int = 32  # channels of the CNN's first stage (then 2x, 2x)
    # FiLM (RT-1, BC-Z): the instruction scales and shifts the CNN's channels, so the image
    # features (and keypoints) can pick out the named cube and plate before the transformer.
    film: bool = False
    # Width of the training-only auxiliary head (policies.model.plan_targets: object poses
    # regressed from the
    # hidden state at end_state); 0: none. Acting never reads it.
    aux_dim: int = 0
    max_seq_len: int = 512
    rope_base: float = 10_000.0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.image_size % (self.patch_grid * 8):
            raise ValueError(f"image_size {self.image_size} must be a multiple of "
                             f"8 * patch_grid = {8 * self.patch_grid}")

    @property
    def tokens_per_camera(self) -> int:
        return self.patch_grid ** 2 + self.n_keypoints

    @property
    def n_patches(self) -> int:
        """Image positions in the sequence (all cameras)."""
        return self.n_cameras * self.tokens_per_camera

    def to_dict(self) -> dict:
        return asdict(self)

    def fake_inputs(self, batch: int = 2, text_len: int = 8, state_len: int = 17,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random (text ids, uint8 frames, state ids) of the shapes this config accepts."""
        g = torch.Generator().manual_seed(seed)
        text = torch.randint(0, self.vocab_size, (batch, text_len), generator=g)
        size = (batch, self.n_cameras, self.image_size, self.image_size, 3)
        frames = torch.randint(0, 256, size, generator=g, dtype=torch.uint8)
        state = torch.randint(0, self.vocab_size, (batch, state_len), generator=g)
        return text, frames, state


# Model sizes. `vocab_size` is set from the fitted codecs at training time.
CONFIGS: dict[str, TransformerConfig] = {
    "nano": TransformerConfig(d_model=64, n_layers=2, n_heads=2, n_keypoints=8, cnn_width=16),
    "small": TransformerConfig(d_model=128, n_layers=4, n_heads=4),
    "base": TransformerConfig(d_model=256, n_layers=6, n_heads=8),
}


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim: int, max_len: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = base ** (-torch.arange(0, head_dim, 2).float() / head_dim)  # (hd/2,)
    angles = torch.outer(torch.arange(max_len).float(), inv_freq)  # (L, hd/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, nh, S, hd); cos/sin: (S, hd/2). Rotates (even, odd) channel pairs.
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, nh, S, hd/2, 2)
    return out.flatten(-2)


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.q_norm, self.k_norm = RMSNorm(self.head_dim), RMSNorm(self.head_dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, S, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)  # 3 x (B, S, D)
        q, k, v = (t.view(B, S, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        q, k = apply_rope(self.q_norm(q), cos, sin), apply_rope(self.k_norm(k), cos, sin)
        if cache is not None:  # decoding: attend to everything cached so far, then us
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        # (B, nh, S, hd). Causal within the new positions; all cached positions are visible.
        # int(S): under ONNX tracing S is a traced value; the branch is fixed at export time
        # (the decode graph is exported for one new position).
        causal = cache is None or int(S) > 1
        mask = None
        if cache is not None and int(S) > 1:
            past = cache[0].shape[2]
            mask = torch.ones(S, past + S, dtype=torch.bool, device=x.device).tril(past)
            causal = False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        y = y.transpose(1, 2).reshape(B, S, D)  # (B, S, D)
        return self.proj(y), (k, v)


class SwiGLU(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        hidden = int(cfg.mlp_ratio * cfg.d_model)
        self.gate = nn.Linear(cfg.d_model, hidden, bias=False)
        self.up = nn.Linear(cfg.d_model, hidden, bias=False)
        self.down = nn.Linear(hidden, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn_norm, self.mlp_norm = RMSNorm(cfg.d_model), RMSNorm(cfg.d_model)
        self.attn, self.mlp = Attention(cfg), SwiGLU(cfg)

    def forward(self, x, cos, sin, cache=None):
        a, new_cache = self.attn(self.attn_norm(x), cos, sin, cache)
        x = x + a
        return x + self.mlp(self.mlp_norm(x)), new_cache


def conv_stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False),
                         nn.GroupNorm(8, c_out), nn.SiLU())


class SpatialSoftmax(nn.Module):
    """(N, C, h, w) features -> (N, K, 2) expected (x, y) in [-1, 1] of K learned maps."""

    def __init__(self, channels: int, keypoints: int, size: int) -> None:
        super().__init__()
        self.maps = nn.Conv2d(channels, keypoints, 1)
        lin = torch.linspace(-1.0, 1.0, size)
        grid = torch.stack(torch.meshgrid(lin, lin, indexing="xy"), dim=-1)  # (h, w, 2): x, y
        self.register_buffer("grid", grid.reshape(size * size, 2), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.maps(x).flatten(2).softmax(-1)  # (N, K, h*w)
        return attn @ self.grid  # (N, K, 2)


class ImageEncoder(nn.Module):
    """(B, C, H, W, 3) uint8 frames -> (B, C * (G*G + K), D) image tokens.

    CNN at 1/2, 1/4, 1/8 resolution (shared by the cameras); the 1/8 map gives G x G grid
    tokens (what is where, coarsely) and K spatial-softmax keypoints (where, precisely: a
    keypoint moves continuously with the object under it, which a 16-pixel grid cell does not).
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        w, D = cfg.cnn_width, cfg.d_model
        # A 4x4 patchify stem (cheap on a CPU), then 3x3 convs at 1/4 and 1/8.
        self.cnn = nn.Sequential(
            nn.Conv2d(3, w, kernel_size=4, stride=4), nn.GroupNorm(8, w), nn.SiLU(),
            conv_stage(w, 2 * w, 1), conv_stage(2 * w, 4 * w, 2))
        size = cfg.image_size // 8
        cell = size // cfg.patch_grid
        self.grid = nn.Conv2d(4 * w, D, kernel_size=cell, stride=cell)
        self.keypoints = SpatialSoftmax(4 * w, cfg.n_keypoints, size)
        self.keypoint_proj = nn.Linear(2, D)
        # Stage outputs that FiLM modulates: index in self.cnn -> channels.
        self.film_at = {2: w, 3: 2 * w, 4: 4 * w} if cfg.film else {}
        if cfg.film:
            self.film = nn.Linear(D, 2 * sum(self.film_at.values()))
        g, K = cfg.patch_grid, cfg.n_keypoints
        self.pos = nn.Parameter(torch.zeros(1, 1, g * g + K, D))  # grid cells, then keypoint ids
        self.camera = nn.Parameter(torch.zeros(1, cfg.n_cameras, 1, D))
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.camera, std=0.02)

    def forward(self, frames: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """cond: (B, D) instruction summary, used when the config has FiLM."""
        B, C, H, W, _ = frames.shape
        f = frames.reshape(B * C, H, W, 3).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        film = None
        if self.film_at:
            film = self.film(cond).repeat_interleave(C, dim=0)  # (B*C, 2 * sum(channels))
            film = film.split([c for c in self.film_at.values() for _ in (0, 1)], dim=1)
        for i, layer in enumerate(self.cnn):
            f = layer(f)
            if film is not None and i in self.film_at:
                k = 2 * list(self.film_at).index(i)
                gamma, beta = film[k][..., None, None], film[k + 1][..., None, None]
                f = f * (1 + gamma) + beta  # (B*C, ch, h, w)
        # f: (B*C, 4w, H/8, W/8)
        grid = self.grid(f).flatten(2).transpose(1, 2)  # (B*C, G*G, D)
        keys = self.keypoint_proj(self.keypoints(f))  # (B*C, K, D)
        tokens = torch.cat([grid, keys], dim=1)  # (B*C, G*G + K, D)
        tokens = tokens.reshape(B, C, -1, tokens.shape[-1])  # (B, C, G*G + K, D)
        return (tokens + self.pos + self.camera).flatten(1, 2)  # (B, C*(G*G + K), D)


class TokenEmbedding(nn.Module):
    """Id embeddings that know the order of binned values, tied to the output projection.

    A bin id of the state or action segment means a number, and bin k is next to bin k+1;
    a plain embedding table has to learn that order from data, one row at a time. Here row k
    of a segment is `weight[k] + value[k] * direction[segment]`, with value[k] the bin's rank
    scaled to [-1, 1] (set from the vocabulary layout by the policy; zero elsewhere). Tied to
    the head, the same term gives every logit a component linear in the bin's rank, so the
    model can move its prediction along the value axis with one direction.
    """

    N_SEGMENTS = 4  # 0: unordered (text, image, special), 1: state, 2: action, 3: plan bins

    def __init__(self, vocab_size: int, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model) * 0.02)
        self.direction = nn.Parameter(torch.randn(self.N_SEGMENTS, d_model) * 0.02)
        self.register_buffer("value", torch.zeros(vocab_size), persistent=False)
        self.register_buffer("segment", torch.zeros(vocab_size, dtype=torch.long),
                             persistent=False)

    def set_order(self, value: torch.Tensor, segment: torch.Tensor) -> None:
        """value (V,) in [-1, 1], segment (V,) in 0..N_SEGMENTS-1 (0 = unordered)."""
        self.value.copy_(value)
        self.segment.copy_(segment)

    def table(self) -> torch.Tensor:
        return self.weight + self.value[:, None] * self.direction[self.segment]  # (V, D)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.table())  # (..., D)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.table())  # (..., V)


class TokenTransformer(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = TokenEmbedding(cfg.vocab_size, cfg.d_model)  # tied to the output
        self.patches = ImageEncoder(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)
        self.aux_head = nn.Linear(cfg.d_model, cfg.aux_dim) if cfg.aux_dim else None
        cos, sin = rope_tables(cfg.d_model // cfg.n_heads, cfg.max_seq_len, cfg.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2's scaled init of residual projections
            for proj in (block.attn.proj, block.mlp.down):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
        if cfg.film:  # zero: training starts from the unconditioned encoder
            nn.init.zeros_(self.patches.film.weight)
            nn.init.zeros_(self.patches.film.bias)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)

    def prefix_embeddings(self, text: torch.Tensor, frames: torch.Tensor,
                          state: torch.Tensor) -> torch.Tensor:
        """text (B, T) ids, frames (B, C, H, W, 3) uint8, state (B, Ds) ids incl. its
        begin/end markers and the trailing begin_actions -> (B, T + C*G*G + Ds, D)."""
        words = self.embed(text)  # (B, T, D)
        cond = words.mean(1) if self.cfg.film else None  # (B, D), pads included: fixed length
        return torch.cat([words, self.patches(frames, cond), self.embed(state)], dim=1)

    def forward(self, x: torch.Tensor, start: int = 0, caches: list | None = None,
                last_only: bool = False, logits_from: int = 0, hidden: bool = False
                ) -> tuple[torch.Tensor, list]:
        """x (B, S, D) embeddings at positions start..start+S-1 -> logits (B, S, V), caches.
        last_only: logits of the last position only, (B, 1, V) (decoding needs no more).
        logits_from: logits of positions logits_from.. only (training: the action segment).
        hidden: return the final normalised hidden states (B, S', D) instead of logits
        (training applies the vocabulary and auxiliary heads itself)."""
        S = x.shape[1]
        if start + S > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {start + S} exceeds max_seq_len {self.cfg.max_seq_len}")
        cos, sin = self.cos[start:start + S], self.sin[start:start + S]  # (S, hd/2)
        new_caches = []
        for i, block in enumerate(self.blocks):
            x, c = block(x, cos, sin, None if caches is None else caches[i])
            new_caches.append(c)
        if last_only:  # the vocabulary projection of a whole prefix is ~10% of a prefill
            x = x[:, -1:]
        elif logits_from:
            x = x[:, logits_from:]
        if hidden:
            return self.norm(x), new_caches  # (B, S', D)
        return self.embed.logits(self.norm(x)), new_caches  # (B, S, V)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
