"""A plan over the union of two tasks' objects (pick_place's cubes and plates, reach's balls):
absent objects are NaN in the packed environment state and in the plan targets, the plan's
absent id in the tokens, left out of the aux loss and of the plan codec's fit; decoding the
absent id gives NaN; the policy acts on both tasks and exports at parity
(policies.training.mixed, action_codec.absent)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import envs
from action_codec.absent import WithAbsent
from action_codec.binning import BinningCodec
from agent.rollout import rollout_demos
from envs.features import env_state_names
from envs.types import Observation
from policies.inference.onnx_engine import OnnxEngine
from policies.inference.onnx_export import export_policy
from policies.inference.parity import parity_report
from policies.inference.torch_engine import TorchEngine
from policies.model.checkpoint import PolicyConfig
from policies.model.plan_targets import PLAN_GOAL, aux_targets, plan_targets
from policies.model.token_policy import TokenPolicy
from policies.training.data import ChunkSampler, DemoEpisode
from policies.training.mixed import as_policy_reads, union_objects
from policies.training.train import TrainConfig, batch_loss, build_policy, train

CFG = TrainConfig(model="nano", steps=40, batch_size=8, lr=3e-3, warmup=5, shift_px=0,
                  checkpoint_every=10_000)
CUBES = ("red_cube", "green_cube", "blue_cube", "yellow_plate", "purple_plate")
BALLS = ("red_ball", "green_ball", "blue_ball")


@pytest.fixture(scope="module")
def demos():
    return rollout_demos("mujoco:pick_place", range(1)) + rollout_demos("mujoco:reach", range(2))


@pytest.fixture(scope="module")
def run(demos, tmp_path_factory):
    torch.manual_seed(0)
    policy = build_policy(demos, CFG)
    out = tmp_path_factory.mktemp("union_run")
    logs = train(policy, demos, out, CFG)
    return policy, out, logs


def _fake(names: tuple[str, ...], task: str = "t") -> DemoEpisode:
    """A 2-frame episode whose environment state is named `names` (what union_objects reads)."""
    from envs.features import EE_NAMES, StateLayout

    return DemoEpisode(task, {}, np.zeros((2, 14), np.float32), np.zeros((2, 7), np.float32),
                       np.zeros((2, len(names)), np.float32), env_state_names=names,
                       state_layout=StateLayout((*(f"j{k}" for k in range(6)), *EE_NAMES)))


def _names(spec: str) -> tuple[str, ...]:
    env = envs.make(spec)
    try:
        return env_state_names(env)
    finally:
        env.close()


def test_the_five_envs_union_to_eight_objects_and_31_plan_values():
    specs = ["mujoco:pick_place", "mujoco:pick_place_hard", "mujoco:push", "mujoco:reach",
             "pybullet:pick_place"]
    eps = [_fake(_names(s)) for s in specs]
    union = union_objects(eps)
    assert union == CUBES + BALLS  # the widest task's order first, then what others add
    assert union_objects(eps[::-1]) == union  # not the order of the datasets
    assert PolicyConfig(state_names=tuple(f"j{k}" for k in range(6)) + ("ee_x", "ee_y", "ee_z",
                        "ee_qw", "ee_qx", "ee_qy", "ee_qz", "gripper_opening"),
                        action_names=("dx", "dy", "dz", "drx", "dry", "drz", "gripper"),
                        plan_dim=31, plan_objects=True, plan_object_names=union).plan_dim == 31
    # Every pick_place flavour has the same objects: no union, the 22-value plan as before.
    assert union_objects([eps[0], eps[1], eps[4]]) is None
    # push and reach have 3 objects each, at the same width, but other ones: matched by name.
    assert union_objects([eps[2], eps[3]]) == ("red_ball", "green_ball", "blue_ball",
                                               "red_cube", "blue_cube", "yellow_plate")


def test_unnamed_environment_states_of_other_objects_are_refused():
    a, b = _fake(_names("mujoco:pick_place")), _fake(_names("mujoco:reach")[:35])
    with pytest.raises(ValueError, match="does not name its 35 values"):
        union_objects([a, replace(b, env_state_names=None)])
    with pytest.raises(ValueError, match=r"objects \['red_ball'.* does not cover"):
        as_policy_reads([b], None, CUBES)


def test_the_policy_records_the_union_and_an_absent_id_at_the_plan_segments_end(run):
    policy = run[0]
    c = policy.config
    assert c.plan_object_names == CUBES + BALLS and c.plan_dim == 31 and c.plan_objects
    assert policy.model.cfg.aux_dim == 10 + 3 * 8
    r = policy.layout.ranges["plan"]
    assert isinstance(policy.plan_codec, WithAbsent) and r.size == CFG.n_bins + 1
    assert policy.plan_absent_id == r.stop - 1
    lo, hi = policy.plan_spans()  # objects may be absent; the goal never is
    assert lo == [r.start] * 31 and hi == [r.stop] * 24 + [r.stop - 1] * 7
    assert policy.model.embed.segment[r.stop - 1] == 0  # unordered: no bin's neighbour
    assert policy.model.embed.value[r.stop - 1] == 0
    assert c.to_dict()["plan_object_names"] == list(CUBES + BALLS)


def test_plan_targets_are_nan_exactly_at_absent_objects_and_encode_to_the_absent_id(run, demos):
    policy = run[0]
    read = as_policy_reads(demos, None, policy.config.plan_object_names)
    for d, absent in ((read[0], BALLS), (read[1], CUBES)):
        plan = plan_targets(d.env_state, d.state, d.state_layout, objects=True)  # (T, 31)
        objects = plan[:, :24].reshape(len(plan), 8, 3)
        want = np.array([o in absent for o in CUBES + BALLS])
        assert (np.isnan(objects).all(-1) == want).all() and not np.isnan(objects[:, ~want]).any()
        assert np.isfinite(plan[:, PLAN_GOAL]).all()
        ids = policy.plan_ids(plan)[:, :31]  # the plan, begin_actions cut
        assert ((ids == policy.plan_absent_id) == np.isnan(plan)).all()
        back = policy.plan_codec.decode(policy.layout.to_local("plan", ids))
        assert (np.isnan(back) == np.isnan(plan)).all()  # the absent id decodes to NaN
        aux = aux_targets(d.env_state, d.state, d.state_layout)  # world xyz of each object
        assert (np.isnan(aux[:, 10:]).reshape(len(aux), 8, 3).all(-1) == want).all()


def test_the_plan_codec_is_fitted_on_present_values_only(run, demos):
    policy = run[0]
    read = as_policy_reads(demos, None, policy.config.plan_object_names)
    reach = np.concatenate([plan_targets(d.env_state, d.state, d.state_layout, objects=True)
                            for d in read[1:]])
    ball = 3 * (CUBES + BALLS).index("red_ball")  # the red ball's dx: reach episodes only
    alone = BinningCodec(policy.plan_codec.inner.config).fit(reach[:, ball:ball + 1])
    assert (policy.plan_codec.inner.lo[ball], policy.plan_codec.inner.hi[ball]) == (
        alone.lo[0], alone.hi[0])


def test_training_losses_are_finite_with_absent_objects(run, demos):
    policy, _, logs = run
    assert all(np.isfinite([g.loss, g.plan_loss, g.aux_loss]).all() for g in logs)
    from policies.model.plan_targets import AuxNormalizer

    read = as_policy_reads(demos, None, policy.config.plan_object_names)
    norm = AuxNormalizer([d.env_state for d in read], [d.state for d in read],
                         policy.config.state_layout)
    assert np.isfinite(norm.mean).all() and np.isfinite(norm.std).all()
    batch = ChunkSampler(read, policy.config.cameras, CFG.chunk, seed=3).sample(8)
    assert np.isnan(batch.env_state).any()  # both tasks in the batch: some objects absent
    with torch.no_grad():
        losses = batch_loss(policy, policy.model, batch, torch.from_numpy(batch.frames).float(),
                            torch.device("cpu"), CFG.label_sigma, norm)
    assert torch.isfinite(losses.aux) and torch.isfinite(losses.plan)


def _observation(demo, t: int = 2) -> Observation:
    return Observation({c: f[t] for c, f in demo.frames.items()}, demo.state[t], demo.task,
                       robot=demo.robot_type)


def test_the_loaded_policy_acts_with_a_plan_nan_only_at_objects(run, demos):
    policy, out, _ = run
    loaded = TokenPolicy.load(out)
    assert loaded.config == policy.config and loaded.plan_absent_id == policy.plan_absent_id
    for d in demos:
        chunk = loaded.infer(_observation(d)).actions
        assert np.isfinite(chunk).all()
        plan = loaded.last_plan[0]
        assert plan.shape == (31,) and np.isfinite(plan[PLAN_GOAL]).all()  # never absent


@pytest.mark.parametrize("spec", ["mujoco:pick_place", "mujoco:reach"])
def test_an_episode_runs_on_each_task(run, spec):
    # Seed 0: the demos' layout and instruction (the tiny tokenizer knows no other sentence).
    episodes = rollout_demos(spec, [0], policy_name=str(run[1]), successful_only=False)
    assert len(episodes) == 1 and np.isfinite(episodes[0].action).all()


def test_onnx_and_torch_write_the_same_ids_absent_ones_included(run, demos, tmp_path):
    policy = TokenPolicy.load(run[1])
    meta = export_policy(policy, tmp_path)
    observations = [_observation(d, t) for d in demos for t in (0, 4)]
    report = parity_report(policy, TorchEngine(policy.model, "cpu"),
                           OnnxEngine(tmp_path, meta, "cpu"), observations)
    assert report["identical_token_share"] == 1.0 and report["parity"]
    ids = policy.engine.generate(policy.text_ids([demos[0].task]),
                                 np.stack([demos[0].frames[c][0] for c in
                                           policy.config.cameras])[None],
                                 policy.state_ids(demos[0].state[:1]), 31,
                                 *policy.plan_spans(), "argmax")
    assert (ids[0, :24] == policy.plan_absent_id).any()  # the absent id is written, compared


def test_one_task_trains_as_before(demos):
    policy = build_policy(demos[:1], replace(CFG, steps=1))
    c = policy.config
    assert c.plan_object_names is None and c.plan_dim == 22 and c.plan_objects
    assert "plan_object_names" not in c.to_dict()  # config.json as it always was
    assert type(policy.plan_codec) is BinningCodec and policy.plan_absent_id is None
    assert policy.layout.ranges["plan"].size == CFG.n_bins


def test_a_config_whose_plan_does_not_fit_its_objects_is_refused(run):
    c = run[0].config
    with pytest.raises(ValueError, match=r"names 8 objects, so the plan is .*\(31 values"):
        replace(c, plan_dim=22)
    with pytest.raises(ValueError, match="distinct objects"):
        replace(c, plan_object_names=("red_cube", "red_cube"), plan_dim=13)
