"""experiments/ scripts are not a package: tests load them by path."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def load_experiment(study: str, name: str) -> ModuleType:
    """experiments/STUDY/NAME.py as a module (its main() is not run)."""
    path = EXPERIMENTS / study / f"{name}.py"
    if not path.is_file():
        studies = sorted(p.name for p in EXPERIMENTS.iterdir() if p.is_dir())
        raise FileNotFoundError(f"no experiment script {path}; studies: {studies}")
    spec = importlib.util.spec_from_file_location(f"experiments_{study}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
