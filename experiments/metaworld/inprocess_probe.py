"""Meta-World in-process, no worker: its scripted policy on MT10 and the step latency.

The alternative to the worker, measured (NOTE.md). Runs in a venv that has Meta-World, never
motoken's:

    .venv-metaworld/bin/python experiments/metaworld/inprocess_probe.py 10          # MuJoCo 3.3.0
    # a throwaway venv with MuJoCo 4: pip install mujoco==4.0.1 gymnasium==1.1.1 scipy imageio
    #   msgpack && pip install --no-deps metaworld==3.1.1
    /tmp/mw4/bin/python experiments/metaworld/inprocess_probe.py 10 --patch       # MuJoCo 4.0.1

argv[1]: goal variations per task (MT1 seed 42, variations 0..N-1, as the env's seeds pick
them). --patch: write MuJoCo 4's 12-number weld rows in reset_mocap_welds (Meta-World writes
11 and fails). No rendering. Prints one JSON line.
"""

import json
import sys
import time
import warnings

import metaworld
import mujoco
import numpy as np
from metaworld import policies

warnings.filterwarnings("ignore")
patch = "--patch" in sys.argv
if patch:
    from metaworld.sawyer_xyz_env import SawyerMocapBase

    def reset_mocap_welds(self):
        if self.model.nmocap > 0 and self.model.eq_data is not None:
            for i in range(self.model.eq_data.shape[0]):
                if self.model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:
                    row = np.zeros(self.model.eq_data.shape[1])
                    row[:11] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0]
                    self.model.eq_data[i] = row
    SawyerMocapBase.reset_mocap_welds = reset_mocap_welds

MT10 = ["reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close",
        "button-press-topdown", "peg-insert-side", "window-open", "window-close"]
n_var = int(sys.argv[1])
out, times, lengths = {}, [], {}
for task in MT10:
    name = f"{task}-v3"
    try:
        mt1 = metaworld.MT1(name, seed=42)
        env = mt1.train_classes[name]()
    except Exception as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
    pol = policies.ENV_POLICY_MAP[name]()
    ok = 0
    for k in range(n_var):
        env.set_task(mt1.train_tasks[k])
        obs, _ = env.reset()
        for t in range(500):  # noqa: B007 (t is read after the loop)
            a = pol.get_action(obs)
            t0 = time.perf_counter()
            obs, _, _, _, info = env.step(a)
            times.append(time.perf_counter() - t0)
            if info["success"]:
                ok += 1
                break
        lengths.setdefault(task, []).append(t + 1)
    out[task] = ok
    env.close()
print(json.dumps({"mujoco": mujoco.__version__, "patched": patch, "per_task": out,
                  "step_ms_p50": round(1000 * float(np.median(times)), 3), "steps": len(times),
                  "episode_steps": lengths}))
