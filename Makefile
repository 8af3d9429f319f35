# R-CNN Lens. `make run` starts the app on the shipped demo; `make test` runs the tests.
# Both create .venv/ and install the project into it when missing or when pyproject.toml changed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-core bench train eval lint sysdeps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# the demo model unless ARGS name one (the app itself starts on the model it used last)
run: $(STAMP)
	@bash .ci/sysdeps.sh window || true
	$(BIN)/rcnn-lens $(if $(findstring --model,$(ARGS)),,--model demo --weights demo) $(ARGS)

test: $(STAMP)
	@bash .ci/sysdeps.sh test || true
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

test-core: $(STAMP)
	$(BIN)/python -m pytest tests/core $(PYTEST_ARGS)

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m tests.bench

train: $(STAMP)
	$(BIN)/python -m core.demo.train --out assets/demo_shapes.pt $(TRAIN_ARGS)

eval: $(STAMP)
	$(BIN)/python -m core.demo.evaluate --weights demo --out assets/demo_eval.json

lint: $(STAMP)
	$(BIN)/ruff check core gui tests
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) .pytest_cache
