"""Which written tokens one decoder call computes together: the slot layout that training's
forward pass and every decode engine share, so the two agree by construction.

After the prefix the policy writes W tokens: its plan (plan_dim ids, if any), begin_actions
(always given, after a plan) and the chunk's H * Da action ids, time-major. They are cut into
groups, each computed by one decoder call:
    action_block 1        one action token per group (autoregressive, checkpoints before it)
    action_block Da       one chunk step per group: its Da tokens together, steps in order
    action_block H * Da   the whole chunk (what `parallel_actions` was)
and the plan by PolicyConfig.plan_block (PLAN_BLOCKS): "token", one plan token per group;
"xyz", each position's three values together and the grasp turn alone (plan_targets' layout);
"whole", the whole plan as one group.

A token must condition on every real token of earlier groups and on none of its own group.
One causal sequence cannot give a slot both: a token that its own group must not see is the
token the next group must see. So each group first re-feeds the previous group's real tokens
but its last ("echo" slots: their logits are never read), then its prediction slots: the
previous group's last real token predicts the group's first token, and `action_query` slots
predict the rest (slot by slot the same id; the positions tell them apart):

    b = 1:     ... [a0] [a1] [a2] ...                         (autoregressive, unchanged)
    b = 2:     [BA q] [a0 | a1 q] [a2 | a3 q] ...             (a0 echoed, a1 predicts a2)
    b = H*Da:  [BA q q ... q]                                 (parallel_actions, unchanged)

Why this and not a block-causal attention mask (positions of a group seeing each other, fed
the previous group's tokens): the mask would have to reach every engine, as an input of the
ONNX graphs and a per-call pattern in the CUDA-graph capture, and could not give
parallel_actions' causal query chain exactly. Here the attention stays plainly causal, so the
transformer, the export and the training forward are unchanged, b = 1 and b = H * Da are the
old sequences token for token, and the price is (groups - 1) * (b - 1) echo slots (42 for
b = Da = 7, H = 8) of KV cache and training compute, not extra decoder calls.

A given token (a committed action under real-time chunking) feeds the query slot after it as
its real id, as parallel_actions did; its echo slot stays, so the sequence has one length
with or without a prefix (a training batch mixes rows with and without one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

QUERY = "action_query"  # the special id of every slot whose input is not yet written
PLAN_BLOCKS = ("token", "xyz", "whole")  # how the plan is cut into groups (module doc)


def allowed_blocks(n_actions: int) -> list[int]:
    """Action block sizes a chunk of n_actions tokens can be cut into evenly."""
    return [b for b in range(1, n_actions + 1) if n_actions % b == 0]


def check_blocks(chunk: int, action_dim: int, action_block: int) -> None:
    n = chunk * action_dim
    if action_block not in allowed_blocks(n):
        steps = [b for b in allowed_blocks(n) if b % action_dim == 0]
        raise ValueError(
            f"action_block {action_block} must divide the chunk's {chunk} x {action_dim} = {n} "
            f"action tokens: allowed {allowed_blocks(n)} (1: token by token; {action_dim}: one "
            f"chunk step per decoder call; whole steps: {steps}; {n}: the whole chunk at once)")


@dataclass(frozen=True)
class SlotLayout:
    """The decoded segment, one entry per slot (sequence position after the prefix's last id;
    slot 0 is that last id, begin_plan or begin_actions, fed by the prefill).

    src[s]: the written token whose real id is slot s's input (-1 for slot 0);
    query[s]: slot s is fed action_query instead, unless its src token is given;
    target[s]: the written token slot s's logits predict (-1: an echo slot, read by none).
    """

    src: tuple[int, ...]
    query: tuple[bool, ...]
    target: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.src)

    @property
    def n_written(self) -> int:
        return max(self.target) + 1

    def position(self) -> list[int]:
        """Per written token, the slot whose logits predict it."""
        where = {w: s for s, w in enumerate(self.target) if w >= 0}
        return [where[w] for w in range(self.n_written)]

    def sources(self) -> list[int]:
        """Per slot s < n - 1, the slot whose written id is fed after it (slot s + 1's input),
        -1 where that input is action_query."""
        pos = self.position()
        return [-1 if self.query[s + 1] else pos[self.src[s + 1]] for s in range(self.n - 1)]


def plan_block_name(value: str | bool) -> str:
    """A plan_block as this code names it: true/false (written before "xyz" existed, by
    config.json and train_config.json) meant the whole plan / token by token."""
    if isinstance(value, bool):
        return "whole" if value else "token"
    return value


def check_plan_block(plan_block: str, plan_dim: int) -> None:
    if plan_block not in PLAN_BLOCKS:
        raise ValueError(f"plan_block {plan_block!r} is not one of {list(PLAN_BLOCKS)}")
    if plan_block != "token" and not plan_dim:
        raise ValueError(f"plan_block {plan_block!r} decodes plan tokens in blocks, but "
                         f"plan_dim is 0 (no plan tokens)")
    if plan_block == "xyz" and plan_dim % 3 != 1:
        raise ValueError(f"plan_block 'xyz' cuts the plan into xyz triples and the grasp "
                         f"turn (policies.model.plan_targets), so plan_dim must be 3k + 1; "
                         f"got {plan_dim}")


def plan_groups(plan_dim: int, plan_block: str) -> list[tuple[int, int]]:
    """[start, stop) plan-token ranges of `plan_block` (PLAN_BLOCKS). "xyz" follows
    plan_targets: each object's xyz, the goal cube's and the goal plate's, then the turn.
    Values of one position are read together by the actions, and a decoder call has little
    to gain from seeing x before y; the positions stay in order, so the named cube's entry is
    still written after every object's (the copy plan_targets describes)."""
    check_plan_block(plan_block, plan_dim)
    if plan_block == "whole":
        return [(0, plan_dim)]
    if plan_block == "xyz":
        return [(w, w + 3) for w in range(0, plan_dim - 1, 3)] + [(plan_dim - 1, plan_dim)]
    return [(w, w + 1) for w in range(plan_dim)]


def groups(plan_dim: int, plan_block: str, n_actions: int, action_block: int
           ) -> list[tuple[int, int]]:
    """[start, stop) written-token ranges, one per decoder call's group (module doc)."""
    out = []
    if plan_dim:
        out += plan_groups(plan_dim, plan_block)
        out.append((plan_dim, plan_dim + 1))  # begin_actions: given, its own group
    first = plan_dim + 1 if plan_dim else 0
    out += [(first + s, first + s + action_block) for s in range(0, n_actions, action_block)]
    return out


def slot_layout(spans: list[tuple[int, int]]) -> SlotLayout:
    """The slots of consecutive groups `spans` (the first starting at written token 0)."""
    src, query, target = [-1], [False], [0]  # slot 0: the prefix's last id predicts token 0
    prev = None
    for start, stop in spans:
        if prev is not None:
            for w in range(prev[0], start - 1):  # echo: the previous group but its last
                src.append(w), query.append(False), target.append(-1)
            src.append(start - 1), query.append(False), target.append(start)
        for w in range(start, stop - 1):
            src.append(w), query.append(True), target.append(w + 1)
        prev = (start, stop)
    return SlotLayout(tuple(src), tuple(query), tuple(target))


class Schedule(NamedTuple):
    """What an engine decodes after the prefix (policies.inference.torch_engine), one position
    per slot of a SlotLayout."""

    n: int  # positions written
    lo: list[int]  # per position: the id range [lo, hi) it is picked in
    hi: list[int]
    forced: np.ndarray  # (B, n) ids given instead of picked, -1 elsewhere
    feed: np.ndarray  # (B, n) ids fed after a picked position instead of the pick, -1: the pick
    echo: tuple[int, ...]  # per position: an earlier position whose id is fed after it, or -1
    written: tuple[int, ...]  # per written token: its position (the rest are echo slots)

    def tokens(self, ids: np.ndarray) -> np.ndarray:
        """(B, n) decoded ids -> (B, W) the written tokens, in order."""
        return ids[:, list(self.written)]

    def inputs(self, ids: np.ndarray) -> np.ndarray:
        """(B, n) decoded ids -> (B, n - 1) what the decoder was fed after positions 0..n-2
        (the engines' precedence: echo, forced, feed, the position's own id)."""
        src = [m if m >= 0 else i for i, m in enumerate(self.echo[:-1])]
        own = np.where(self.forced >= 0, self.forced, np.where(self.feed >= 0, self.feed, ids))
        echoed = ids[:, src]
        return np.where(np.array(self.echo[:-1]) >= 0, echoed, own[:, :-1])


def schedule(layout: SlotLayout, lo: list[int], hi: list[int], given: np.ndarray,
             query_id: int, unread_id: int) -> Schedule:
    """The engine's schedule of `layout`: lo/hi per written token, `given` (B, W) ids of
    written tokens that are not picked (-1: picked); echo slots' outputs are `unread_id`
    (never read, never fed), query slots are fed query_id (the given id where there is one:
    the engine's forced wins over feed, as the training forward does)."""
    B, n, pos = len(given), layout.n, layout.position()
    forced = np.full((B, n), -1, np.int64)
    forced[:, [s for s in range(n) if layout.target[s] < 0]] = unread_id
    forced[:, pos] = given
    feed = np.full((B, n), -1, np.int64)
    sources = layout.sources()
    feed[:, [s for s, m in enumerate(sources) if m < 0]] = query_id
    echo = tuple(-1 if s == n - 1 or sources[s] in (-1, s) else sources[s] for s in range(n))
    los = [lo[w] if w >= 0 else 0 for w in layout.target]  # unread slots: forced, any range
    his = [hi[w] if w >= 0 else 1 for w in layout.target]
    return Schedule(n, los, his, forced, feed, echo, tuple(pos))


def slot_inputs(layout: SlotLayout, written: torch.Tensor, given: torch.Tensor,
                query_id: int) -> torch.Tensor:
    """Training's teacher-forced inputs of slots 1 .. n-1 (slot 0's is the prefix's last):
    written (B, W) real ids, given (B, W) bool: the tokens inference is given (a committed
    prefix), whose query slot is fed the real id, exactly as `schedule` has the engine do."""
    src = torch.tensor(layout.src[1:], device=written.device)  # (n - 1,)
    query = torch.tensor(layout.query[1:], device=written.device)  # (n - 1,)
    real = written[:, src]  # (B, n - 1)
    use_query = query[None, :] & ~given[:, src]  # (B, n - 1)
    return torch.where(use_query, torch.full_like(real, query_id), real)


def written_hidden(model: torch.nn.Module, layout: SlotLayout, x: torch.Tensor,
                   written: torch.Tensor, given: torch.Tensor, query_id: int) -> torch.Tensor:
    """(B, 1 + W, D) final hidden states of end_state, then of the slot predicting each of the
    W written ids (B, W) ([plan, begin_actions,] actions) teacher-forced after the prefix
    embeddings x (B, P, D); `given` (B, W): what inference is given (a committed prefix).

    The slots are `layout`'s, as every engine decodes them (autoregressive: every written id
    but the last); `model`: the TokenTransformer or its DistributedDataParallel wrapper.
    end_state feeds training's auxiliary head (not begin_actions: there the regression would
    crowd out the first action token, which that position alone predicts)."""
    core = model.module if hasattr(model, "module") else model
    P = x.shape[1]
    slots = slot_inputs(layout, written, given, query_id)  # (B, S - 1)
    h, _ = model(torch.cat([x, core.embed(slots)], dim=1), logits_from=P - 2,
                 hidden=True)  # (B, 1 + S, D): end_state, then slot s at 1 + s
    at = 1 + torch.tensor(layout.position(), device=x.device)  # (W,)
    return torch.cat([h[:, :1], h[:, at]], dim=1)
