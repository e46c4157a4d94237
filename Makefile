# Every target bootstraps .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Meta-World's own venv: it pins mujoco==3.3.0, motoken runs MuJoCo 4 (envs/metaworld/__init__.py).
MW_VENV  := .venv-metaworld
MW_STAMP := $(MW_VENV)/.installed
MW_REQS  := envs/metaworld/requirements.txt

.PHONY: run test test-all lint bench clean metaworld

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
	rm -rf $(VENV) $(MW_VENV) *.egg-info .pytest_cache
