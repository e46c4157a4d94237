# Every target bootstraps .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Meta-World's own venv: it pins mujoco==3.3.0, motoken runs MuJoCo 4 (envs/metaworld/__init__.py).
MW_VENV  := .venv-metaworld
MW_STAMP := $(MW_VENV)/.installed
MW_REQS  := envs/metaworld/requirements.txt

.PHONY: run test test-all test-franka franka-sim lint bench clean metaworld

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "motoken needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: 2.13.0 resolves to the CPU build on our machines; installing it
	# before the project keeps pip from choosing a multi-GB CUDA build for the range.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: $(STAMP)  ## watch the default policy do pick-and-place in MuJoCo
	$(BIN)/agent run --env mujoco:pick_place

test: $(STAMP) $(MW_STAMP)  ## the default test suite (slow tests excluded; Meta-World's venv too)
	MUJOCO_GL=egl $(BIN)/python -m pytest -q

test-all: $(STAMP) $(MW_STAMP)  ## every test, slow ones included
	MUJOCO_GL=egl $(BIN)/python -m pytest -q -m ''

# franka-sim (libfranka's protocol on MuJoCo) pins mujoco<3.3 and numpy==1.26.4, so it gets a
# venv of its own; it is a TCP server, the driver under test talks to it over loopback.
.venv-franka-sim/.installed:
	$(PYTHON) -m venv .venv-franka-sim
	.venv-franka-sim/bin/python -m pip install -q 'franka-sim==1.1.7'
	touch $@

franka-sim: .venv-franka-sim/.installed  ## the franka-sim server venv for test_franka_sim.py

test-franka: $(STAMP) .venv-franka-sim/.installed  ## the franka driver against franka-sim
	$(BIN)/python -m pip install -q -e '.[franka]'
	MUJOCO_GL=egl $(BIN)/python -m pytest -q -m slow tests/hw_bridge/test_franka_sim.py

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	MUJOCO_GL=egl $(BIN)/python bench/loop.py

$(MW_STAMP): $(MW_REQS)
	$(PYTHON) -m venv $(MW_VENV)
	$(MW_VENV)/bin/python -m pip install -q -r $(MW_REQS)
	touch $@

metaworld: $(MW_STAMP)  ## the venv that `metaworld:` envs run Meta-World in

clean:
	rm -rf $(VENV) $(MW_VENV) .venv-franka-sim *.egg-info .pytest_cache
