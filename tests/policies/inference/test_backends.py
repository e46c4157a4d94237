import pytest

from agent.cli import main
from policies.inference.backend import BackendOptions, UnknownBackendError, make_engine
from policies.inference.onnx_engine import PROVIDERS, ProviderError, select_providers
from policies.registry import load_policy

ALL = list(PROVIDERS.values())


def test_providers_are_tried_tensorrt_then_cuda_then_cpu():
    assert select_providers("auto", ALL[::-1]) == ALL
    assert select_providers("cuda", ALL) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("auto", ["CPUExecutionProvider", "AzureExecutionProvider"]) == [
        "CPUExecutionProvider"]


def test_missing_provider_says_which_are_installed():
    with pytest.raises(ProviderError, match=r"'tensorrt' .* not installed; this onnxruntime "
                                            r"has \['cpu'\]"):
        select_providers("tensorrt", ["CPUExecutionProvider"])
    with pytest.raises(ProviderError, match="did you mean 'tensorrt'"):
        select_providers("tensorrtt", ALL)


def test_unknown_backend_lists_the_known_ones(nano_checkpoint):
    policy = load_policy(str(nano_checkpoint[0]))
    with pytest.raises(UnknownBackendError, match=r"choose from \['auto', 'torch', 'onnx'\]; "
                                                  r"did you mean 'onnx'"):
        make_engine(policy, BackendOptions("onnnx"))


def test_auto_picks_the_fastest_and_says_why(nano_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTOKEN_CACHE", str(tmp_path))
    policy, said = load_policy(str(nano_checkpoint[0])), []
    engine = make_engine(policy, BackendOptions("auto", checkpoint=nano_checkpoint[0]),
                         log=said.append)
    assert policy.engine is engine
    assert said[0].startswith("exporting the policy to ONNX")
    assert said[-1].startswith(f"backend auto: {engine.describe()} is the fastest per chunk")
    assert "torch[cpu" in said[-1] and "onnx[CPU]" in said[-1]
    assert list(tmp_path.glob("onnx/*/decode.onnx"))  # cached for the next run


def test_cli_refuses_a_provider_that_is_not_installed(nano_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTOKEN_CACHE", str(tmp_path))
    with pytest.raises(SystemExit, match=r"provider 'tensorrt'.*not installed.*\['cpu'\]"):
        main(["run", "--env", "mujoco:reach", "--policy", str(nano_checkpoint[0]),
              "--episodes", "1", "--backend", "onnx", "--onnx-provider", "tensorrt"])
    with pytest.raises(SystemExit, match="applies to token policies"):
        main(["run", "--env", "mujoco:reach", "--policy", "scripted", "--episodes", "1",
              "--backend", "onnx"])
