import numpy as np
import torch

from policies.engines import DecodeEngine, TorchEngine
from policies.token_policy import TokenPolicy


class StepwiseTorch(TorchEngine):
    """The generic prefill/step loop instead of TorchEngine's on-device one."""

    generate = DecodeEngine.generate


def test_on_device_greedy_loop_matches_prefill_and_steps(nano_checkpoint):
    # greedy_ids is what a CUDA graph captures on a GPU; on CPU it must give the same ids as
    # the step-by-step loop every other engine uses.
    policy = TokenPolicy.load(nano_checkpoint[0])
    text, frames, state = policy.model.cfg.fake_inputs(batch=3, text_len=48, state_len=17)
    lo, hi = policy.layout.ranges["action"].start, policy.layout.ranges["action"].stop
    args = (text.numpy(), frames.numpy(), state.numpy(), 28, lo, hi)
    a = TorchEngine(policy.model, "cpu").generate(*args)
    b = StepwiseTorch(policy.model, "cpu").generate(*args)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 28) and ((a >= lo) & (a < hi)).all()


def test_engine_on_another_device_leaves_the_policy_model_alone(nano_checkpoint):
    policy = TokenPolicy.load(nano_checkpoint[0])
    engine = TorchEngine(policy.model, "meta")  # any device other than the model's
    assert engine.model is not policy.model
    assert next(policy.model.parameters()).device == torch.device("cpu")
