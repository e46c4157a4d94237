"""`metaworld:` envs: real Meta-World in its own venv (.venv-metaworld, `make metaworld`), a real
worker process, the real pipe. Tests that need the venv skip, saying so, where it is absent."""

import ast
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.metaworld import MT10, tasks_of
from envs.metaworld.client import WorkerError, WorkerProcess
from envs.metaworld.venv import PYTHON_ENV_VAR, WORKER, MetaWorldNotInstalledError, worker_python

try:
    worker_python()
    NO_VENV = None
except MetaWorldNotInstalledError as e:
    NO_VENV = str(e)
needs_venv = pytest.mark.skipif(NO_VENV is not None, reason=f"no Meta-World venv: {NO_VENV}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


# -- without the venv -------------------------------------------------------------------------

@pytest.mark.parametrize("typo, meant", [("pick-plcae", "pick-place"),
                                         ("pick-place-v3", "pick-place"), ("mt5", "mt50")])
def test_bad_task_names_get_did_you_mean(typo, meant):
    with pytest.raises(envs.UnknownEnvError, match=f"did you mean 'metaworld:{meant}'"):
        envs.resolve(f"metaworld:{typo}")


def test_a_misspelt_backend_gets_the_metaworld_spec():
    with pytest.raises(envs.UnknownEnvError, match="did you mean 'metaworld:pick-place'"):
        envs.resolve("metaworl:pick-place")


def test_sets_cycle_their_tasks_and_cover_their_members():
    assert tasks_of("mt10") == MT10 and len(tasks_of("mt50")) == 50
    assert envs.resolve("metaworld:mt10").kwargs == {"task": "mt10"}
    assert envs.covered_by("metaworld:push", ["metaworld:mt10"])
    assert not envs.covered_by("metaworld:mt50", ["metaworld:mt10"])
    assert envs.covered_by("metaworld:mt10", [f"metaworld:{t}" for t in MT10])


def test_a_missing_venv_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(PYTHON_ENV_VAR, str(tmp_path / "nope" / "python"))
    with pytest.raises(MetaWorldNotInstalledError, match=PYTHON_ENV_VAR):
        envs.make("metaworld:reach")


def test_the_worker_imports_no_motoken_package():
    """It runs under Meta-World's interpreter, where motoken's packages (MuJoCo 4) do not."""
    tree = ast.parse(WORKER.read_text())
    top = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
           for a in n.names}
    top |= {n.module.split(".")[0] for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module}
    assert top - set(sys.stdlib_module_names) <= {"numpy", "msgpack", "metaworld", "mujoco"}


def test_a_hung_worker_is_an_error_not_a_hang(tmp_path):
    script = tmp_path / "silent.py"
    script.write_text("import time\ntime.sleep(60)\n")
    t0 = time.monotonic()
    with pytest.raises(WorkerError, match="no reply to 'hello' within 1 s; it was killed"):
        WorkerProcess(Path(sys.executable), script, start_timeout_s=1.0)
    assert time.monotonic() - t0 < 10


def test_a_worker_that_dies_at_start_says_why(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import sys\nsys.exit('cannot import metaworld: no module')\n")
    with pytest.raises(WorkerError, match=r"(?s)died .*exit 1.*cannot import metaworld"):
        WorkerProcess(Path(sys.executable), script)


# -- with the venv -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reach():
    env = envs.make("metaworld:reach")
    yield env
    env.close()


@needs_venv
def test_check_env_and_the_observation_contract(reach):
    u = reach.unwrapped
    check_env(u, skip_render_check=True)
    obs, info = reach.reset(seed=5)
    assert set(obs["images"]) == {"corner2", "gripperPOV"}
    assert all(im.shape == (128, 128, 3) and im.dtype == np.uint8
               for im in obs["images"].values())
    assert obs["instruction"] == "reach a goal position" and info["task"] == "reach"
    assert u.state_layout.joint_names == tuple(f"right_j{i}" for i in range(7))
    assert obs["state"].shape == (u.state_layout.dim,) and obs["state"].dtype == np.float32
    assert u.control_hz == 80.0 and reach.spec.max_episode_steps == 500


@needs_venv
def test_the_action_map_is_exact_both_ways(reach):
    u = reach.unwrapped
    mw = np.array([0.5, -1.0, 0.25, -0.6])
    ours = u.from_metaworld(mw)
    np.testing.assert_allclose(ours[:3], mw[:3] * 0.01, atol=1e-9)
    np.testing.assert_array_equal(ours[3:6], 0.0)
    np.testing.assert_allclose(u.to_metaworld(ours), mw, atol=1e-6)
    reach.reset(seed=0)
    _, _, _, _, info = reach.step(np.array([0.5, 0, 0, 0.3, 0.3, 0.3, 2.0], np.float32))
    np.testing.assert_allclose(info["applied_action"], [0.01, 0, 0, 0, 0, 0, 1.0])


@needs_venv
def test_metaworlds_scripted_policy_succeeds_through_our_env(reach):
    from agent.runtime import ChunkBroker, run_episode
    from agent.timing import StageTimer
    from policies.scripted import ScriptedExpert

    r = run_episode(reach, ChunkBroker(ScriptedExpert()), seed=3, timer=StageTimer())
    assert r.success and r.task == "reach" and r.steps < 500


@needs_venv
def test_close_ends_the_worker(reach):  # the module's env: keep this its last test
    pid = reach.unwrapped.worker.pid
    assert _alive(pid)
    reach.close()
    assert _gone_within(pid, 5.0)


@needs_venv
def test_a_crashed_worker_is_a_clear_error():
    env = envs.make("metaworld:reach", cameras=("gripperPOV",), image_size=32)
    env.reset(seed=0)
    os.kill(env.unwrapped.worker.pid, signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(WorkerError, match=r"died .*killed by signal 9"):
        env.step(np.zeros(7, np.float32))
    assert time.monotonic() - t0 < 10
    env.close()


@needs_venv
def test_a_client_killed_outright_leaves_no_orphan_worker():
    code = textwrap.dedent("""
        import os, sys
        import envs
        env = envs.make("metaworld:reach", cameras=("gripperPOV",), image_size=32)
        print(env.unwrapped.worker.pid, flush=True)
        os._exit(0)  # no close, no finalizers: as a kill -9 would
    """)
    root = Path(envs.__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(root)})
    pid = int(out.stdout.strip().splitlines()[-1])
    assert _gone_within(pid, 10.0), f"worker {pid} outlived its client"


@needs_venv
@pytest.mark.slow
def test_mt10_cycles_its_tasks_over_seeds():
    env = envs.make("metaworld:mt10", cameras=("gripperPOV",), image_size=32)
    for seed in (0, 1, 12):
        obs, info = env.reset(seed=seed)
        assert info["task"] == MT10[seed % 10]
        assert obs["instruction"] == envs.metaworld.DESCRIPTIONS[MT10[seed % 10]]
    env.close()


@needs_venv
@pytest.mark.slow
def test_random_goals_follow_the_seed():
    env = envs.make("metaworld:reach", cameras=("gripperPOV",), image_size=32, goals="random")
    goal = [env.reset(seed=s)[1]["privileged"]["metaworld_obs"][-3:].copy() for s in (1, 1, 2)]
    np.testing.assert_array_equal(goal[0], goal[1])
    assert not np.allclose(goal[0], goal[2])
    env.close()
