"""The import graph: imports only go down, no package reaches another's private names, no cycles.

Layers, top to bottom (a package may import only packages of a lower rank):

    agent                          the CLI and the runtime
    policies                       models, inference, training, the video wing
    dataset                        LeRobotDataset v3.0 files
    envs, action_codec             Gymnasium envs (simulated and over the bridge); codecs
    hw_bridge                      the robot side and the wire: runs on a robot PC
    sims                           physics, tasks, robot models
    checkpoints                    shipped weights (data)

Every import counts: module-level, inside functions, and `importlib.import_module("...")`
with a literal name, since a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RANK = {"agent": 6, "policies": 5, "dataset": 4, "envs": 3, "action_codec": 3,
        "hw_bridge": 2, "sims": 1, "checkpoints": 0}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.append((base, [a.name for a in node.names], node.lineno))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append((node.args[0].value, [], node.lineno))
    return out


def _edges() -> list[tuple[str, str, list[str], str]]:
    """(importing module, imported module, names, 'file:line') within our packages."""
    edges = []
    for pkg in RANK:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            src = _module_name(path)
            for target, names, line in _imports(path):
                if target.split(".")[0] in RANK:
                    edges.append((src, target, names, f"{path.relative_to(ROOT)}:{line}"))
    return edges


def test_imports_only_go_down():
    upward = [f"{where}: {src} imports {dst}" for src, dst, _, where in _edges()
              if src.split(".")[0] != dst.split(".")[0]
              and RANK[dst.split(".")[0]] >= RANK[src.split(".")[0]]]
    assert not upward, "imports that do not go down a layer:\n" + "\n".join(upward)


def test_no_private_names_across_packages():
    private = []
    for src, dst, names, where in _edges():
        if src.split(".")[0] == dst.split(".")[0]:
            continue
        hidden = [n for n in names if n.startswith("_")]
        hidden += [p for p in dst.split(".") if p.startswith("_") and not p.startswith("__")]
        private += [f"{where}: {src} takes {h} from {dst}" for h in hidden]
    assert not private, "private names used across packages:\n" + "\n".join(private)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    modules = {_module_name(p) for pkg in RANK for p in (ROOT / pkg).rglob("*.py")}
    for src, dst, names, _ in _edges():
        # `from pkg import mod` imports the submodule pkg.mod where there is one.
        targets = [f"{dst}.{n}" for n in names if f"{dst}.{n}" in modules] or [dst]
        for t in targets:
            if t in modules and t != src:
                graph.setdefault(src, set()).add(t)
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # A package's __init__ importing its own submodules is how packages work, not a cycle.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_checker_sees_lazy_and_importlib_imports(tmp_path):
    f = tmp_path / "mod.py"
    f.write_text("import importlib\n\ndef g():\n    from agent.cli import main\n"
                 "    importlib.import_module('policies.registry')\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        got = {m for m, _, _ in _imports(f)}
    finally:
        ROOT = saved
    assert {"agent.cli", "policies.registry"} <= got
    assert _find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


# What the robot's PC needs at run time (README, "Deployment"): the bridge, the simulator and
# the wire, and the CLI's entry module; OpenGL comes with MuJoCo's renderer. Plus, imported
# lazily by the one part that needs each (optional extras): pylibfranka (the franka driver's
# libfranka binding; its Franka Hand child process imports it too), cv2 and pyrealsense2 (cameras
# attached with `--camera`, extras `cameras` and `realsense`, imported when such a camera connects).
ROBOT_SIDE = {"agent", "hw_bridge", "sims", "numpy", "zmq", "msgpack", "mujoco", "OpenGL",
              "pylibfranka", "cv2", "pyrealsense2"}
SERVE = ["bridge", "serve", "--robot", "sim:pick_place", "--bind", "tcp://127.0.0.1:*",
         "--duration", "0.3"]


@pytest.mark.parametrize("argv", [SERVE, ["bridge", "status", "--help"]])
def test_the_robot_side_runs_without_the_policy_stack(argv):
    """`agent bridge ...` on a robot PC imports nothing beyond ROBOT_SIDE: no torch, no policy,
    dataset or env code, so the robot PC installs only those packages."""
    code = ("import json, sys\nfrom agent.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "top = {m.split('.')[0] for m in sys.modules if not m.startswith('_')}\n"
            "print('LOADED', json.dumps(sorted(top - set(sys.stdlib_module_names)\n"
            "                                  - {'cython_runtime'})))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    line = [x for x in out.stdout.splitlines() if x.startswith("LOADED")]
    assert len(line) == 1, out.stdout[-2000:] + out.stderr[-2000:]
    loaded = set(json.loads(line[0].removeprefix("LOADED ")))
    assert loaded <= ROBOT_SIDE, f"the robot side also imports {sorted(loaded - ROBOT_SIDE)}"
    assert "hw_bridge" in loaded
    if argv is SERVE:
        assert "READY tcp://127.0.0.1:" in out.stdout  # the server really started
