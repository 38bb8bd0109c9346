#!/usr/bin/env bash
# Installs the Debian packages the lab and the interop tests use (strongSwan's charon with
# kernel-libipsec, Kea, FreeRADIUS, iproute2). Idempotent.
set -euo pipefail
pkgs=(
    strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
    libcharon-extauth-plugins kea-dhcp6-server iproute2 iputils-ping iperf3 procps util-linux
    nftables
    freeradius
    bind9 bind9-dnsutils kea-dhcp-ddns-server
    kea-admin  # perfdhcp (relay-bench)
)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    if [ ! -x /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
