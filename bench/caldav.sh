#!/bin/sh
# Suite 1: the CalDAV workload of issue 6 against Tocsin, Xandikos,
# Radicale and Cyrus, one after the other, in one run.
#
#     bench/caldav.sh PEERS_DIR [tocsin_bench dav options…]
#
# PEERS_DIR is where bench/install_peers.sh installed the peers. Builds the
# release binary and the benchmark first (one job, so a shared machine
# stays usable). Figures: stdout, and bench/out/caldav.json.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${1:?usage: caldav.sh PEERS_DIR [options]}
shift
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
cd "$ROOT"
cargo build --release -q -p tocsin --bin tocsin --example tocsin_bench
mkdir -p bench/out
exec "$CARGO_TARGET_DIR/release/examples/tocsin_bench" dav \
    --bin "$CARGO_TARGET_DIR/release/tocsin" --peers "$PEERS" \
    --json bench/out/caldav.json "$@"
