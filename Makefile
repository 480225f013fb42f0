# Every target creates .venv/ in the repo root when missing and installs the project into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv install test test-rust test-python lint fmt wheel demo bench crate-check clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

venv: $(BIN)/python

# Editable install: maturin compiles rust/reward_core_py (the PyO3 binding over the pure-Rust
# rust/reward_core) into python/dareu/_reward_core*.so.
# The development install also builds the test-only hooks (feature test-hooks); wheels never do.
$(STAMP): $(BIN)/python pyproject.toml Cargo.toml Cargo.lock $(wildcard rust/*/Cargo.toml) $(shell find rust -name '*.rs' 2>/dev/null)
	MATURIN_PEP517_ARGS="--features test-hooks" $(BIN)/pip install -e ".[dev,deepspeed]"
	@touch $(STAMP)

install: $(STAMP)

test-rust:
	cargo test --workspace

test-python: install
	$(BIN)/python -m pytest -q

test: test-rust test-python

lint: install
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings
	$(BIN)/ruff check python scripts tests
	$(BIN)/ruff format --check python scripts tests
	$(BIN)/mypy

fmt:
	cargo fmt --all
	$(BIN)/ruff format python scripts tests
	$(BIN)/ruff check --fix python scripts tests

# An abi3 wheel (CPython >= 3.10) for another machine, e.g. a GPU host: dist/dareu-*-cp310-abi3-*.whl
wheel: $(BIN)/python
	$(BIN)/pip install "maturin>=1.5,<2"
	$(BIN)/maturin build --release --out dist

# The main job on the embedded default (no arguments).
demo: install
	$(BIN)/accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no scripts/unlearn.py

bench: install
	$(BIN)/python scripts/bench_reward_core.py

# The pure-Rust crate is ready for crates.io: the files that would be published, then the
# packaged crate built on its own (a dry run: nothing is uploaded).
crate-check:
	cargo package --list -p reward_core --allow-dirty
	cargo publish --dry-run -p reward_core --allow-dirty

clean:
	rm -rf $(VENV) target dist
