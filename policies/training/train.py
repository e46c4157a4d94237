"""Training the token policy: fit codecs, then next-token prediction on action tokens.

AdamW with linear warm-up and a cosine decay; random-shift image augmentation (DrQ), which
is what keeps a small behaviour-cloning policy from memorising pixel positions. Runs on CPU,
on one GPU (bf16 autocast), or on several under `torchrun` (DistributedDataParallel; each
rank samples its own batches, rank 0 writes). With a video head (policies.video.train_head) its
loss joins the action loss in the same step; that runs in one process only.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from action_codec.absent import WithAbsent
from action_codec.binning import BinningCodec, BinningConfig
from action_codec.vocab import DEFAULT_SPECIALS, VocabLayout, VocabSizes
from policies.model.blocks import QUERY, written_hidden
from policies.model.checkpoint import delay_tokens
from policies.model.plan_targets import AuxNormalizer, aux_dim, plan_targets
from policies.model.text import InstructionTokenizer
from policies.model.token_policy import PolicyConfig, TokenPolicy
from policies.model.transformer import CONFIGS, TokenTransformer
from policies.training import mixed
from policies.training.config import TrainConfig
from policies.training.data import (
    Batch,
    ChunkSampler,
    DemoEpisode,
    combine_weights,
    demo_layouts,
    demo_robots,
    demo_sources,
    env_balance_weights,
    episode_layouts,
    intervention_weights,
    stale_prefix,
)
from policies.training.losses import masked_mse, plan_ce, smoothed_ce
from policies.training.wording import add_word_noise, object_words

if TYPE_CHECKING:
    from policies.video.head import VideoLoss
    from policies.video.train_head import VideoTraining

#: (trunk, (B, S, D) [prefix + plan + whole chunk] embeddings, batch) -> the video loss.
VideoLossFn = Callable[[torch.nn.Module, torch.Tensor, Batch], "VideoLoss"]


def build_policy(demos: list[DemoEpisode], cfg: TrainConfig,
                 cameras: tuple[str, ...] | None = None) -> TokenPolicy:
    """Fit the codecs on the demonstrations and build an untrained policy around them; it
    reads and writes the episodes' state and action layouts (their dataset's names). Robots
    with other states make a multi-robot policy (demo_robots), tasks with other objects a plan
    over the union of their objects (--no-plan-objects: of the named object and target only;
    policies.training.mixed)."""
    cameras = tuple(demos[0].frames) if cameras is None else cameras  # load_demos': the data's
    robots = demo_robots(demos)  # None: one state layout, read as it is
    trained_on, trained_robots = demo_sources(demos)
    union = mixed.union_objects(demos) if cfg.plan_objects and cfg.sim_truth else None
    demos = mixed.as_policy_reads(demos, robots, union)
    state_layout, action_layout = demo_layouts(demos)  # a multi-robot policy's: the shared
    states = np.concatenate([d.state for d in demos]).astype(np.float32)
    actions = np.concatenate([d.action for d in demos]).astype(np.float32)
    # Actions: quantile bins. The expert's actions pile up at the step limits (+-0.05 m,
    # +-0.3 rad) and at gripper 0/1; quantile codebooks decode those point masses exactly,
    # where 1st/99th-percentile uniform bins clip the rare full-speed turns (bench/codec.py).
    action_codec = BinningCodec(BinningConfig(strategy="quantile", n_bins=cfg.n_bins)).fit(actions)
    state_codec = BinningCodec(BinningConfig(strategy="uniform", n_bins=cfg.n_bins))
    state_codec = (state_codec.fit(states) if robots is None  # else: absent slots left out
                   else state_codec.fit_columns(mixed.fit_columns_present(states)))
    text = InstructionTokenizer.train(sorted({d.task for d in demos}), cfg.text_vocab)
    env_dims = {None if d.env_state is None or not cfg.sim_truth else d.env_state.shape[1]
                for d in demos}
    env = env_dims.pop() if len(env_dims) == 1 and None not in env_dims else None
    plan_codec = None
    if env is not None and cfg.plan_weight > 0:
        targets = plan_targets(np.concatenate([d.env_state for d in demos]), states,
                               state_layout, objects=cfg.plan_objects)
        # Uniform bins (0.5-99.5th percentile): every bin the same few mm wherever the tool is;
        # quantile bins would spend them on the held-cube point mass at offset zero.
        plan_codec = BinningCodec(BinningConfig(strategy="uniform", n_bins=cfg.n_bins,
                                                percentiles=(0.5, 99.5)))
        plan_codec = (plan_codec.fit(targets) if union is None else  # absent objects left out
                      WithAbsent(plan_codec.fit_columns(mixed.fit_columns_present(targets))))
    action_block, plan_block = cfg.blocks
    if plan_block != "token" and plan_codec is None:
        raise ValueError(f"--plan-block {plan_block} decodes plan tokens in blocks, but these "
                         "datasets give no plan (no observation.environment_state)")
    specials = DEFAULT_SPECIALS + ((QUERY,) if action_block > 1 or plan_block != "token" else ())
    specials += () if robots is None else robots.specials
    specials += delay_tokens(cfg.delay_max if cfg.delay_token else 0)
    layout = VocabLayout(VocabSizes(text=text.vocab_size, action=action_codec.vocab_size,
                                    state=state_codec.vocab_size, image=0,
                                    plan=0 if plan_codec is None else plan_codec.vocab_size,
                                    specials=specials))
    size = demos[0].frames[cameras[0]].shape[1]
    mcfg = CONFIGS[cfg.model]
    aux = aux_dim(env) if cfg.aux_weight > 0 and env is not None else 0
    mcfg = type(mcfg)(**{**mcfg.to_dict(), "vocab_size": layout.total_size,
                         "n_cameras": len(cameras), "image_size": size, "aux_dim": aux,
                         "film": cfg.film or mcfg.film})
    pcfg = PolicyConfig(cameras=cameras, state_dim=states.shape[1],
                        action_dim=actions.shape[1], state_names=state_layout.names,
                        action_names=action_layout.names, chunk=cfg.chunk, execute=cfg.execute,
                        text_len=cfg.text_len,
                        plan_dim=0 if plan_codec is None else targets.shape[1],
                        plan_objects=plan_codec is not None and cfg.plan_objects,
                        plan_object_names=union,
                        action_block=action_block, plan_block=plan_block,
                        trained_on=trained_on, trained_robots=trained_robots,
                        robot_states=None if robots is None else robots.to_names(),
                        delay_tokens=cfg.delay_max if cfg.delay_token else 0)
    return TokenPolicy(TokenTransformer(mcfg), pcfg, layout, state_codec, action_codec, text,
                       plan_codec)


def check_delay_tokens(policy: TokenPolicy, cfg: TrainConfig) -> None:
    """Raise ValueError unless `policy` can be told every delay `cfg` draws. A policy from
    --init/--resume keeps its own vocabulary; with no delay tokens, --delay-token would be
    silently ignored."""
    told = cfg.delay_token or policy.config.delay_tokens > 0
    if told and cfg.delay_max > policy.config.delay_tokens:
        raise ValueError(f"--delay-max {cfg.delay_max} with delay tokens needs delay_0.."
                         f"delay_{cfg.delay_max}; this policy has "
                         f"{policy.config.delay_tokens or 'none'} (train a new one)")


def add_provenance(policy: TokenPolicy, demos: list[DemoEpisode]) -> None:
    """Add the demos' env specs and robot types to what a policy (fine-tuned or resumed) was
    trained on; unknown on either side stays unknown (policies.model.checkpoint.PolicyConfig)."""
    envs, robots = demo_sources(demos)
    cfg = policy.config

    def union(old: tuple[str, ...] | None, new: tuple[str, ...] | None
              ) -> tuple[str, ...] | None:
        return None if old is None or new is None else tuple(sorted({*old, *new}))

    policy.config = replace(cfg, trained_on=union(cfg.trained_on, envs),
                            trained_robots=union(cfg.trained_robots, robots))


def random_shift(frames: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """(B, C, H, W, 3) uint8 -> float frames shifted by up to `pad` px (edge-replicated)."""
    B, C, H, W, _ = frames.shape
    x = frames.reshape(B * C, H, W, 3).permute(0, 3, 1, 2).float()
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2, B * C), generator=gen)
    out = torch.stack([x[i, :, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(B * C)])
    return out.permute(0, 2, 3, 1).reshape(B, C, H, W, 3)


@dataclass
class Losses:
    action: torch.Tensor  # mean cross-entropy of the action tokens
    value: torch.Tensor  # mean |expected bin value - target| of the action tokens, half ranges
    aux: torch.Tensor | None  # mean squared error of the standardised object poses
    plan: torch.Tensor | None = None  # mean cross-entropy of the plan tokens
    video: VideoLoss | None = None  # the video head's (its weights are in its own config)

    def total(self, cfg: TrainConfig) -> torch.Tensor:
        out = self.action + cfg.value_weight * self.value
        if self.plan is not None:
            out = out + cfg.plan_weight * self.plan
        if self.video is not None:
            out = out + self.video.total
        return out if self.aux is None else out + cfg.aux_weight * self.aux


def bin_values(policy: TokenPolicy, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(Da, A) value each action bin decodes to, and (Da,) each dimension's half range."""
    c = torch.as_tensor(policy.action_codec.centres, dtype=torch.float32, device=device)
    return c, ((c.max(1).values - c.min(1).values) / 2).clamp_min(1e-6)


def batch_loss(policy: TokenPolicy, model: torch.nn.Module, batch: Batch,
               frames: torch.Tensor, device: torch.device, label_sigma: float = 0.0,
               aux_norm: AuxNormalizer | None = None, video: VideoLossFn | None = None
               ) -> Losses:
    """Mean cross-entropy of the action tokens given the prefix, padded steps masked; and,
    with `aux_norm` and a model with an auxiliary head, the object-pose regression read at
    end_state (the last position before the action segment that no token loss uses).

    The softmax is over the action segment (decoding is constrained to it), smoothed over
    neighbouring bins with label_sigma (smoothed_ce). A policy with plan tokens is teacher-forced
    on the true plan (from the environment state) and also trained to write it. With `video`
    the video head reads the same embeddings, with the chunk's last action id included.
    """
    text = torch.from_numpy(policy.text_ids(batch.instructions)).to(device)
    delays = batch.delays if policy.config.delay_tokens else None  # else: not told (ahead7)
    state = torch.from_numpy(policy.state_ids(batch.state, batch.robots, delays)).to(device)
    act = torch.from_numpy(policy.action_ids(batch.actions)).to(device)  # (B, n) targets
    act_in = act if batch.input_actions is None else (  # the decoder's inputs (stale_prefix)
        torch.from_numpy(policy.action_ids(batch.input_actions)).to(device))
    core = model.module if hasattr(model, "module") else model
    x = core.prefix_embeddings(text, frames.to(device), state)  # (B, P, D)
    Dp = policy.config.plan_dim
    head = Dp + 1 if Dp else 0  # written tokens before the actions: the plan, begin_actions
    written = act_in  # (B, W): every token the policy writes, as the decoder is fed them
    plan = None
    if Dp:
        if batch.env_state is None:
            raise ValueError("this policy writes plan tokens, which are trained from "
                             "observation.environment_state; the batch has none")
        plan = torch.from_numpy(policy.plan_ids(plan_targets(
            batch.env_state, batch.state, policy.config.state_layout, policy.config.plan_objects)))
        plan = plan.to(device)  # (B, Dp + 1): the plan, then begin_actions
        written = torch.cat([plan, written], dim=1)
    k = 0 if batch.prefix_steps is None else batch.prefix_steps * policy.config.action_dim
    cols = torch.arange(written.shape[1], device=device)[None, :]  # (1, W)
    given = (cols >= head) & (cols < head + torch.as_tensor(k, device=device).reshape(-1, 1))
    query_id = policy.layout.special_id(QUERY) if policy.config.blocks else -1
    h = written_hidden(model, policy.slot_layout(), x, written, given, query_id)  # (B, 1+W, D)
    plan_loss = None
    if Dp:
        r = policy.layout.ranges["plan"]
        logp = core.embed.logits(h[:, 1:1 + Dp])[..., r.start:r.stop].float().log_softmax(-1)
        absent = policy.plan_absent_id  # a union plan's (policies.training.losses.plan_ce)
        plan_loss = plan_ce(logp, plan[:, :Dp] - r.start, label_sigma,
                            None if absent is None else absent - r.start)
    pred = core.embed.logits(h[:, 1 + head:])  # (B, n, V)
    lo, hi = policy.layout.ranges["action"].start, policy.layout.ranges["action"].stop
    logp = pred[..., lo:hi].float().log_softmax(-1)  # (B, n, A)
    target = act - lo  # (B, n) local bins
    ce = smoothed_ce(logp, target, label_sigma)  # (B, n)
    # Expected value under the softmax against the target bin's value. Cross-entropy alone
    # treats "wrong side of zero" and "one bin off" alike wherever the smoothing does not
    # reach; this term pulls probability mass towards the right value from the first step
    # (issue 5: after 1000 steps of CE only, the first action ignored where the cube was).
    Da = policy.config.action_dim
    values, half_range = bin_values(policy, device)  # (Da, A), (Da,)
    dim = torch.arange(act.shape[1], device=device) % Da  # (n,) time-major: dim of each token
    vals = values[dim]  # (n, A)
    expected = (logp.exp() * vals).sum(-1)  # (B, n)
    want = vals.gather(-1, target.T).T  # (B, n)
    value_err = (expected - want).abs() / half_range[dim]  # (B, n)
    scored = ~batch.pad
    if batch.prefix_steps is not None:  # a forced prefix is not the model's to predict
        scored = scored & (np.arange(scored.shape[1])[None, :] >= batch.prefix_steps[:, None])
    keep = torch.from_numpy(scored).to(device)
    keep = keep.repeat_interleave(Da, dim=1).float()  # (B, n)
    aux = None
    if aux_norm is not None and core.aux_head is not None and batch.env_state is not None:
        want = torch.from_numpy(aux_norm(batch.env_state, batch.state)).to(device)  # (B, aux_dim)
        aux = masked_mse(core.aux_head(h[:, 0]).float(), want)  # absent objects left out
    # The video head reads [prefix + written ids] (the real chunk, as policies.video.imagine
    # gives it), whatever blocks the policy decodes in.
    x_full = torch.cat([x, core.embed(written)], dim=1) if video is not None else None
    return Losses((ce * keep).sum() / keep.sum(), (value_err * keep).sum() / keep.sum(), aux,
                  plan_loss, None if video is None else video(core, x_full, batch))


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # norms: decaying them hurts
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=(0.9, 0.95))


@dataclass
class TrainLog:
    step: int
    loss: float
    lr: float
    samples_per_s: float
    eval_success: float | None = None
    aux_loss: float | None = None
    value_loss: float | None = None
    plan_loss: float | None = None
    video_loss: float | None = None  # weighted total; the parts below
    video_codes_loss: float | None = None
    video_state_loss: float | None = None
    video_pixel_loss: float | None = None  # log-MSE of the rendered frame, with a pixel weight


EvalFn = Callable[[TokenPolicy], float]


def train(policy: TokenPolicy, demos: list[DemoEpisode], out: Path, cfg: TrainConfig,
          start_step: int = 0, optimizer_state: dict | None = None,
          on_log: Callable[[TrainLog], None] | None = None, eval_fn: EvalFn | None = None,
          eval_every: int = 0, video: VideoTraining | None = None) -> list[TrainLog]:
    """Train in place, checkpointing to `out` (rank 0 only under torchrun); with `video`, the
    video head too (saved in out/video_head/ at every checkpoint)."""
    # A resumed or fine-tuned policy must read the episodes' state as it was trained to.
    for state_layout, action_layout in episode_layouts(demos):
        policy.check_layouts(state_layout, action_layout, "the training episodes")
    demos = mixed.as_policy_reads(demos, policy.config.robots, policy.config.plan_object_names)
    mixed.check_targets_fit(policy.config, policy.model.cfg.aux_dim, demos)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if video is not None and world > 1:
        # The head runs the trunk's blocks outside DDP's forward, so DDP would not reduce
        # those gradients consistently; refusing is better than ranks drifting apart.
        raise ValueError(f"joint video training runs in one process, got WORLD_SIZE {world}; "
                         f"run `agent train --tokenizer` without torchrun")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
                          if torch.cuda.is_available() else "cpu")
    model = policy.model.to(device).train()
    ddp = model
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    params: torch.nn.Module = model
    if video is not None:
        params = torch.nn.ModuleList([model, video.head.to(device).train()])
    opt = make_optimizer(params, cfg)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    check_delay_tokens(policy, cfg)
    sampler = ChunkSampler(demos, policy.config.cameras, cfg.chunk, seed=cfg.seed + rank,
                           weights=combine_weights(
                               intervention_weights(demos, cfg.intervention_weight,
                                                    cfg.only_interventions),
                               env_balance_weights(demos) if cfg.balance_envs else None),
                           human_labels_only=cfg.only_interventions)
    gen = torch.Generator().manual_seed(cfg.seed + rank)
    prefix_rng = np.random.default_rng(cfg.seed + rank)
    keep, word_rng = None, np.random.default_rng([cfg.seed + rank, 1])
    if cfg.text_noise > 0:
        keep = object_words([d.env_state_names for d in demos])
    aux_norm = (AuxNormalizer([d.env_state for d in demos], [d.state for d in demos],
                              policy.config.state_layout)
                if model.aux_head is not None else None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    logs: list[TrainLog] = []
    t_last, n_since = time.perf_counter(), 0
    for step in range(start_step, cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = sampler.sample(cfg.batch_size, cfg.delay_max)
        if keep is not None:
            batch = replace(batch, instructions=add_word_noise(
                batch.instructions, keep, cfg.text_noise, word_rng,
                lambda t: len(policy.text_tokenizer.encode(t)) <= policy.config.text_len))
        if cfg.stale_prefix > 0 and cfg.stale_prefix_lag > 0:
            lags = prefix_rng.integers(1, cfg.stale_prefix_lag + 1, size=len(batch.actions))
            batch = stale_prefix(batch, prefix_rng, cfg.stale_prefix, cfg.stale_prefix_steps,
                                 noise=(0.0, 0.0), lagged=sampler.lagged(batch.index, lags))
        elif cfg.stale_prefix > 0:
            batch = stale_prefix(batch, prefix_rng, cfg.stale_prefix, cfg.stale_prefix_steps)
        frames = random_shift(torch.from_numpy(batch.frames), cfg.shift_px, gen)
        with autocast:
            losses = batch_loss(policy, ddp, batch, frames, device, cfg.label_sigma, aux_norm,
                                None if video is None else video.loss)
        opt.zero_grad(set_to_none=True)
        losses.total(cfg).backward()
        torch.nn.utils.clip_grad_norm_(params.parameters(), 1.0)
        opt.step()
        n_since += cfg.batch_size * world
        last = step + 1 == cfg.steps
        if rank == 0 and ((step + 1) % 25 == 0 or step == start_step or last):
            now = time.perf_counter()
            log = TrainLog(step + 1, losses.action.item(), lr_at(step, cfg),
                           n_since / (now - t_last),
                           value_loss=losses.value.item(),
                           aux_loss=None if losses.aux is None else losses.aux.item(),
                           plan_loss=None if losses.plan is None else losses.plan.item())
            if losses.video is not None:
                log.video_loss = losses.video.total.item()
                log.video_codes_loss = losses.video.codes.item()
                log.video_state_loss = losses.video.state.item()
                if losses.video.pixels is not None:
                    log.video_pixel_loss = losses.video.pixels.item()
            t_last, n_since = now, 0
            if eval_fn is not None and eval_every and ((step + 1) % eval_every == 0 or last):
                model.eval()
                log.eval_success = eval_fn(policy)
                model.train()
            logs.append(log)
            if on_log:
                on_log(log)
        if rank == 0 and ((step + 1) % cfg.checkpoint_every == 0 or last):
            if video is not None:
                video.save(out)  # before save_run: its step marker vouches for both
            save_run(policy, opt, out, step + 1, cfg)
    model.eval()
    if video is not None:
        video.head.eval()
    return logs


def save_run(policy: TokenPolicy, opt: torch.optim.Optimizer, out: Path, step: int,
             cfg: TrainConfig) -> None:
    """Checkpoint atomically enough to resume: weights first, then the step marker."""
    policy.save(out)
    torch.save({"optimizer": opt.state_dict(), "step": step, "train": asdict(cfg)},
               out / "train_state.pt.tmp")
    os.replace(out / "train_state.pt.tmp", out / "train_state.pt")


def load_run(out: Path) -> tuple[TokenPolicy, dict]:
    """The policy and training state saved by `save_run`, for --resume."""
    state = torch.load(out / "train_state.pt", map_location="cpu", weights_only=True)
    return TokenPolicy.load(out), state


def write_metrics(out: Path, logs: list[TrainLog]) -> None:
    with open(out / "metrics.jsonl", "a") as f:
        for log in logs:
            f.write(json.dumps(asdict(log)) + "\n")
