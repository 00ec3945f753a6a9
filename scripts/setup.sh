#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: Debian packages, npm packages,
# the forwarder's binaries.
# A second run finds everything in place, installs nothing and takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the project starts or calls (each issue adds its own).
DEBS=(
  prometheus                 # prometheus, promtool
  prometheus-alertmanager    # alertmanager, amtool
  prometheus-node-exporter
  redis-server
  jsonnet                    # jsonnet, jsonnetfmt
  libgstreamer1.0-dev        # the forwarder (C): headers, pkg-config file
  gstreamer1.0-plugins-base  # what plugins-good builds on; opusenc, videotestsrc (the injection's encoded source)
  gstreamer1.0-plugins-good  # udpsrc, multiudpsink, rtpssrcdemux; vp8enc, rtpvp8pay, rtpopuspay
  gstreamer1.0-tools         # gst-launch-1.0: the injection's encoder, the forwarder bench's baseline
  pkg-config                 # pkg-config, gcc, make, libc6-dev build forwarder/
  gcc
  make
  libc6-dev
  systemd                    # systemd-analyze: verifies deploy/systemd/ units
  nftables                   # loss faults inside network namespaces (no sch_netem here)
  iproute2                   # ip netns, veth, tc tbf
  chromium                   # the browser test: the player page decodes the tree's media (driven by playwright-core)
  janus                      # Janus 1.1.2, the seed's media server: canopy bench egress's baseline (its service is never started)
)

missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  # Packaged services must not grab the default ports; Canopy starts its own copies.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
  # Debian's janus.service serves demo mountpoints on UDP 5002/5004 (the forwarder's default ports) and
  # HTTP 8088; the egress bench starts its own Janus, so the packaged one is stopped and stays off.
  if [[ " ${missing[*]} " == *" janus "* ]] && [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now janus.service || true
  fi
fi

command -v node >/dev/null || { echo "setup: Node.js 20.6 or newer is required (node not found)" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=6)?0:1)' ||
  { echo "setup: Node.js 20.6 or newer is required, found $(node --version)" >&2; exit 1; }

# npm ci only when package-lock.json changed since the last install.
stamp=node_modules/.canopy-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi

# The forwarder and the forwarder bench's load tool; a no-op when the binaries are up to date.
make -s -C forwarder
make -s -C bench
