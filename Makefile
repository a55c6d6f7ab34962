# Two entry points on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# CPU wheel of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
DEMO_HOME ?= demo-home
export HF_HUB_OFFLINE ?= 1

.PHONY: install postgres chromium demo test test-slow bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	LAYERWISE_HOME=$(DEMO_HOME) bash examples/demo.sh $(BIN)/layerwise

# The PostgreSQL tests start their own server on loopback; this only installs Debian's package.
postgres:
	@if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's postgresql for the PostgreSQL tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "PostgreSQL is missing and this is not root: its tests will be skipped"; fi; \
	fi

# The web page test drives Debian's headless Chromium through its chromedriver.
chromium:
	@if ! command -v chromedriver >/dev/null || ! { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium and chromium-driver for the web page test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "Chromium is missing and this is not root: the web page test will be skipped"; fi; \
	fi

test: install postgres chromium
	$(PY) -m pytest -q tests

test-slow: install
	$(PY) -m pytest -q -m slow tests

clean:
	rm -rf $(VENV) $(DEMO_HOME)
