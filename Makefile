# shopchat: `make run` starts everything, `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := setup

PYENV_ROOT := $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PY310 ?= $(PYENV_ROOT)/versions/3.10.13/bin/python3.10
PY311 ?= $(shell command -v python3.11 || echo $(PYENV_ROOT)/versions/3.11.7/bin/python3.11)

VENV := .venv
RASA_VENV := .venv-rasa
SHOPCHAT := $(VENV)/bin/shopchat

export HF_HUB_OFFLINE := 1
export RASA_TELEMETRY_ENABLED := false

.PHONY: setup train run test check lint bench clean

# The app venv (Python 3.11): the project, editable, with test tools.
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x "$(PY311)" || { echo "error: Python 3.11 not found (looked for $(PY311)); set PY311=/path/to/python3.11"; exit 1; }
	test -x $(VENV)/bin/python || $(PY311) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

# Rasa's venv (Python 3.10, pyenv's 3.10.13): rasa only.
$(RASA_VENV)/.installed: requirements-rasa.txt constraints-rasa.txt
	@test -x "$(PY310)" || { echo "error: Python 3.10.13 not found at $(PY310). Install it with 'pyenv install 3.10.13' or set PY310=/path/to/python3.10"; exit 1; }
	test -x $(RASA_VENV)/bin/python || $(PY310) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-rasa.txt -c constraints-rasa.txt
	touch $@

setup: $(VENV)/.installed $(RASA_VENV)/.installed

# Trains only when config.yml, bot/domain.yml or data/ changed; re-embeds only
# the knowledge-base articles that changed.
train: setup
	$(SHOPCHAT) train
	$(SHOPCHAT) kb build

run: train
	$(SHOPCHAT) up

test: train
	$(VENV)/bin/python -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The fast tier (under a minute): lint, types, and every test that needs neither
# a trained model, the running stack nor a browser. Run it on every change.
# - tests/test_code_quality.py runs ruff and mypy again inside pytest: `make test` has
#   it, here lint has just done both.
# - Python's bytecode cache is kept even where PYTHONDONTWRITEBYTECODE is set: without
#   it every worker (and every gateway a test starts) compiles each module it imports,
#   and pytest rewrites each test file, again: about 3 s of CPU a worker.
# - Test files (every test's SQLite databases) go to tmpfs where there is one: no test
#   is about fsync, whose time on a shared disk varies tenfold.
# - worksteal: the long tests (restarts, the fuzz run) do not pile up on one worker.
CHECK_TMPDIR := $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm)
check: lint
	PYTHONDONTWRITEBYTECODE= $(if $(CHECK_TMPDIR),TMPDIR=$(CHECK_TMPDIR)) \
	$(VENV)/bin/python -m pytest -q -n 2 --dist worksteal -m "not stack and not slow" \
		-p no:cacheprovider --hypothesis-profile=fast --ignore=tests/test_code_quality.py

# kb_fusion.py also measures candidate encoders the bot does not use (the kb-bench extra).
bench: train
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,kb-bench]'
	$(VENV)/bin/python bench/bot_turn.py
	$(VENV)/bin/python bench/agent_relay.py
	$(VENV)/bin/python bench/kb_search.py
	$(VENV)/bin/python bench/kb_fusion.py --use --e5
	$(VENV)/bin/python bench/train.py

clean:
	rm -rf $(VENV) $(RASA_VENV) models var .pytest_cache .mypy_cache .ruff_cache
