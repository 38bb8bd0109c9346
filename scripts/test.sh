#!/usr/bin/env bash
# Runs every test: unit, known-answer, engine-against-engine and the interop tests in network
# namespaces against strongSwan's charon (needs root and the packages of scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The interop tests share the host's /run bind-mount trick and UDP ports inside their own
# namespaces; run them one at a time so two charons never compete for the same CPU-bound timers.
cargo nextest run --workspace --locked --no-fail-fast --test-threads 2
