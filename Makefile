# tinykube: the two commands a user needs are `make up` and `make test` (see README.md).
# Every target is idempotent; once everything is installed a second run does no network work.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
# Debian's interpreter: it is what a user's Debian machine or a Vagrant box has (pyenv may not be there).
BASE_PY   ?= /usr/bin/python3
STAMPS    := .make
DATA_DIR  ?= /var/lib/tinykube
PYTEST_ARGS ?=

# Debian packages the project uses at run time and in its tests (see ../shared/ENVIRONMENT.md).
APT_PACKAGES := python3-venv python3-dev iptables nftables conntrack ipset ipvsadm busybox-static \
	containernetworking-plugins etcd-server docker-registry crun runc vagrant shellcheck
# The IPVS kernel lab boots a stock Debian kernel under qemu (issue 10).
APT_LAB_PACKAGES := qemu-system-x86 linux-image-amd64

PROTOS    := $(wildcard cri/proto/*.proto)
PROTO_GEN := $(patsubst cri/proto/%.proto,cri/api/gen/%_pb2.py,$(PROTOS))

.PHONY: help deps apt venv proto up test lint typecheck pytest unit kernel-lab clean

help:
	@echo "make up    - install what is missing, start a single-node cluster (foreground)"
	@echo "make test  - install what is missing, run ruff, mypy and the whole test suite"

deps: apt venv proto

apt: $(STAMPS)/apt.stamp
$(STAMPS)/apt.stamp: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES) $(APT_LAB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

venv: $(STAMPS)/venv.stamp
$(STAMPS)/venv.stamp: pyproject.toml $(STAMPS)/apt.stamp
	@test -x $(PY) || $(BASE_PY) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[test,bench]'
	@touch $@

# gRPC stubs are generated from our own .proto files, never committed.
proto: $(PROTO_GEN)
cri/api/gen/%_pb2.py: cri/proto/%.proto $(STAMPS)/venv.stamp
	@mkdir -p cri/api/gen && touch cri/api/gen/__init__.py
	$(PY) -m grpc_tools.protoc -Icri/proto --python_out=cri/api/gen --pyi_out=cri/api/gen \
		--grpc_python_out=cri/api/gen $<
	@sed -i -E 's/^import (\w+_pb2) as/from . import \1 as/' cri/api/gen/*_pb2_grpc.py

up: deps
	$(PY) -m tinykube up --data-dir $(DATA_DIR)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: deps
	$(VENV)/bin/mypy

# The whole suite runs inside private net/mount/pid namespaces (tests/support/isolate.sh) so nothing
# a test does can reach the host's routes, rules, bridges or mounts; tests make their own netns inside.
pytest: deps
	@bash tests/support/run_pytest.sh $(PY) $(PYTEST_ARGS)

unit: deps
	@bash tests/support/run_pytest.sh $(PY) tests/unit $(PYTEST_ARGS)

test: lint typecheck pytest

# Runs CMD (default: the IPVS integration tests) in a qemu guest with a stock Debian kernel.
KERNEL_LAB_CMD ?= $(PY) -m pytest -p no:cacheprovider -p no:hypothesispytest tests/integration/ipvs
kernel-lab: deps
	$(PY) -m tinykube lab kernel -m ip_vs -m ip_vs_rr -- $(KERNEL_LAB_CMD)

clean:
	rm -rf $(VENV) $(STAMPS) cri/api/gen .mypy_cache .pytest_cache .ruff_cache
