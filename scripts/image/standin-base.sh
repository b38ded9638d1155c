#!/usr/bin/env bash
# Makes a local stand-in for the Dockerfile's FROM image (node:20-bookworm-slim) without a registry:
# a Debian bookworm minbase rootfs from Debian's own packages (mmdebstrap), with the official image's
# "slim" dpkg excludes and apt snippets, plus this machine's Node >= 20 binary and npm.
# Prints the path of a rootfs tarball cached under $MESHCAP_CACHE (default /var/cache/meshcap-test),
# keyed by this script and the Node binary, so re-runs cost nothing; builds it when missing.
set -euo pipefail

cache=${MESHCAP_CACHE:-/var/cache/meshcap-test}
node_bin=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
[ -f "$npm_dir/package.json" ] || { echo "standin-base: cannot find npm's directory (got $npm_dir)" >&2; exit 3; }
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "standin-base: the stand-in needs Node >= 20 (found $("$node_bin" --version))" >&2; exit 3; }

key=$( { sha256sum "$0" "$node_bin" | cut -d' ' -f1; "$node_bin" --version; cat "$npm_dir/package.json" | sha256sum; } | sha256sum | cut -c1-16)
out="$cache/standin-node20-bookworm-slim-$key.tar"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$cache"
tmp="$out.partial.$$"
trap 'rm -f "$tmp"' EXIT

# The official image's apt configuration (debuerreotype): no .deb cache kept, no translations.
apt_clean='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";'

echo "standin-base: building $out (mmdebstrap bookworm minbase + Node $("$node_bin" --version))" >&2
mmdebstrap --variant=minbase --mode=root --format=tar --quiet \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --customize-hook="install -D -m 0755 '$node_bin' \"\$1/usr/local/bin/node\"" \
  --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\" && cp -a '$npm_dir' \"\$1/usr/local/lib/node_modules/npm\"" \
  --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
  --customize-hook='chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
  --customize-hook="printf '%s\n' '$apt_clean' > \"\$1/etc/apt/apt.conf.d/docker-clean\"" \
  --customize-hook='echo "Acquire::Languages \"none\";" > "$1/etc/apt/apt.conf.d/docker-no-languages"' \
  --customize-hook='echo "Acquire::GzipIndexes \"true\";" > "$1/etc/apt/apt.conf.d/docker-gzip-indexes"' \
  --customize-hook='echo "Apt::AutoRemove::SuggestsImportant \"false\";" > "$1/etc/apt/apt.conf.d/docker-autoremove-suggests"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$tmp" \
  'deb http://deb.debian.org/debian bookworm main' \
  'deb http://deb.debian.org/debian bookworm-updates main' \
  'deb http://deb.debian.org/debian-security bookworm-security main'
mv "$tmp" "$out"
trap - EXIT
echo "$out"
