"""Does a policy trained with `--delay-max` fit its rows at each delay, offline?

    MUJOCO_GL=egl .venv/bin/python experiments/realtime/delay_loss.py DATASET RUN [RUN ...] \
        [--delays 0,1,3,5,7] [--rows 256] [--episodes 80]

The same (episode, frame) rows of DATASET, shifted by each delay d as `agent train --delay-max`
shifts them (ChunkSampler.gather: the frame at t, the state rolled through d actions, targets
from t + d), scored by each RUN's own action loss (policies.training.train.batch_loss, no
augmentation). A policy with delay tokens is told d; one without reads the rolled state only.
Last line JSON: the mean action cross-entropy per run and delay.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from policies.model.token_policy import TokenPolicy
from policies.training.data import ChunkSampler, load_demos
from policies.training.train import batch_loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset", type=Path)
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--delays", default="0,1,3,5,7")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--episodes", type=int, default=80, help="of the dataset's first")
    args = p.parse_args()
    torch.set_num_threads(1)
    delays = [int(d) for d in args.delays.split(",")]
    demos = load_demos([args.dataset])[: args.episodes]
    out: dict[str, dict[str, float]] = {}
    for run in args.runs:
        policy = TokenPolicy.load(run)
        policy.model.eval()
        sampler = ChunkSampler(demos, policy.config.cameras, policy.config.chunk, seed=0)
        rows = sampler.index[np.random.default_rng(0).choice(len(sampler.index), args.rows,
                                                             replace=False)]
        out[str(run)] = {}
        for d in delays:
            losses = []
            for chunk in np.array_split(rows, max(1, len(rows) // 32)):
                batch = sampler.gather(chunk, np.full(len(chunk), d))
                if not policy.config.delay_tokens:
                    batch = type(batch)(**{**vars(batch), "delays": None})
                with torch.no_grad():
                    loss = batch_loss(policy, policy.model, batch,
                                      torch.from_numpy(batch.frames), torch.device("cpu"))
                losses.append(float(loss.action) * len(chunk))
            out[str(run)][str(d)] = round(sum(losses) / len(rows), 4)
            print(run, d, out[str(run)][str(d)], flush=True)
    print(json.dumps({"dataset": str(args.dataset), "rows": args.rows, "delays": delays,
                      "action_loss": out}))


if __name__ == "__main__":
    main()
