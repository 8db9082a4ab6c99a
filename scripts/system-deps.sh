#!/usr/bin/env bash
# Installs the Debian packages vxland's demo or tests need, only those that
# are missing (so a second run does not touch apt). Needs root.
#   scripts/system-deps.sh demo   ip/bridge, ping, ethtool: enough for npm run demo
#   scripts/system-deps.sh test   everything npm test uses (what .ci/run installs)
#
# iproute2: ip/bridge (netns, veth, kernel vxlan); iputils-ping: ping;
# ethtool: checksum offload of kernel peers' veths; iperf3: throughput;
# tcpdump, tshark: captures; procps: sysctl; kmod: modprobe; util-linux:
# setpriv (control socket permission test, the daemon run as the unit
# runs it); clang + libclang-rt-14-dev:
# libFuzzer with AddressSanitizer (scripts/fuzz.sh); systemd: only for
# `systemd-analyze verify` and `security` of the unit file (installing the package does not
# make it PID 1, and its maintainer scripts skip reloading when it is not);
# etcd-server, etcd-client: a real etcd v3 (and etcdctl) for the membership
# tests and the etcd benchmark (test/helpers/etcd.ts starts it inside test
# namespaces; the package's own service is not used); dpkg-dev: dpkg-shlibdeps
# for `npm run package:deb`; man-db: `man -w vxland` after the .deb is
# installed (test/package.test.ts).
set -euo pipefail

case "${1:-}" in
  demo) PKGS=(iproute2 iputils-ping ethtool) ;;
  test) PKGS=(iproute2 iputils-ping ethtool iperf3 tcpdump tshark procps kmod util-linux clang libclang-rt-14-dev systemd etcd-server etcd-client dpkg-dev man-db) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

missing=()
for p in "${PKGS[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark: do not ask whether non-root users may capture (no setuid dumpcap).
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/vxland-apt.log 2>&1 \
  || { tail -n 50 /tmp/vxland-apt.log; exit 1; }
