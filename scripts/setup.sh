#!/usr/bin/env bash
# Installs everything skiff's build, tests and CLI need on a fresh Debian (bookworm) machine,
# as root: Debian packages (apt-get), then npm packages and the build (`npm ci` runs `prepare`:
# the TAP addon with node-gyp, then tsup). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Node.js >= 20.19 (package.json "engines") must already be installed: this script does not
# install it, and Debian 12's own nodejs package is 18.x, too old.
NODE_MIN=20.19
node_help="install Node.js ${NODE_MIN} or newer first: NodeSource's Debian packages (https://github.com/nodesource/distributions, e.g. the node_22.x repository) or the official tarball (https://nodejs.org/en/download); Debian 12's nodejs package is 18.x, too old"
if ! node_version=$(node -p 'process.versions.node' 2>/dev/null); then
  echo "setup: node is not installed (or does not run): $node_help" >&2
  exit 1
fi
IFS=. read -r node_major node_minor _ <<<"$node_version"
if ((node_major < 20 || (node_major == 20 && node_minor < 19))); then
  echo "setup: node $node_version is too old (skiff needs >= ${NODE_MIN}): $node_help" >&2
  exit 1
fi

# What each package is for:
#   iproute2            ip netns / ip link for namespaces and TAP setup (skiff run, tests)
#   iputils-ping        ping, the kernel peer in end-to-end tests and the quick start
#   iputils-arping      arping in end-to-end tests
#   tshark              oracle for pcap tests (brings capinfos, editcap)
#   tcpdump ethtool busybox-static udhcpc dnsmasq-base bind9-dnsutils curl
#                       fixtures/pcaps/record.sh (re-recording the fixtures) and end-to-end tests
#   python3 make g++    node-gyp build of the TAP addon (native/)
#   rootlesskit         e2e: skiff vpnkit as RootlessKit's --vpnkit-binary (Debian's build has
#                       its vpnkit driver compiled out; the test then skips and says so)
#   qemu-system-x86     qemu-system-x86_64 for `skiff vm` and its end-to-end test (the guest
#                       image itself is built from linux-image-amd64 and busybox-static with
#                       `apt-get download` by `skiff vm image build`, never installed here)
#   cpio                oracle for the initramfs writer's unit test (cpio -t)
#   socat               test/native/addon.test.ts: a datagram from an unbound sender
#                       (UNIX-SENDTO); without it that test skips
#   nftables            nft: random loss on a link's ingress for the TCP-under-loss bench rows and
#                       e2e test (this kernel has no sch_netem; netdev-family nftables is built in)
#   uidmap              newuidmap/newgidmap: `skiff run` as a user maps its /etc/subuid ranges;
#                       RootlessKit and rootless Podman need them (rootless e2e tests)
#   slirp4netns         the rootless e2e tests run each scenario with the real slirp4netns too,
#                       to check themselves; bench rows compare against it
#   ndisc6              rdisc6: e2e tests read skiff's router advertisements (RDNSS, DNSSL) as a
#                       guest's tool sees them
#   podman runc         e2e and bench: rootless Podman with skiff as its slirp4netns (runc, as
#                       Debian 12's crun 1.8 refuses hosts with cgroups in hybrid mode)
#   gcc libc6-dev       test/guest/*.c (posix-check, fsx, fsbench), compiled statically and run
#                       in the guest by the share e2e tests and bench/share.ts
#   diod                the userspace 9P server skiff's share is compared with (e2e and bench;
#                       the tests start their own on loopback; its service stays disabled,
#                       DIOD_ENABLE=false in /etc/default/diod)
PACKAGES=(iproute2 iputils-ping iputils-arping tshark tcpdump ethtool busybox-static udhcpc
  dnsmasq-base bind9-dnsutils curl python3 make g++ rootlesskit qemu-system-x86 cpio socat nftables
  uidmap slirp4netns podman runc gcc libc6-dev diod ndisc6)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# docker.io: the host's docker CLI (/usr/bin/docker), the client of `skiff docker` and of its
# end-to-end test (Debian 12 ships the CLI only inside docker.io). Its dockerd must not start
# on the host: when no policy-rc.d exists, one that denies service starts is in place for the
# install only; on a systemd machine the units are then disabled.
if ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q "install ok installed"; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to install: docker.io (for its docker CLI)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  temp_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    temp_policy=1
  fi
  apt-get install -y -qq --no-install-recommends docker.io
  [[ -n $temp_policy ]] && rm -f /usr/sbin/policy-rc.d
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable --now docker.service docker.socket containerd.service >/dev/null 2>&1 || true
  fi
fi

# Node's headers for the addon build: Debian's nodejs ships them in /usr/include/node; the
# official tarball layout has them next to the binary. node-gyp is told where via nodedir.
nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [[ -f "$nodedir/include/node/node_api.h" ]]; then
  export npm_config_nodedir="$nodedir"
fi

npm ci --no-audit --no-fund
