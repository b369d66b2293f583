# Tollgate — every command a user or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# sam build needs an interpreter matching the Lambda runtime (python3.13) on PATH.
PYENV_313 ?= 3.13.0

# Offline AWS settings for the template checks: sam validate makes one credential lookup.
OFFLINE_AWS := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	AWS_SESSION_TOKEN=testing AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0 \
	SAM_CLI_CONTEXTS=0

.PHONY: help
help: ## list the commands
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml layers/tollgate/requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r layers/tollgate/requirements.txt
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install
install: $(VENV)/.installed ## create .venv and install everything (idempotent)

.PHONY: local
local: install ## run the whole system on this machine (moto + Bedrock stand-in + API on :3000)
	$(BIN)/tollgate local

.PHONY: test
test: lint template-check ## every check CI runs: lint, types, template, sam build, all tests
	$(BIN)/python -m tollgate_local.sample_events --check
	$(BIN)/python -m pytest

.PHONY: lint
lint: install ## ruff (lint + format) and mypy on the domain package
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/tollgate/tollgate

.PHONY: template-check
template-check: install ## sam validate --lint, cfn-lint and sam build with python3.13
	PATH=$(CURDIR)/$(BIN):$$PATH $(OFFLINE_AWS) $(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml
	$(MAKE) --no-print-directory build

.PHONY: build
build: install ## tollgate config check (in REGION, else the region sam deploy uses), then sam build (python3.13)
	$(BIN)/tollgate config check $(if $(REGION),--region $(REGION))
	PATH=$(CURDIR)/$(BIN):$$PATH PYENV_VERSION=$(PYENV_313) $(OFFLINE_AWS) $(BIN)/sam build

.PHONY: deploy
deploy: install ## check config.json/models.json (priced in REGION, else the region sam deploy uses), sam build, sam deploy --guided (needs AWS credentials)
	$(BIN)/tollgate config check $(if $(REGION),--region $(REGION))
	PATH=$(CURDIR)/$(BIN):$$PATH PYENV_VERSION=$(PYENV_313) SAM_CLI_TELEMETRY=0 $(BIN)/sam build
	PATH=$(CURDIR)/$(BIN):$$PATH SAM_CLI_TELEMETRY=0 $(BIN)/sam deploy --guided

# `make delete STACK=name REGION=region` (defaults: samconfig.toml's stack name; AWS_REGION or the profile's);
# `make build` / `make deploy REGION=region` check that models.json prices every profile in that region.
STACK ?= tollgate
REGION ?=

.PHONY: delete
delete: install ## sam delete the stack, then list what is kept on purpose (data tables, bucket, config layers) and how to remove it
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m tollgate_cli.teardown --stack $(STACK) $(if $(REGION),--region $(REGION))

.PHONY: load
load: install ## send a workload to the running local stack and print the report
	$(BIN)/tollgate load --local
	$(BIN)/tollgate report --local

.PHONY: e2e
e2e: install ## only the end-to-end tests (they start their own local stack)
	$(BIN)/python -m pytest -m e2e

.PHONY: bench
bench: install ## benchmarks: hot-path AWS calls and CPU per request, aggregation cost, latencies on the local stack
	$(BIN)/python -m benchmarks.run

.PHONY: events
events: install ## regenerate events/ from the sample data
	$(BIN)/python -m tollgate_local.sample_events

.PHONY: format
format: install ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: clean
clean: ## remove build output and local state (keeps .venv)
	rm -rf .aws-sam .tollgate .pytest_cache .mypy_cache .ruff_cache .hypothesis
