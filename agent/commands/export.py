"""`agent export`: a token policy as ONNX graphs, checked, with a torch-vs-ONNX parity report.

    agent export --policy RUN --out DIR [--data DATASET] [--observations 32]

Writes DIR/prefill.onnx, DIR/decode.onnx, DIR/export.json (see policies/inference/onnx_export.py)
and
DIR/parity.json (policies/inference/parity.py), measured on observations from DATASET or, without
one,
from scripted rollouts. The last stdout line is the parity report as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.commands import BadInput


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a token policy to ONNX, with a parity report",
                       description=__doc__.splitlines()[0])
    p.add_argument("--policy", required=True, type=Path, metavar="RUN",
                   help="a token-policy checkpoint directory")
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.add_argument("--data", type=Path, default=None, metavar="DATASET",
                   help="LeRobot dataset to take observations from (default: scripted "
                        "rollouts of --env)")
    p.add_argument("--env", default="mujoco:pick_place", metavar="SPEC")
    p.add_argument("--observations", type=int, default=32)
    p.add_argument("--onnx-provider", default="auto", metavar="auto|tensorrt|cuda|cpu")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from agent.commands.eval import EVAL_SEED_BASE
    from agent.rollout import rollout_observations
    from policies.base import PolicyCheckpointError
    from policies.inference.onnx_engine import OnnxEngine, ProviderError
    from policies.inference.onnx_export import export_policy
    from policies.inference.parity import dataset_observations, parity_report
    from policies.inference.torch_engine import TorchEngine
    from policies.model.token_policy import TokenPolicy
    from policies.registry import UnknownPolicyError, load_policy

    try:
        policy = load_policy(str(args.policy))
    except (UnknownPolicyError, PolicyCheckpointError) as e:
        raise BadInput(str(e)) from None
    if not isinstance(policy, TokenPolicy):
        raise BadInput(f"{args.policy} is not a token-policy checkpoint")
    meta = export_policy(policy, args.out)
    print(f"exported {args.policy} to {args.out} (prefill.onnx, decode.onnx; opset "
          f"{meta['opset']}, checked)", file=sys.stderr)
    try:
        onnx = OnnxEngine(args.out, meta, provider=args.onnx_provider)
    except ProviderError as e:
        raise BadInput(f"{e}") from None
    if args.data:
        obs = dataset_observations(args.data, args.observations, policy.config.cameras)
        source = {"dataset": str(args.data)}
    else:
        obs = rollout_observations(args.env, args.observations, EVAL_SEED_BASE)
        source = {"env": args.env, "policy": "scripted", "first_seed": EVAL_SEED_BASE}
    report = {"export": str(args.out), "checkpoint": str(args.policy),
              "vocab_hash": meta["vocab_hash"], "source": source,
              **parity_report(policy, TorchEngine(policy.model, device="cpu"), onnx, obs)}
    (args.out / "parity.json").write_text(json.dumps(report, indent=2))
    if not report["parity"]:
        print("warning: ONNX is NOT at parity with torch (see parity.json)", file=sys.stderr)
    print(json.dumps(report))
    return 0
