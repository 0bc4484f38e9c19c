#!/bin/sh
# Suite 2: alarm timing (issue 4): lateness, burst and index size, each
# against a fresh `tocsin serve` with its webhook pointed at a receiver in
# the benchmark process.
#
#     bench/alarms.sh [lateness|burst|index|all] [tocsin_bench options…]
#
# Builds first (one job). Figures: stdout, and bench/out/alarms-*.json.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHICH=${1:-all}
[ $# -gt 0 ] && shift
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
cd "$ROOT"
cargo build --release -q -p tocsin --bin tocsin --example tocsin_bench
mkdir -p bench/out
BENCH="$CARGO_TARGET_DIR/release/examples/tocsin_bench"
run() {
    name=$1
    shift
    echo "== alarms-$name"
    "$BENCH" "alarms-$name" --bin "$CARGO_TARGET_DIR/release/tocsin" \
        --json "bench/out/alarms-$name.json" "$@"
}
case $WHICH in
    lateness|burst|index) run "$WHICH" "$@" ;;
    all) run lateness "$@"; run burst "$@"; run index "$@" ;;
    *) echo "usage: alarms.sh [lateness|burst|index|all] [options]" >&2; exit 2 ;;
esac
