#!/usr/bin/env bash
# Makes a local stand-in for debian:bookworm-slim, the Dockerfile's runtime base, without a registry:
# a Debian bookworm minbase rootfs from Debian's own packages (mmdebstrap), with the official image's
# "slim" dpkg excludes and apt snippets. build.sh adds this machine's Node >= 20 and npm on top for the
# build stage's node:20-bookworm-slim, as the official node image is made from debian:bookworm-slim.
# Prints the path of a rootfs tarball cached under $MESHCAP_CACHE (default /var/cache/meshcap-test),
# keyed by this script, so re-runs cost nothing; builds it when missing.
set -euo pipefail

cache=${MESHCAP_CACHE:-/var/cache/meshcap-test}
key=$(sha256sum "$0" | cut -c1-16)
out="$cache/standin-debian-bookworm-slim-$key.tar"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$cache"
tmp="$out.partial.$$"
trap 'rm -f "$tmp"' EXIT

# The official image's apt configuration (debuerreotype): no .deb cache kept, no translations.
apt_clean='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";'

echo "standin-base: building $out (mmdebstrap bookworm minbase)" >&2
mmdebstrap --variant=minbase --mode=root --format=tar --quiet \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
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
