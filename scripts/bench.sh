#!/usr/bin/env bash
# The system benchmarks of issue 6 in the namespace lab, one after the other on this machine,
# each next to what an operator would use instead, in the same run:
#   bootstrap latency  (bench-bootstrap: ours, DHCPv6 and Mode Config paths, vs charon IKEv1 + Mode Config)
#   ESP throughput     (throughput: iperf3 through our tunnel, charon's libipsec tunnel, the bare veth)
#   home-agent capacity (load-gen: N mobile nodes against one mip6-ha with Kea)
#   relay overhead     (relay-bench: Kea through mip6-ha's relay vs perfdhcp straight to Kea)
# Prints every table and writes them to OUT/summary.txt, with the raw figures next to it.
#
#   bash scripts/bench.sh [OUT]          (default OUT: target/bench-<date>)
#
# Environment: RUNS (bootstrap runs, default 20), SIZES (load-gen, default 100,1000,10000),
# MICRO=1 also runs the criterion micro-benchmarks (about 10 minutes more).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-$(date -u +%Y%m%dT%H%M%SZ)}
runs=${RUNS:-20}
sizes=${SIZES:-100,1000,10000}
mkdir -p "$out"
out=$(cd "$out" && pwd)
summary=$out/summary.txt

bash scripts/install-deps.sh
cargo build --release --locked --workspace --bins

{
    echo "mip6-bootstrap benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} | tee "$summary"

section() {
    printf '\n== %s ==\n' "$1" | tee -a "$summary"
}

bin=${CARGO_TARGET_DIR:-target}/release
section "bootstrap latency ($runs runs each)"
"$bin/bench-bootstrap" "$runs" "$out/bench-bootstrap.txt" | tee -a "$summary"
section "ESP throughput"
"$bin/throughput" --out "$out/throughput.json" | tee -a "$summary"
section "relay overhead"
"$bin/relay-bench" --out "$out/relay-bench.json" | tee -a "$summary"
section "home-agent capacity (N = $sizes)"
"$bin/load-gen" --sizes "$sizes" --window 128 --out "$out/load-gen.json" | tee -a "$summary"

if [ "${MICRO:-0}" = 1 ]; then
    section "micro-benchmarks (criterion)"
    # criterion's results go to stdout, its progress to stderr.
    for b in "isakmp codec" "ikev1 phase1" "esp esp" "dhcp6-relay relay"; do
        read -r crate bench <<<"$b"
        cargo bench --locked -p "$crate" --bench "$bench" -- --noplot 2>/dev/null | tee -a "$summary"
    done
fi
printf '\ntables: %s\nraw figures: %s\n' "$summary" "$out"
