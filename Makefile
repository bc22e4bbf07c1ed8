# The only install procedure. `make test` and `make run` both start with `setup`, which is idempotent.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTHON ?= python3

# Debian packages the app and its tests use
APT_PACKAGES := tshark iproute2 iptables dnsmasq-base openssh-server openssh-client ncat tmux \
	bpftool shellcheck procps psmisc util-linux tcpdump mininet bridge-utils \
	clang llvm libbpf-dev libbpf1 linux-libc-dev sudo

.PHONY: setup apt venv run test lint unit snapshots-test snapshots bench clean

setup: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "apt: installing$$missing"; \
		echo "wireshark-common wireshark-common/install-setuid boolean false" | $(SUDO) debconf-set-selections; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

run: setup
	@if [ "$$(id -u)" = 0 ]; then $(BIN)/labyrinth; else sudo $(BIN)/labyrinth; fi

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q -p no:cacheprovider --ignore=tests/snapshot
	$(BIN)/pytest -q -p no:cacheprovider tests/snapshot

snapshots: setup
	$(BIN)/pytest -q tests/snapshot --snapshot-update

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) bench/lib/goals.py; $(PY) $$b || { echo "make bench: $$b missed a goal (see above)"; exit 1; }; done

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache snapshot_report.html
