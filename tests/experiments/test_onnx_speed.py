"""experiments/onnx_speed/onnx_speed.py times ONNX engine variants interleaved, on real exports."""

import numpy as np

from policies.inference.onnx_engine import OnnxEngine
from policies.inference.onnx_export import export_policy
from policies.model.token_policy import TokenPolicy
from tests.experiments.conftest import load_experiment


def test_variants_are_timed_on_every_chunk_and_compared_with_binding(nano_checkpoint,
                                                                      tmp_path):
    study = load_experiment("onnx_speed", "onnx_speed")
    run, demos = nano_checkpoint
    policy = TokenPolicy.load(run)
    meta = export_policy(policy, tmp_path)
    engines = {"binding": OnnxEngine(tmp_path, meta, "cpu", io_binding=True),
               "host": OnnxEngine(tmp_path, meta, "cpu", io_binding=False)}
    d = demos[0]
    inputs = [(policy.text_ids([d.task]), np.stack([d.frames[c][t] for c in
                                                    policy.config.cameras])[None],
               policy.state_ids(d.state[t][None])) for t in (0, len(d.action) - 1)]
    times, same = study.interleaved(policy, engines, inputs, rounds=2)
    assert {k: len(v) for k, v in times.items()} == {"binding": 4, "host": 4}
    assert same == {"binding": 1.0, "host": 1.0}  # same graph, same numbers either way
    rows = study.summarize(times, same, {"host": {"parity": True}})
    assert rows["binding"]["ratio_p50_vs_binding"] == 1.0
    assert rows["host"]["parity"] and rows["host"]["p50_ms"] > 0
