# The verbs users type. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SCAN_VENV := .venv-scan
LAYERS := network storage compute orchestration
# This machine's pip config names local indexes that hold only some packages; drop its noise.
PIP_FILTER := 2>&1 | { grep -v '^WARNING: Location' || true; }

export ENVIRONMENT_SUFFIX := $(or $(ENVIRONMENT_SUFFIX),dev)
export LOCAL ?= 0
export LOCAL_PORT ?= 4566
export LOCAL_ENDPOINT ?= http://127.0.0.1:$(LOCAL_PORT)
# jsii warns on every run that Node 20 is past end of life; it accepts only the major version.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null)

# Offline Terraform: a filesystem mirror of the providers, as air-gapped shops keep one.
# Found automatically at /opt/tf-plugins; set TF_PROVIDER_MIRROR=<dir> for another place,
# or TF_PROVIDER_MIRROR= (empty) to download from the registry.
TF_PROVIDER_MIRROR ?= $(firstword $(wildcard /opt/tf-plugins))
TF_RC := build/terraform.rc
export TF_CLI_CONFIG_FILE := $(abspath $(TF_RC))
export TF_PLUGIN_CACHE_DIR := $(abspath build/terraform-plugins)
export TF_IN_AUTOMATION := 1
# Plans (pull requests, the drift check) and deploys of one environment share its state lock:
# wait for it a while instead of failing at once.
export TF_CLI_ARGS_plan := -lock-timeout=5m
export TF_CLI_ARGS_apply := -lock-timeout=5m
export TF_CLI_ARGS_destroy := -lock-timeout=5m

ifeq ($(LOCAL),1)
TARGET_NAME := the local emulator at $(LOCAL_ENDPOINT)
export AWS_ENDPOINT_URL := $(LOCAL_ENDPOINT)
export AWS_ACCESS_KEY_ID := test
export AWS_SECRET_ACCESS_KEY := test
export AWS_REGION ?= us-east-2
export AWS_DEFAULT_REGION ?= us-east-2
NEEDS_EMULATOR := local-up
else
TARGET_NAME := AWS
NEEDS_EMULATOR :=
endif

SYNTH_INPUTS := app.py cdktf.json requirements.txt handlers/requirements.txt \
	$(shell find stacks pipeline_constructs handlers -type d -name __pycache__ -prune -o \( -type d -o -name '*.py' -o -name '*.txt' \) -print 2>/dev/null)
# Where synthesis writes: one directory per environment, so each keeps its own Terraform
# working directories and none can be initialized against another's state. Named like its
# state in .state/ (environment_name in stacks/base.py): dev on AWS, local-dev on the emulator.
ENVIRONMENT := $(if $(filter 1,$(LOCAL)),local-)$(ENVIRONMENT_SUFFIX)
CDKTF_OUT ?= cdktf.out/$(ENVIRONMENT)
export CDKTF_OUTDIR := $(CDKTF_OUT)
SYNTH_SETTINGS := build/synth-settings-$(subst /,-,$(CDKTF_OUT)).env
SYNTH_DONE := $(CDKTF_OUT)/manifest.json

.PHONY: help install browser synth test test-fast test-e2e scan bench lint lint-workflows clean demo local-up local-down \
	deploy destroy plan drift \
	FORCE

help:
	@echo "make install              Python venvs, cdktf-cli (npm, in the project), Terraform offline config, Chromium"
	@echo "make demo                 deploy all four layers to a local emulator and run two jobs"
	@echo "make test                 the whole test suite (what CI runs)"
	@echo "make test-fast            the suite without the end-to-end tests (what a pull request runs)"
	@echo "make test-e2e             the end-to-end tests alone (local deployments)"
	@echo "make lint                 ruff, and actionlint over the workflows"
	@echo "make synth                synthesize cdktf.out/<environment>/stacks/{$(LAYERS)} (skipped when nothing changed)"
	@echo "make plan-<layer>         terraform plan of one layer ($(LAYERS))"
	@echo "make plan                 plan every layer; per layer, 'no changes' or what would change"
	@echo "make drift                the same, failing when any layer would change (drift check)"
	@echo "make deploy-<layer>       deploy one layer; LOCAL=1 targets the emulator"
	@echo "make destroy-<layer>      destroy one layer"
	@echo "make deploy | destroy     all layers, in order (destroy in reverse)"
	@echo "                          ENVIRONMENT_SUFFIX=<name> picks the environment; LOCAL=1 the emulator"
	@echo "make scan                 checkov over the synthesized stacks"
	@echo "make bench                benchmarks -> docs/benchmarks.md"
	@echo "make local-up | local-down  start / stop the local emulator"

# ---------------------------------------------------------------- install
install: $(VENV)/.installed $(SCAN_VENV)/.installed node_modules/.installed $(TF_RC) browser

# Chromium from Debian's packages, for the job report's test in a real headless browser and the
# README's screenshot (tests/e2e/test_operator_view.py). Installed when missing on Debian as root
# (CI); elsewhere install it yourself, and set CHROMIUM=<path> when it is not `chromium` on PATH.
export CHROMIUM ?= $(or $(shell command -v chromium 2>/dev/null),/usr/bin/chromium)
browser:
	@command -v "$(CHROMIUM)" >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "apt-get install chromium (Debian's package: the report's browser test)"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  else \
	    echo "make install: no Chromium at '$(CHROMIUM)'; the report's browser test needs one" \
	      "(Debian: sudo apt-get install chromium; elsewhere set CHROMIUM=<path>)" >&2; exit 1; \
	  fi; }

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt $(PIP_FILTER)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e . $(PIP_FILTER)
	$(PY) -c 'import importlib.util as u; assert all(u.find_spec(m) for m in ("cdktf", "cdktf_cdktf_provider_aws", "moto", "pytest"))'
	@touch $@

$(SCAN_VENV)/.installed: requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-scan.txt $(PIP_FILTER)
	$(SCAN_VENV)/bin/checkov --version >/dev/null
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(TF_RC): FORCE
	@mkdir -p build $(TF_PLUGIN_CACHE_DIR)
	@{ echo 'plugin_cache_dir = "$(TF_PLUGIN_CACHE_DIR)"'; \
	  if [ -n "$(TF_PROVIDER_MIRROR)" ]; then \
	    echo 'provider_installation {'; \
	    echo '  filesystem_mirror {'; \
	    echo '    path    = "$(TF_PROVIDER_MIRROR)"'; \
	    echo '    include = ["registry.terraform.io/hashicorp/*"]'; \
	    echo '  }'; \
	    echo '  direct { exclude = ["registry.terraform.io/hashicorp/*"] }'; \
	    echo '}'; \
	  fi; } > $@.$$$$; \
	cmp -s $@.$$$$ $@ && rm $@.$$$$ || mv $@.$$$$ $@

# ---------------------------------------------------------------- synth
# Rewritten only when a setting that changes the output changes, so Make can skip synth.
$(SYNTH_SETTINGS): FORCE
	@mkdir -p build
	@env | grep -E '^(ENVIRONMENT_SUFFIX|LOCAL|LOCAL_ENDPOINT|AWS_REGION|LAMBDA_RUNTIME|LAMBDA_RESERVED_CONCURRENCY|LOG_RETENTION_DAYS|REJECT_THRESHOLD|RETRY_INTERVAL_SECONDS|RETRY_MAX_ATTEMPTS|TABLE_DELETION_PROTECTION|FORCE_DESTROY_BUCKETS|OBJECT_LOCK_RETENTION_YEARS|GLUE_ENDPOINT_ZONES|ALERT_EMAIL|TF_STATE_BUCKET|PIPELINE_[A-Z_]+)=' | sort > $@.$$$$; \
	cmp -s $@.$$$$ $@ && rm $@.$$$$ || mv $@.$$$$ $@

$(SYNTH_DONE): $(VENV)/.installed $(SYNTH_INPUTS) $(SYNTH_SETTINGS)
	$(PY) app.py
	@touch $@

synth: $(SYNTH_DONE)
	@echo "synthesized $(CDKTF_OUT)/stacks/{$(LAYERS)} for $(ENVIRONMENT_SUFFIX) on $(TARGET_NAME)"

# ---------------------------------------------------------------- layers
TF = terraform -chdir=$(CDKTF_OUT)/stacks/$*
TF_INIT = $(TF) init -input=false -no-color >/dev/null || $(TF) init -input=false

plan-%: $(SYNTH_DONE) $(TF_RC) $(NEEDS_EMULATOR)
	@$(TF_INIT)
	$(TF) plan -input=false

deploy-%: $(SYNTH_DONE) $(TF_RC) $(NEEDS_EMULATOR)
	@echo "== deploying $* ($(ENVIRONMENT_SUFFIX)) to $(TARGET_NAME)"
	@$(TF_INIT)
	$(TF) apply -input=false -auto-approve

destroy-%: $(SYNTH_DONE) $(TF_RC) $(NEEDS_EMULATOR)
	@echo "== destroying $* ($(ENVIRONMENT_SUFFIX)) on $(TARGET_NAME)"
	@$(TF_INIT)
	$(TF) destroy -input=false -auto-approve

deploy: $(addprefix deploy-,$(LAYERS))

# Every layer (release/plans.py); the report is also kept, for the pull request's comment.
PLAN_REPORT ?= build/plans/$(ENVIRONMENT).txt
plan drift: $(SYNTH_DONE) $(TF_RC) $(NEEDS_EMULATOR)
	@echo "== $@ of $(ENVIRONMENT_SUFFIX) on $(TARGET_NAME)"
	@$(PY) release/plans.py $(CDKTF_OUT)/stacks $(LAYERS) --report $(PLAN_REPORT) $(if $(filter drift,$@),--drift)

destroy:
	@$(MAKE) --no-print-directory $(addprefix destroy-,orchestration compute storage network)

# ---------------------------------------------------------------- checks
# Every suite at once: each of the three end-to-end groups (tests/e2e/conftest.py) keeps one
# worker and its own copy of the project, and the other suites share the fourth. The end-to-end
# groups mostly wait on Terraform and the emulator, so four workers fit two cores. The slowest
# tests are listed at the end, to keep the budget in sight.
TEST_WORKERS ?= 4
test: install lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25

test-fast: install lint
	$(PY) -m pytest -m "not e2e"

test-e2e: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m e2e

lint: $(VENV)/.installed lint-workflows
	$(PY) -m ruff check .

# The workflow files: actionlint (requirements.txt says which build and why), with shellcheck
# on every run: script, named here so the result does not depend on what PATH holds.
WORKFLOWS ?= $(wildcard .github/workflows/*.yml)
lint-workflows: $(VENV)/.installed
	$(VENV)/bin/actionlint -no-color -shellcheck=$(abspath $(VENV)/bin/shellcheck) $(WORKFLOWS)

# The same gate as tests/security/test_scan_gate.py (skips and reasons: checkov/config.yaml).
scan: $(SYNTH_DONE) $(SCAN_VENV)/.installed
	$(SCAN_VENV)/bin/python checkov/run_gate.py $(CDKTF_OUT)/stacks

bench: install
	@mkdir -p build/bench
	$(PY) bench/bench_synth.py --markdown-out build/bench/synth.md
	$(PY) bench/bench_deploy.py --markdown-out build/bench/deploy.md
	$(PY) bench/bench_chunks.py --work-dir build/bench/files --markdown-out build/bench/chunks.md
	$(PY) bench/bench_load.py --markdown-out build/bench/load.md
	$(PY) bench/bench_hostile.py --markdown-out build/bench/hostile.md
	$(PY) bench/bench_operator.py --markdown-out build/bench/operator.md
	$(PY) bench/report.py build/bench > docs/benchmarks.md
	@echo "wrote docs/benchmarks.md"

# ---------------------------------------------------------------- local emulator
local-up: $(VENV)/.installed
	@$(PY) -m local.launcher up --port $(LOCAL_PORT)

local-down:
	@$(PY) -m local.launcher down --port $(LOCAL_PORT)

demo: install
	@$(MAKE) --no-print-directory LOCAL=1 deploy
	@LOCAL=1 AWS_ENDPOINT_URL=$(LOCAL_ENDPOINT) AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
		AWS_REGION=$${AWS_REGION:-us-east-2} $(PY) -m local.demo

clean:
	rm -rf cdktf.out build/functions build/e2e build/plans build/synth-settings-*.env .pytest_cache

FORCE:
