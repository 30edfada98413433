# The two commands of the README: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# uvicorn worker processes: one per core, as measured in docs/performance.md.
WORKERS ?= 2
DATA   ?= ../shared/data/mnist.npz

.PHONY: run test system-tools lint typecheck pytest container-lint deploy-lint train evaluate bench measure screenshots clean

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
		--loop uvloop --http app.protocol:HttpProtocol --no-access-log --timeout-graceful-shutdown 20

test: system-tools lint typecheck container-lint deploy-lint pytest

# Chromium, promtool and HAProxy for the checks that use them: installed as root on Debian,
# otherwise those checks are skipped with a line saying so (tools/system-tools.sh).
system-tools:
	tools/system-tools.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy app model tests bench tools

container-lint: $(VENV)/.dev
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

# Kubernetes manifests (kustomize, schemas), Prometheus rules, HAProxy configuration: kubectl from
# the dev extra; promtool and haproxy where installed (tools/system-tools.sh).
deploy-lint: $(VENV)/.dev
	tools/check-deploy.sh

pytest: $(VENV)/.dev
	$(BIN)/pytest

# The committed models, as their cards record them: the seed recipe (v3) and v9: unet-xl trained on
# MNIST with v4's command (its card: 80 epochs, patience 10; on a GPU with JAX), then with shape
# and noise shifts, then with plain MNIST mixed back in (v5's and v6's denoiser; docs/model-design.md),
# with the digit scorer (eleven classes: the ten digits and 'not a digit'; it reads the model input
# beside the denoised image of the highest version in the tree, v5's weights either way) trained on font designs
# split whole (model/fonts.py lists the Debian fonts-* packages it read; without them it trains on
# matplotlib's designs only), exported with the serving
# signature OpenVINO reads, quantized to INT8 for it, and checked on the serving engines. Hours on 2 CPU cores; on a GPU
# machine, KERAS_BACKEND=jax, then export here.
train: $(VENV)/.dev
	$(BIN)/python -m model.train --arch seed --data $(DATA) --epochs 80 --patience 10 --out model/artifacts/denoiser/3
	$(BIN)/python -m model.train --arch unet-xl --data $(DATA) --epochs 80 --patience 10 --no-export --out runs/unet-xl
	$(BIN)/python -m model.train --arch unet-xl --augment --init-from runs/unet-xl --learning-rate 3e-4 \
		--data $(DATA) --epochs 10 --no-export --out runs/unet-xl-robust
	$(BIN)/python -m model.train --arch unet-xl --augment --plain-share 0.5 --init-from runs/unet-xl-robust \
		--learning-rate 1e-4 --data $(DATA) --epochs 3 --no-export --out runs/unet-xl-robust-mix
	$(BIN)/python -m model.train --arch unet-xl --augment --plain-share 0.7 --init-from runs/unet-xl-robust-mix \
		--learning-rate 5e-5 --data $(DATA) --epochs 3 --no-export --out model/artifacts/denoiser/5
	$(BIN)/python -m model.export model/artifacts/denoiser/5 --data $(DATA)
	$(BIN)/python -m model.anomaly --data $(DATA) --epochs 35 --batches 200 --per-group 300 --digits-flagged 0.02 \
		--out runs/anomaly-v9
	$(BIN)/python -m model.export model/artifacts/denoiser/9 --from-version model/artifacts/denoiser/5 \
		--scorer runs/anomaly-v9 --data $(DATA)
	$(BIN)/python -m model.quantize model/artifacts/denoiser/9 --data $(DATA)
	$(BIN)/python -m model.serving_check model/artifacts/denoiser/9 --data $(DATA) --update-card
	rm -r model/artifacts/denoiser/5

# Rewrites docs/model.md, docs/model.json, the comparison figure and each model card's metrics.
evaluate: $(VENV)/.dev
	$(BIN)/python -m model.evaluate --data $(DATA) --md docs/model.md --json docs/model.json \
		--figure docs/figures/comparison.png --update-card

# Rewrites docs/benchmarks.{md,json,png}; needs wrk (Debian package).
bench: $(VENV)/.dev
	$(BIN)/python -m bench.run

# Every committed bench output that records the served model, one after another (about an hour on
# 2 cores; run nothing else meanwhile): when a new version is served, tests/test_docs.py names each
# output still measuring the old one, and these rewrite them. Needs wrk, haproxy and podman
# (tools/system-tools.sh; ../shared/tools/container-check --images-only). bench.scale exits 1 when
# one of its targets is missed, so it goes last.
measure: bench
	$(BIN)/python -m bench.micro
	$(BIN)/python -m bench.quantize --data $(DATA)
	$(BIN)/python -m bench.crash --runs 3
	$(BIN)/python -m bench.pages --data $(DATA)
	$(BIN)/python -m bench.numbers --data $(DATA)
	$(BIN)/python -m bench.overload
	$(BIN)/python -m bench.scale

# Rewrites docs/figures/screenshot-{docs,demo}.png; needs Debian's chromium.
screenshots: $(VENV)/.dev
	$(BIN)/python tools/screenshots.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
