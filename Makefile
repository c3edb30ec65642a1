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
lint: install ## Check style and formatting with ruff
	ruff check .
	ruff format --check .

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
