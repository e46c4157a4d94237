import json

import numpy as np
import pytest

from envs.types import Observation
from hw_bridge.safety import SafetyLimits
from policies.video.lookahead import (
    AllCandidatesRejectedError,
    Lookahead,
    StateLimits,
    funnel_progress,
    pick_best,
    score_candidates,
)
from sims import make_sim

ROBOT = make_sim("mujoco", []).robot  # the real arm's joint range (sims/assets/arm.xml)
LIMITS = StateLimits.from_robot(ROBOT)
GOAL = np.array([0.45, 0.10, 0.05])
OBS = Observation(images={}, state=np.zeros(14, np.float32), instruction="test")


def _state(ee, q=(0.0,) * 6):
    return np.concatenate([q, ee, [1.0, 0.0, 0.0, 0.0], [0.04]])  # (14,)


# Candidate 0 is nearest the goal but its EE is outside the workspace box (x = 0.95 m);
# candidate 2 is the nearest of the two inside.
STATES = np.stack([_state([0.95, 0.10, 0.05]), _state([0.45, 0.30, 0.05]),
                   _state([0.45, 0.12, 0.05])])
CHUNKS = np.arange(3 * 4 * 7, dtype=np.float32).reshape(3, 4, 7)


def test_limits_come_from_the_robot_and_bridge():
    s = SafetyLimits()
    assert LIMITS.workspace_low == s.workspace_low and LIMITS.workspace_high == s.workspace_high
    assert LIMITS.joint_upper[1] == pytest.approx(ROBOT.joint_upper[1] - s.joint_margin)
    assert LIMITS.joint_lower[0] == pytest.approx(ROBOT.joint_lower[0] + s.joint_margin)


def test_score_rejects_outside_workspace_and_joint_limits():
    bent = (0.0, ROBOT.joint_upper[1] + 0.1, 0.0, 0.0, 0.0, 0.0)  # joint2 past its limit
    states = np.concatenate([STATES, _state([0.45, 0.10, 0.05], q=bent)[None]])
    scores = score_candidates(states, GOAL, LIMITS)
    assert scores[0] == -np.inf and scores[3] == -np.inf  # workspace; joint limit
    np.testing.assert_allclose(scores[1:3], [-0.20, -0.02], atol=1e-9)


def test_pick_best_takes_the_best_predicted_score_never_the_rejected_one():
    scores = score_candidates(STATES, GOAL, LIMITS)
    index, chunk = pick_best(CHUNKS, scores)
    assert index == 2 and np.array_equal(chunk, CHUNKS[2])


def test_callable_progress():
    scores = score_candidates(STATES, lambda s: s[:, 7], LIMITS)  # progress = EE y
    assert pick_best(CHUNKS, scores)[0] == 1


def test_all_rejected_is_an_error():
    far = np.stack([_state([0.95, 0.0, 0.3])] * 3)
    with pytest.raises(AllCandidatesRejectedError, match="all 3 candidate chunks were rejected"):
        pick_best(CHUNKS, score_candidates(far, GOAL, LIMITS))


def test_lookahead_samples_predicts_and_records():
    calls = []

    def sample(obs, k):
        calls.append(k)
        return CHUNKS[:k]

    look = Lookahead(sample, lambda obs, chunks: STATES[:len(chunks)], GOAL, LIMITS, k=3)
    chunk, record = look(OBS)
    assert calls == [3] and np.array_equal(chunk, CHUNKS[2])
    d = json.loads(json.dumps(record.to_dict()))  # goes into the run summary as is
    assert d["best"] == 2 and d["rejected"] == 1 and d["scores"][0] is None
    assert d["total_s"] >= d["sample_s"] + d["predict_s"] >= 0
    bad = Lookahead(sample, lambda obs, chunks: np.stack([_state([2.0, 0, 0])] * 3), GOAL,
                    LIMITS, k=3)
    with pytest.raises(AllCandidatesRejectedError):
        bad(OBS)


def test_margin_keeps_the_greedy_row_unless_a_candidate_clearly_beats_it():
    # Row 0 (greedy) 30 mm from the goal, row 1 25 mm, row 2 rejected (outside the box).
    states = np.stack([_state([0.45, 0.13, 0.05]), _state([0.45, 0.125, 0.05]),
                       _state([0.95, 0.10, 0.05])])
    scores = score_candidates(states, GOAL, LIMITS)
    assert pick_best(CHUNKS, scores)[0] == 1  # no margin: the nearest wins
    assert pick_best(CHUNKS, scores, margin=0.004)[0] == 1  # 5 mm better > 4 mm
    assert pick_best(CHUNKS, scores, margin=0.01)[0] == 0  # 5 mm is within 10 mm: keep greedy
    rejected_greedy = np.array([-np.inf, -0.2, -0.1])
    assert pick_best(CHUNKS, rejected_greedy, margin=1.0)[0] == 2  # a rejected row 0 never wins
    with pytest.raises(ValueError, match="margin must be >= 0"):
        pick_best(CHUNKS, scores, margin=-0.01)
    look = Lookahead(lambda obs, k: CHUNKS[:k], lambda obs, c: states, GOAL, LIMITS, k=3,
                     margin=0.01)
    assert look(OBS)[1].best == 0


def test_funnel_prefers_lining_up_over_cutting_the_corner():
    # The cube at GOAL. Row 0 is 4 cm off to the side but already down at the cube's height
    # (the corner cut that sweeps the neighbours); row 1 is right above the cube, 7 cm up.
    states = np.stack([_state(GOAL + [0.0, 0.04, 0.0]), _state(GOAL + [0.0, 0.0, 0.07])])
    assert pick_best(CHUNKS[:2], score_candidates(states, GOAL, LIMITS))[0] == 0
    funnel = funnel_progress(GOAL, LIMITS.layout, slope=2.0, rise=0.08)
    scores = score_candidates(states, funnel, LIMITS)
    assert pick_best(CHUNKS[:2], scores)[0] == 1
    # Row 0's goal point rises 8 cm above the cube (2 x 4 cm); row 1's is the cube itself.
    np.testing.assert_allclose(scores, [-np.hypot(0.04, 0.08), -0.07], atol=1e-9)
    # On the funnel's surface only the xy error counts: 2 cm off and 4 cm up scores -2 cm.
    on_surface = _state(GOAL + [0.02, 0.0, 0.04])[None]
    np.testing.assert_allclose(funnel(on_surface), [-0.02], atol=1e-9)
    with pytest.raises(ValueError, match="slope and rise must be >= 0"):
        funnel_progress(GOAL, 6, slope=-1.0)
