"""Training-step cost of a longer instruction window: one optimizer step's forward+backward
(small model, FiLM, batch 32, 2 threads) at text_len 12, 48 and 128 on the same batch, timed
round-robin so the shared CPU's load hits each window alike. Prints one JSON object.

    PYTHONPATH=$PWD python experiments/generalist/window_cost.py DATASET
(DATASET: e.g. agent collect --env mujoco:pick_place --policy scripted --episodes 6
 --phrasings train --action-noise 0.01,0.05 --vcodec h264 --out DATASET)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from policies.training.config import TrainConfig
from policies.training.data import ChunkSampler, load_demos
from policies.training.train import AuxNormalizer, batch_loss, build_policy

WINDOWS = (12, 48, 128)


def main(data: Path, rounds: int = 8) -> None:
    torch.set_num_threads(2)
    demos = load_demos([data])
    runs = {}
    for L in WINDOWS:
        cfg = TrainConfig(model="small", film=True, text_len=L)
        torch.manual_seed(0)
        policy = build_policy(demos, cfg)
        model = policy.model.train()
        sampler = ChunkSampler(demos, policy.config.cameras, cfg.chunk, seed=0)
        batch = sampler.sample(32)
        aux = AuxNormalizer([d.env_state for d in demos], [d.state for d in demos],
                            policy.config.state_layout)
        runs[L] = (policy, model, batch, aux, cfg)
    times: dict[int, list[float]] = {L: [] for L in WINDOWS}
    for r in range(rounds + 2):
        for L, (policy, model, batch, aux, cfg) in runs.items():
            t = time.perf_counter()
            losses = batch_loss(policy, model, batch, torch.from_numpy(batch.frames),
                                torch.device("cpu"), cfg.label_sigma, aux)
            losses.total(cfg).backward()
            model.zero_grad(set_to_none=True)
            if r >= 2:  # two warm-up rounds
                times[L].append(time.perf_counter() - t)
    base = runs[WINDOWS[0]][1].cfg
    seq = {L: L + base.n_patches + runs[L][0].config.state_dim + 3 + runs[L][0].config.plan_dim
           + 1 + runs[L][0].config.chunk * runs[L][0].config.action_dim for L in WINDOWS}
    print(json.dumps({str(L): {"sequence_len": seq[L],
                               "step_s_min": round(min(times[L]), 3),
                               "step_s_median": round(float(np.median(times[L])), 3)}
                      for L in WINDOWS}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
