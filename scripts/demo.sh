#!/usr/bin/env bash
# The bootstrap demo in network namespaces (needs root): installs strongSwan/Kea/iproute2 if
# missing, builds the workspace, then runs `demo` (tests/src/bin/demo.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --workspace --locked
exec ./target/release/demo
