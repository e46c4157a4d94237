"""Meta-World (Farama-Foundation/Metaworld 3.1.1) beside MuJoCo 4: `metaworld:TASK` envs.

    envs.make("metaworld:pick-place")   # one task; "metaworld:mt10", "metaworld:mt50",
                                        # "metaworld:easy" ... cycle their tasks over seeds

How the two coexist: Meta-World 3.1.1 pins mujoco==3.3.0 and motoken runs MuJoCo 4, so
Meta-World runs unmodified in its own venv (`.venv-metaworld`, `make metaworld`, pinned in
requirements.txt) as a worker process (worker.py) that speaks msgpack frames over a pipe;
`MetaWorldEnv` (env.py) is its Gymnasium client. Why not import Meta-World here with a patch:

- Fidelity: under MuJoCo 4 Meta-World does not even build an env (reset_mocap_welds writes 11
  numbers into eq_data rows that have 12 in MuJoCo 4); past that patch the physics would be
  MuJoCo 4's, not the MuJoCo 3.x every published Meta-World number was measured on. The
  worker runs exactly the package the benchmark publishes, on its pinned MuJoCo.
- Install weight: the venv is ~370 MB and 20-55 s to build here, only for those who ask
  (`make metaworld`); motoken's own install is untouched and never downgraded.
- Cost: a pipe round trip per step; measured in experiments/metaworld/NOTE.md.

No pip extra (`motoken[metaworld]`) exists on purpose: an extra installs into motoken's venv,
and that is the one place Meta-World's MuJoCo must not go.
"""

from __future__ import annotations

from envs.metaworld.tasks import DESCRIPTIONS, DIFFICULTY, MT10, SETS, TASKS, tasks_of

__all__ = ["DESCRIPTIONS", "DIFFICULTY", "MT10", "SETS", "TASKS", "tasks_of"]
