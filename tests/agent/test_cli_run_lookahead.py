"""`agent run --lookahead K`: plan-based goal, choosing a chunk, errors, side-by-side videos."""

import json
import shutil
import subprocess
import sys

import av
import numpy as np
import pytest

import envs
from agent.cli import main
from agent.episode_video import PredictionVideo
from agent.execution import SyncBroker
from agent.lookahead_agent import LookaheadPolicy, plan_goal, robot_spec
from agent.runtime import run_episode
from agent.timing import StageTimer
from envs.features import StateLayout
from envs.types import Observation
from policies.video.imagine import FuturePredictor, load_imagination

ENV = "mujoco:pick_place"


@pytest.fixture(scope="module")
def robot():
    env = envs.make(ENV)
    yield robot_spec(env)
    env.close()


@pytest.fixture(scope="module")
def parts(video_run):
    policy, head, tok = load_imagination(video_run["run"])
    return policy, FuturePredictor(policy, head, tok)


def _state(robot, ee, opening):
    mid = [(lo + hi) / 2 for lo, hi in zip(robot.joint_lower, robot.joint_upper, strict=True)]
    return np.array([*mid, *ee, 0.0, 1.0, 0.0, 0.0, opening], np.float32)


def _plan(plan_dim, cube, plate):
    plan = np.zeros(plan_dim, np.float32)
    # policies.model.plan_targets.PLAN_GOAL: cube, plate, turn
    plan[-7:-4], plan[-4:-1] = cube, plate
    return plan


def test_goal_is_the_cube_until_it_is_held_then_the_plate(robot):
    layout, top = StateLayout.for_robot(robot), robot.max_gripper_opening
    ee = np.array([0.4, 0.0, 0.2])
    plan = _plan(22, cube=[0.1, 0.0, -0.15], plate=[0.0, 0.2, -0.1])
    np.testing.assert_allclose(plan_goal(_state(robot, ee, top), plan, layout, top),
                               [0.5, 0.0, 0.05], atol=1e-6)
    # Fingers closed but the cube 10 cm away: a missed grasp, still going for the cube.
    np.testing.assert_allclose(plan_goal(_state(robot, ee, 0.0), plan, layout, top)[0], 0.5,
                               atol=1e-6)
    held = _plan(22, cube=[0.0, 0.01, 0.0], plate=[0.0, 0.2, -0.1])
    np.testing.assert_allclose(plan_goal(_state(robot, ee, 0.5 * top), held, layout, top),
                               [0.4, 0.2, 0.1], atol=1e-6)
    # The plan says the cube is at the tool, but the fingers closed all the way on nothing.
    np.testing.assert_allclose(plan_goal(_state(robot, ee, 0.0), held, layout, top),
                               [0.4, 0.01, 0.2], atol=1e-6)


def test_lookahead_executes_the_candidate_predicted_nearest_the_plan_goal(parts, robot,
                                                                          video_run):
    policy, predictor = parts
    look = LookaheadPolicy(policy, predictor, robot, k=3)
    d = video_run["demos"][0]
    obs = Observation({c: d.frames[c][0] for c in policy.config.cameras}, d.state[0], d.task)
    ee = obs.state[StateLayout.for_robot(robot).ee_pos].astype(np.float64)
    goal = ee + [0.1, 0.05, -0.05]  # the constructed plan's cube offset; the gripper is open
    states = np.stack([_state(robot, goal + [0.06, 0, 0], 0.08),  # 6 cm off
                       _state(robot, goal + [0, 0.01, 0], 0.08),  # 1 cm off: the best
                       _state(robot, [0.95, goal[1], goal[2]], 0.08)])  # outside the box
    calls = []

    def predict(o, chunks, horizon):  # a constructed future in place of the head's
        calls.append((len(chunks), horizon))
        policy.last_plan = _plan(policy.config.plan_dim, [0.1, 0.05, -0.05], [0, 0.2, 0])[None]
        return None, states

    predictor.predict = predict  # instance attribute: this test's predictor only
    try:
        sampled = []
        real_sample = policy.sample_chunks
        policy.sample_chunks = lambda *a, **kw: sampled.append(real_sample(*a, **kw)) or \
            sampled[-1]
        chunk = look.infer_chunk(obs)
    finally:
        del predictor.predict, policy.sample_chunks
    assert calls == [(3, predictor.head.cfg.horizon)]
    np.testing.assert_array_equal(chunk.actions, sampled[0][1])
    rec = look.records[-1]
    assert rec.best == 1 and rec.rejected == 1 and rec.scores[2] is None
    assert rec.scores[1] == pytest.approx(-0.01, abs=1e-4)
    s = look.summary(loop_hz=12.5)
    assert s["decisions"] == 1 and s["candidates"] == 3 and s["rejected"] == 1
    assert s["latency_ms"]["p50"] > 0 and s["loop_hz"] == 12.5 and s["greedy_chosen"] == 0.0


def test_lookahead_policy_errors(parts, robot):
    policy, predictor = parts
    with pytest.raises(ValueError, match="needs K >= 2 candidates"):
        LookaheadPolicy(policy, predictor, robot, k=1)
    with pytest.raises(ValueError, match=r"horizon must be in 1..4 \(the head's max_horizon\)"):
        LookaheadPolicy(policy, predictor, robot, k=2, horizon=5)
    with pytest.raises(ValueError, match=r"unknown lookahead score 'funel'; choose one of "
                                         r"\['distance', 'funnel'\]"):
        LookaheadPolicy(policy, predictor, robot, k=2, score="funel")
    with pytest.raises(ValueError, match=r"unknown lookahead trigger 'missed'; choose one of "
                                         r"\['always', 'missed-grasp'\]"):
        LookaheadPolicy(policy, predictor, robot, k=2, when="missed")
    look = LookaheadPolicy(policy, predictor, robot, k=2)
    with pytest.raises(ValueError, match="cannot continue committed actions"):
        look.infer_chunk(None, committed=np.zeros((1, 7), np.float32))


def test_missed_grasp_engages_lookahead_for_the_rest_of_the_episode(parts, robot, video_run):
    policy, predictor = parts
    look = LookaheadPolicy(policy, predictor, robot, k=2, when="missed-grasp")
    d = video_run["demos"][0]
    frames = {c: d.frames[c][0] for c in policy.config.cameras}
    open_, empty = d.state[0].copy(), d.state[0].copy()
    opening = StateLayout.for_robot(robot).gripper_opening
    open_[opening] = robot.max_gripper_opening
    empty[opening] = 0.0  # the fingers closed on nothing
    greedy = policy.infer_chunk(Observation(frames, open_, d.task)).actions
    chunk = look.infer_chunk(Observation(frames, open_, d.task))
    np.testing.assert_array_equal(chunk.actions, greedy)  # the policy alone
    assert look.records == [] and not look.engaged
    look.infer_chunk(Observation(frames, empty, d.task))
    look.infer_chunk(Observation(frames, open_, d.task))  # reopened: still engaged
    assert len(look.records) == 2 and look.engaged
    look.reset()
    assert not look.engaged
    s = look.summary(loop_hz=10.0)
    assert s["when"] == "missed-grasp" and s["engaged_episodes"] == 1
    assert s["decisions"] == 2 and s["policy_alone_decisions"] == 1


def test_recording_shows_the_real_and_the_predicted_frame_side_by_side(parts, tmp_path):
    policy, predictor = parts
    env = envs.make(ENV, max_episode_steps=10)
    look = LookaheadPolicy(policy, predictor, robot_spec(env), k=2, horizon=2, keep_frames=True)
    shown, real = [], []
    video = PredictionVideo(tmp_path / "ep.mp4", 20, "front", look.latest_prediction)

    def hook(obs, *rest):
        real.append(obs.images["front"])
        video.add(obs, *rest)
        p = look.latest_prediction()
        shown.append(p)

    try:
        run_episode(env, SyncBroker(look), 0, StageTimer(), on_step=hook)
    finally:
        video.close()
        env.close()
    with av.open(str(tmp_path / "ep.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 10 and frames[0].shape == (128, 256, 3)  # twice the camera's width
    assert frames[0][:, 128:].mean() < 3  # nothing predicted for tick 0 yet: black
    # Decisions at ticks 0, 4, 8 (execute 4); the one at tick 4 is shown from tick 6 on.
    assert [p.serial for p in (shown[0], shown[4], shown[8])] == [0, 1, 2]
    for t in (6, 7):
        # Compared as 8x8-pixel block means: H.264 smooths the barely trained tokenizer's
        # pixel noise, the picture stays.
        right, left = _blocks(frames[t][:, 128:]), _blocks(frames[t][:, :128])
        assert np.abs(right - _blocks(shown[4].frame)).mean() < 4
        assert np.abs(left - _blocks(real[t])).mean() < 4
        assert np.abs(right - _blocks(real[t])).mean() > 4 * np.abs(left - _blocks(real[t])).mean()
    assert look.summary(loop_hz=0.0)["decisions"] == 3


def _blocks(img):
    return img.astype(float).reshape(16, 8, 16, 8, 3).mean(axis=(1, 3))  # (16, 16, 3)


def _run(*extra):
    return main(["run", "--env", ENV, "--episodes", "1", "--rate", "0", "--backend", "torch",
                 *extra])


def test_lookahead_needs_a_token_run_with_a_video_head(video_run, tmp_path):
    with pytest.raises(SystemExit, match="--lookahead needs --policy RUN, a token policy"):
        _run("--policy", "scripted", "--lookahead", "2")
    plain = tmp_path / "plain"
    shutil.copytree(video_run["run"], plain)
    shutil.rmtree(plain / "video_head")
    with pytest.raises(SystemExit, match="has no video head.*agent train ... --tokenizer TOK"):
        _run("--policy", str(plain), "--lookahead", "2")
    run = str(video_run["run"])
    with pytest.raises(SystemExit, match="--lookahead K needs K >= 2 candidates, got 1"):
        _run("--policy", run, "--lookahead", "1")
    with pytest.raises(SystemExit, match="use --exec sync, naive or ensemble"):
        _run("--policy", run, "--lookahead", "2", "--exec", "rtc")
    with pytest.raises(SystemExit, match="--lookahead-horizon apply to --lookahead K only"):
        _run("--policy", run, "--lookahead-horizon", "2")
    with pytest.raises(SystemExit, match="--lookahead-margin apply to --lookahead K only"):
        _run("--policy", run, "--lookahead-margin", "0.01")
    with pytest.raises(SystemExit, match="lookahead margin must be >= 0, got -0.01"):
        _run("--policy", run, "--lookahead", "2", "--lookahead-margin", "-0.01")
    other = tmp_path / "other"
    shutil.copytree(video_run["tok"], other)
    (other / "model.safetensors").write_bytes(b"x" + (other / "model.safetensors").read_bytes())
    with pytest.raises(SystemExit, match="is not the one the video head was trained against"):
        _run("--policy", run, "--lookahead", "2", "--tokenizer", str(other))


@pytest.mark.slow
def test_run_with_lookahead_reports_its_cost_and_records(video_run, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--env", ENV, "--policy", str(video_run["run"]),
         "--episodes", "1", "--rate", "0", "--json", "--backend", "torch", "--lookahead", "2",
         "--record", str(tmp_path)], capture_output=True, text=True, timeout=600, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    look = summary["lookahead"]
    assert look["k"] == 2 and look["horizon"] == 4 and look["decisions"] > 0
    assert look["candidates"] == 2 * look["decisions"] and look["rejected"] >= 0
    assert look["latency_ms"]["p99"] >= look["latency_ms"]["p50"] > 0
    assert look["loop_hz"] == summary["loop_hz"] > 0
    with av.open(str(tmp_path / "episode_0000.mp4")) as c:
        assert next(iter(c.decode(video=0))).width == 256


def test_eval_takes_lookahead_and_reports_it(video_run, capsys):
    assert main(["eval", "--env", "mujoco:pick_place_hard", "--policy", str(video_run["run"]),
                 "--episodes", "1", "--backend", "torch", "--lookahead", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 1 and summary["lookahead"]["k"] == 2
    assert summary["lookahead"]["decisions"] > 0 and summary["lookahead"]["margin"] == 0.0
