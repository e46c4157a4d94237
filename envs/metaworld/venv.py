"""Where Meta-World's own Python lives: `.venv-metaworld` (built by `make metaworld`).

Nothing is installed at run time: an env made without that venv fails at once, saying how to
build it. `MOTOKEN_METAWORLD_PYTHON` points at another interpreter that has the packages of
requirements.txt (for a venv kept elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

from envs.errors import EnvError

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-metaworld"
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
WORKER = Path(__file__).with_name("worker.py")
PYTHON_ENV_VAR = "MOTOKEN_METAWORLD_PYTHON"


class MetaWorldNotInstalledError(EnvError):
    """No interpreter with Meta-World (and its pinned MuJoCo) to run the worker."""


def worker_python() -> Path:
    """The interpreter that runs envs/metaworld/worker.py.

    Raises:
        MetaWorldNotInstalledError: neither $MOTOKEN_METAWORLD_PYTHON nor .venv-metaworld
            exists; the message says how to build it.
    """
    override = os.environ.get(PYTHON_ENV_VAR)
    if override:
        path = Path(override)
        if not path.is_file():
            raise MetaWorldNotInstalledError(f"${PYTHON_ENV_VAR}={override} is not a file")
        return path
    path = VENV / "bin" / "python"
    if not path.is_file():
        raise MetaWorldNotInstalledError(
            f"metaworld: envs run Meta-World in its own venv (it pins MuJoCo 3.3.0, motoken "
            f"runs MuJoCo 4) and {VENV} does not exist; build it once with `make metaworld` "
            f"(python3 -m venv {VENV.name} && {VENV.name}/bin/pip install -r "
            f"{REQUIREMENTS.relative_to(ROOT)}), or set ${PYTHON_ENV_VAR}")
    return path
