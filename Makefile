# Every target creates .venv/ in the repo root when missing and installs the project into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv install test test-rust test-python lint fmt wheel wheel-aarch64 wheel-check demo bench crate-check clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

venv: $(BIN)/python

# Two distributions (README, "Installation"): `dareu-reward-core` (rust/reward_core_py: maturin
# compiles the PyO3 binding over the pure-Rust rust/reward_core into
# dareu_reward_core/_reward_core*.so, numpy its only dependency) and `dareu` (pure Python,
# hatchling), which depends on it. Editable installs of both, the core first.
# The development install also builds the test-only hooks (feature test-hooks); wheels never do.
# A dareu/_reward_core*.so left by the single-distribution build would shadow
# dareu/_reward_core.py (now an alias of dareu_reward_core._reward_core): it is removed.
CORE := rust/reward_core_py
$(STAMP): $(BIN)/python pyproject.toml $(CORE)/pyproject.toml Cargo.toml Cargo.lock $(wildcard rust/*/Cargo.toml) $(shell find rust -name '*.rs' 2>/dev/null)
	MATURIN_PEP517_ARGS="--features test-hooks" $(BIN)/pip install -e ./$(CORE)
	rm -f python/dareu/_reward_core*.so
	$(BIN)/pip install -e ".[dev,deepspeed]"
	@touch $(STAMP)

install: $(STAMP)

test-rust:
	cargo test --workspace

# Two pytest-xdist workers (this machine has 2 cores); --dist loadfile keeps a file's tests
# on one worker, so module fixtures are built once.
test-python: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

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

# Wheels for other machines (README, "Installation"), into dist/:
#   dareu_reward_core-*-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl: the Rust core,
#     one wheel for every CPython >= 3.10 on any x86_64 Linux with glibc >= 2.17 (zig links
#     against glibc 2.17 whatever this machine's glibc is);
#   dareu-*-py3-none-any.whl: the pure-Python rest, for every machine.
# `make wheel-aarch64` cross-builds the core for aarch64 Linux into dist/aarch64/ (its Rust
# standard library comes from `rustup target add`, which needs static.rust-lang.org once).
# `make wheel-check` runs `auditwheel show` on them and fails unless the policy is manylinux2014.
# maturin finds zig as `python3 -m ziglang` on PATH: the venv's (ziglang is installed there).
MATURIN_WHEEL := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/maturin build --release --zig --compatibility manylinux2014 -m $(CORE)/Cargo.toml
WHEEL_TOOLS := $(VENV)/.wheel-tools

$(WHEEL_TOOLS): $(BIN)/python
	$(BIN)/pip install "maturin>=1.5,<2" "ziglang>=0.11" "auditwheel>=6" "hatchling>=1.26"
	@touch $(WHEEL_TOOLS)

wheel: $(WHEEL_TOOLS)
	rm -f dist/dareu-*.whl dist/dareu_reward_core-*.whl
	$(MATURIN_WHEEL) --out dist
	$(BIN)/pip wheel --no-deps --wheel-dir dist .

wheel-aarch64: $(WHEEL_TOOLS)
	rustup target add aarch64-unknown-linux-gnu
	rm -f dist/aarch64/dareu_reward_core-*.whl
	$(MATURIN_WHEEL) --target aarch64-unknown-linux-gnu --out dist/aarch64

# The policy auditwheel finds from the symbols the .so really uses, not just the file name.
wheel-check: wheel
	@set -e; for w in dist/dareu_reward_core-*.whl $(wildcard dist/aarch64/dareu_reward_core-*.whl); do \
		$(BIN)/auditwheel show $$w | tee $(VENV)/.auditwheel.txt; \
		grep -q 'manylinux_2_17_' $(VENV)/.auditwheel.txt || { echo "$$w: not manylinux2014" >&2; exit 1; }; \
		case $$w in *manylinux2014_*) ;; *) echo "$$w: no manylinux2014 tag" >&2; exit 1;; esac; \
	done

# The main job on the embedded default (no arguments).
demo: install
	$(BIN)/accelerate launch --config_file python/dareu/configs/accelerate_single.yaml scripts/unlearn.py

bench: install
	$(BIN)/python scripts/bench_reward_core.py

# The pure-Rust crate is ready for crates.io: the files that would be published, then the
# packaged crate built on its own (a dry run: nothing is uploaded).
crate-check:
	cargo package --list -p reward_core --allow-dirty
	cargo publish --dry-run -p reward_core --allow-dirty

clean:
	rm -rf $(VENV) target dist
