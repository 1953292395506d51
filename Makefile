# `make demo` and `make test` are all a fresh machine needs (python3 with venv and pip).
# The demo installs only what it needs (the `demo` extra); the tests add their tools.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
DOCS_STAMP := $(VENV)/.installed-docs
TEST_STAMP := $(VENV)/.installed-test
PIP := $(PY) -m pip install --disable-pip-version-check

.PHONY: demo local-aws test quick bench docs clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(PY)
	@echo "== installing iam-sudo and what the demo needs (a first run takes 2-3 minutes)"
	$(PIP) -e '.[demo]'
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	@echo "== installing iam-sudo and the test tools (a first run takes 3-5 minutes)"
	$(PIP) -e '.[test]'
	touch $@ $(DEMO_STAMP) $(DOCS_STAMP)

$(DOCS_STAMP): pyproject.toml | $(PY)
	@echo "== installing iam-sudo and what the docs need"
	$(PIP) -e '.[docs]'
	touch $@

demo: $(DEMO_STAMP)
	$(PY) -m devtools.demo

# The demo's local AWS, left running for the README's examples: prints what to export.
local-aws: $(DEMO_STAMP)
	$(PY) -m devtools.localaws --demo

# CI runs this: the manual first (seconds; its strict build fails on a broken link or
# reference), then the tests.
test: $(TEST_STAMP)
	$(PY) -m mkdocs build --strict
	$(PY) -m pytest

# The manual as a site, in site/ (not kept in git).
docs: $(DOCS_STAMP)
	$(PY) -m mkdocs build --strict

# The quick local loop, under 2 minutes on 2 cores: the unit tests (tests/unit/) and the
# integration tests that need no local AWS and take seconds (CI runs `make test`, all of them).
quick: $(TEST_STAMP)
	$(PY) -m pytest -m 'not slow and not aws'

bench: $(TEST_STAMP)
	$(PY) -m benchmarks.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
