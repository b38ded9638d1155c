#!/usr/bin/env bash
# Installs what meshcap needs on a fresh Debian machine (as root), then builds it.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pair in iptables:iptables ip6tables:iptables nft:nftables ip:iproute2 socat:socat setpriv:util-linux flock:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# The runtime tier (test/runtime, the image build): a private containerd with runc, the CNI plugins,
# and mmdebstrap + buildah to build the image without a registry.
for pair in containerd:containerd ctr:containerd runc:runc mmdebstrap:mmdebstrap buildah:buildah; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages (${missing[*]}); run this as root so apt-get can install them" >&2
    exit 3
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: meshcap needs Node.js >= 20 (found $(node --version))" >&2
  exit 3
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
npm run --silent build
# The single executable: istio-init's fast start, and what `meshcap cni install` copies to a node as
# the CNI plugin. The suite needs it, so a node that cannot build one fails here, saying why.
node scripts/build-sea.mjs 2>&1 | grep -v "^warning: Can't find string offset" >&2 || true
[ -x dist/sea/meshcap ] || { echo "setup: no single executable was built (see above); the CNI tests need it" >&2; exit 3; }
