#!/usr/bin/env bash
# Inspects and cleans the interop tests' namespace labs (crates/testlab) by hand.
#
#   scripts/lab.sh list          labs present: namespaces, directory, owner test process alive?
#   scripts/lab.sh clean         removes labs whose owner process is gone (what Lab::new does for
#                                its own name hint, for every hint)
#   scripts/lab.sh clean --all   also removes labs of running tests (they will fail)
#
# Processes are stopped by PID only: those recorded in <lab dir>/pids (if their start time still
# matches) and those inside the lab's namespaces (ip netns pids). Needs root.
set -euo pipefail

root=${MIP6_LAB_ROOT:-/tmp/mip6-lab}
prefix=m6lab-

# Lab names (m6lab-<hash>-<pid>-<seq>) from the namespaces and the lab directories.
labs() {
    {
        ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix" | sed -E 's/-(mn|ha|dhcp)$//' || true
        [ -d "$root" ] && find "$root" -mindepth 1 -maxdepth 1 -type d -name "$prefix*" -printf '%f\n'
    } | sort -u
}

owner_pid() { echo "$1" | awk -F- '{print $3}'; }

# Start time (field 22 of /proc/PID/stat) or empty.
start_time() { [ -r "/proc/$1/stat" ] && sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{print $20}' || true; }

# Alive = exists and not a zombie.
alive() { [ -r "/proc/$1/stat" ] && ! sed -E 's/^.*\) //' "/proc/$1/stat" | grep -q '^[ZX]'; }

owner_alive() {
    local lab=$1 pid want
    pid=$(owner_pid "$lab")
    alive "$pid" || return 1
    want=$(awk '{print $2}' "$root/$lab/owner" 2>/dev/null || true)
    [ -z "$want" ] || [ "$want" = 0 ] || [ "$(start_time "$pid")" = "$want" ]
}

stop_pids() {
    local pids=("$@") p
    [ ${#pids[@]} -gt 0 ] || return 0
    for p in "${pids[@]}"; do alive "$p" && kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 30); do
        local any=0
        for p in "${pids[@]}"; do alive "$p" && any=1; done
        [ $any = 0 ] && return 0
        sleep 0.1
    done
    for p in "${pids[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
}

remove_lab() {
    local lab=$1 pids=() pid start name ns
    if [ -f "$root/$lab/pids" ]; then
        while read -r pid start name; do
            [ -n "$pid" ] || continue
            if [ "$start" = 0 ] || [ "$(start_time "$pid")" = "$start" ]; then pids+=("$pid"); fi
        done < "$root/$lab/pids"
    fi
    stop_pids "${pids[@]}"
    for ns in "$lab-mn" "$lab-ha" "$lab-dhcp"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
            stop_pids "${pids[@]}"
            ip netns del "$ns"
        fi
    done
    rm -rf "${root:?}/$lab"
    echo "removed $lab"
}

case "${1:-list}" in
list)
    for lab in $(labs); do
        state=gone
        owner_alive "$lab" && state=running
        nss=$(ip netns list | awk '{print $1}' | grep -c "^$lab-" || true)
        dir=no
        [ -d "$root/$lab" ] && dir=yes
        echo "$lab owner=$(owner_pid "$lab")($state) namespaces=$nss dir=$dir"
    done
    ;;
clean)
    for lab in $(labs); do
        if [ "${2:-}" != --all ] && owner_alive "$lab"; then
            echo "keeping $lab (its test is running)"
            continue
        fi
        remove_lab "$lab"
    done
    ;;
*)
    sed -n '2,10p' "$0"
    exit 2
    ;;
esac
