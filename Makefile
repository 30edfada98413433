# The two commands of the README: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# uvicorn worker processes: one per core, as measured in docs/performance.md.
WORKERS ?= 2
DATA   ?= ../shared/data/mnist.npz

.PHONY: run test lint typecheck pytest container-lint deploy-lint train evaluate bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps: reinstall only when pyproject.toml changes.
$(VENV)/.runtime: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.dev: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@ $(VENV)/.runtime

# Workers share their metrics through files in a fresh directory (prometheus_client's multiprocess mode).
run: $(VENV)/.runtime
	PROMETHEUS_MULTIPROC_DIR=$$(mktemp -d) $(BIN)/uvicorn --factory app.main:create_app --host $(HOST) --port $(PORT) --workers $(WORKERS) \
		--loop uvloop --http httptools --no-access-log --timeout-graceful-shutdown 20

test: lint typecheck container-lint deploy-lint pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy app model tests bench tools

container-lint: $(VENV)/.dev
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

# Kubernetes manifests (kustomize, schemas), Prometheus rules, HAProxy configuration; needs
# kubectl, promtool and haproxy (Debian packages kubectl, prometheus, haproxy).
deploy-lint: $(VENV)/.dev
	tools/check-deploy.sh

pytest: $(VENV)/.dev
	$(BIN)/pytest

# The committed models: the seed recipe (v3) and the shipped U-Net (v4), with the same epoch budget.
# About 1.5 h on 2 CPU cores; on a GPU machine, KERAS_BACKEND=jax and then python -m model.export.
train: $(VENV)/.dev
	$(BIN)/python -m model.train --arch seed --data $(DATA) --epochs 80 --out model/artifacts/denoiser/3
	$(BIN)/python -m model.train --arch unet-xl --data $(DATA) --epochs 80 --out model/artifacts/denoiser/4

# Rewrites docs/model.md, docs/model.json, the comparison figure and each model card's metrics.
evaluate: $(VENV)/.dev
	$(BIN)/python -m model.evaluate --data $(DATA) --md docs/model.md --json docs/model.json \
		--figure docs/figures/comparison.png --update-card

# Rewrites docs/benchmarks.{md,json,png}; needs wrk (Debian package).
bench: $(VENV)/.dev
	$(BIN)/python -m bench.run

# Rewrites docs/figures/screenshot-{docs,demo}.png; needs Debian's chromium.
screenshots: $(VENV)/.dev
	$(BIN)/python tools/screenshots.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
