#!/usr/bin/env bash
# Runs every test of Tocsin: formatting, lints, the Rust suites, and the
# end-to-end suites with real clients against the built binary.
#
# It installs what the tests need itself: a Python virtual environment in
# .venv with the packages pinned in tests/requirements.txt (real CalDAV
# clients, an SMTP server, the recurrence oracle).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export TOCSIN_PYTHON="$PWD/.venv/bin/python"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo nextest (build once, run every Rust suite)"
cargo nextest run --workspace --no-fail-fast

step "end-to-end suites: real clients against target/debug/tocsin"
cargo build --quiet -p tocsin
TOCSIN_BIN="$PWD/target/debug/tocsin" .venv/bin/python -m pytest -q tests/e2e

step "all tests passed"
