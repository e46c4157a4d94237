"""Plan tokens (policies.model.plan_targets.plan_targets): what they mean, how the policy writes
and reads them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import envs
from envs.features import env_state_names, env_state_vector
from envs.types import Observation
from policies.model.plan_targets import PLAN_GOAL, PLAN_NAMES, plan_dim, plan_targets
from policies.model.token_policy import CheckpointMismatchError, TokenPolicy
from policies.scripted import MAX_DPOS, MAX_DROT, PickPlaceScript
from policies.training.data import ChunkSampler
from policies.training.train import TrainConfig, build_policy


def test_the_experts_first_action_is_a_clipped_copy_of_the_plan() -> None:
    """On a real MuJoCo reset the plan is what the scripted expert steers by: its xy move is
    the clipped cube offset and its turn about z the clipped grasp turn."""
    env = envs.make("mujoco:pick_place")
    names, layout = env_state_names(env), env.unwrapped.state_layout
    try:
        for seed in (3, 4, 5):
            obs, info = env.reset(seed=seed)
            o = Observation.from_env(obs, info)
            plan = plan_targets(env_state_vector(o.privileged, names)[None], o.state[None],
                                layout)[0]
            action = PickPlaceScript().act(o.privileged)
            np.testing.assert_allclose(action[:2], np.clip(plan[:2], -MAX_DPOS, MAX_DPOS),
                                       atol=1e-5)
            assert abs(action[5] - np.clip(plan[6], -MAX_DROT, MAX_DROT)) < 0.02
            cube = np.asarray(o.privileged["objects"][o.privileged["goal"]["object"]]["pos"])
            np.testing.assert_allclose(plan[:3], cube - o.privileged["ee_pos"], atol=1e-5)
            # With objects: every object's offset in the task's order, then the same goal part.
            full = plan_targets(env_state_vector(o.privileged, names)[None], o.state[None],
                                layout, objects=True)[0]
            assert full.shape == (plan_dim(len(names), objects=True),) == (7 + 3 * 5,)
            np.testing.assert_array_equal(full[PLAN_GOAL], plan)
            objects = [o.name for o in env.unwrapped.task.objects]
            for i, name in enumerate(objects):
                pos = np.asarray(o.privileged["objects"][name]["pos"])
                np.testing.assert_allclose(full[3 * i:3 * i + 3], pos - o.privileged["ee_pos"],
                                           atol=1e-5)
            goal = objects.index(o.privileged["goal"]["object"])
            np.testing.assert_array_equal(full[3 * goal:3 * goal + 3], full[PLAN_GOAL][:3])
    finally:
        env.close()


def test_plan_tokens_only_with_env_state(demos) -> None:
    cfg = TrainConfig(model="nano", n_bins=16)
    with_plan = build_policy(demos, cfg)
    assert with_plan.config.plan_objects and with_plan.config.plan_dim == 7 + 3 * 5
    goal_only = build_policy(demos, TrainConfig(model="nano", n_bins=16, plan_objects=False))
    assert goal_only.config.plan_dim == len(PLAN_NAMES) == 7
    assert not goal_only.config.plan_objects
    assert with_plan.layout.sizes.plan == with_plan.plan_codec.vocab_size
    bare = [dataclasses.replace(d, env_state=None) for d in demos]
    assert build_policy(bare, cfg).config.plan_dim == 0
    assert build_policy(demos, TrainConfig(model="nano", n_bins=16, plan_weight=0)).plan_codec \
        is None


def test_trained_policy_writes_the_true_plan_then_the_actions(trained, demos) -> None:
    policy, logs, _ = trained
    assert logs[0].plan_loss > 3.0 and logs[-1].plan_loss < 2.0, \
        [round(x.plan_loss, 3) for x in logs]
    sampler = ChunkSampler(demos, policy.config.cameras, policy.config.chunk)
    b = sampler.gather(sampler.index[::6])
    chunks = policy.generate(policy.text_ids(b.instructions), b.frames,
                             policy.state_ids(b.state))
    assert chunks.shape == (len(b.state), policy.config.chunk, policy.config.action_dim)
    want = plan_targets(b.env_state, b.state, policy.config.state_layout, objects=True)
    assert policy.last_plan.shape == want.shape == (len(b.state), 22)
    err = np.abs(policy.last_plan - want)  # (N, 22): decoded plan vs ground truth
    spread = np.abs(want - np.median(want, 0))  # the error of writing one typical plan
    # Medians: a tiny run on one episode still mistakes the odd frame for another.
    err, spread = err[:, PLAN_GOAL], spread[:, PLAN_GOAL]
    assert (np.median(err, 0)[:6] < 0.3 * np.median(spread, 0)[:6] + 0.003).all(), \
        (np.median(err, 0), np.median(spread, 0))
    assert (np.linalg.norm(err[:, :2], axis=1) < 0.01).mean() > 0.7


def test_rtc_prefix_follows_the_plan(trained, demos) -> None:
    """A forced prefix is fed after the plan: the chunk starts with the committed actions."""
    policy, _, _ = trained
    ep = demos[0]
    obs = Observation(images={c: ep.frames[c][5] for c in policy.config.cameras},
                      state=ep.state[5], instruction=ep.task)
    committed = policy.infer_chunk(obs).actions[:3] + 0.004
    chunk = policy.infer_chunk(obs, committed=committed).actions
    round_trip = policy.action_codec.decode(policy.action_codec.encode(committed))
    np.testing.assert_allclose(chunk[:3], round_trip, atol=1e-6)
    assert policy.last_plan.shape == (1, 22)


def test_save_load_keeps_the_plan_codec(trained, demos, tmp_path) -> None:
    policy, _, out = trained
    policy.save(tmp_path / "p")
    loaded = TokenPolicy.load(tmp_path / "p")
    assert loaded.config == policy.config and loaded.config.plan_objects
    ep = demos[0]
    obs = Observation(images={c: ep.frames[c][0] for c in policy.config.cameras},
                      state=ep.state[0], instruction=ep.task)
    np.testing.assert_array_equal(loaded.infer_chunk(obs).actions,
                                  policy.infer_chunk(obs).actions)
    np.testing.assert_array_equal(loaded.last_plan, policy.last_plan)


def test_plan_config_without_its_codec_is_an_error(trained) -> None:
    policy, _, _ = trained
    with pytest.raises(CheckpointMismatchError, match="plan_dim 22 but no plan codec"):
        TokenPolicy(policy.model, policy.config, policy.layout, policy.state_codec,
                    policy.action_codec, policy.text_tokenizer, None)
