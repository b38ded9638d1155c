#!/usr/bin/env bash
# Builds meshcap's image from the Dockerfile as written, with no registry: buildah (--pull=never) over a
# local stand-in for its FROM images (standin-base.sh: debian:bookworm-slim; node:20-bookworm-slim is that
# plus this machine's Node >= 20 and npm, made here). Exports it as a docker-archive tagged with the
# name `meshcap inject` writes (ghcr.io/meshcap/meshcap:<version>), for `ctr images import`.
#
#   scripts/image/build.sh [--fresh] [--plain]
#                                         prints the archive path; builds only when the build context
#                                         (Dockerfile, package files, src, bin, the build scripts: what the Dockerfile copies) changed
#   --plain                               the Dockerfile's fallback (--build-arg MESHCAP_SEA=0: node and the one-file
#                                         build, no single executable), tagged <name>:<version>-plain
#   MESHCAP_CACHE=/var/cache/meshcap-test  where the stand-in base and the archives are kept
#
# Also writes <archive>.size: the image's compressed size (gzip layers, as a registry stores it).
# Buildah runs with a private storage root that is removed afterwards, pass or fail; build steps use the
# host network only to reach the npm registry and Debian's mirror, and get no capabilities to touch it.
set -euo pipefail
cd "$(dirname "$0")/../.."
fresh=false
plain=false
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=true ;;
    --plain) plain=true ;;
    *) echo "image: unknown option $arg (use --fresh, --plain)" >&2; exit 2 ;;
  esac
done

cache=${MESHCAP_CACHE:-/var/cache/meshcap-test}
mkdir -p "$cache/images"
base_tar=$(bash scripts/image/standin-base.sh)
node_bin=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
[ -f "$npm_dir/package.json" ] || { echo "image: cannot find npm's directory (got $npm_dir)" >&2; exit 3; }
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "image: the build stage needs Node >= 20 (found $("$node_bin" --version))" >&2; exit 3; }
version=$(node -p 'require("./package.json").version')
tag="ghcr.io/meshcap/meshcap:$version"
variant=""
build_args=()
if $plain; then tag="$tag-plain"; variant="-plain"; build_args=(--build-arg MESHCAP_SEA=0); fi
key=$( { echo "$variant"; basename "$base_tar"; sha256sum "$node_bin" "$npm_dir/package.json" | cut -d' ' -f1; find Dockerfile .dockerignore package.json package-lock.json tsconfig.json src bin scripts/cjs-bundle.mjs scripts/bundle.mjs scripts/build-sea.mjs -type f -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
out="$cache/images/meshcap-$version$variant-$key.tar"

# One builder per build context; other contexts (other checkouts) build alongside.
exec 9>"$out.lock"
flock 9
if ! $fresh && [ -s "$out" ] && [ -s "$out.size" ]; then touch "$out"; echo "$out"; exit 0; fi

work=$(mktemp -d /tmp/meshcap-image-build.XXXXXX)
b() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
cleanup() {
  b rm --all >/dev/null 2>&1 || true
  b rmi --all --force >/dev/null 2>&1 || true
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The stand-in FROM images, tagged with the Dockerfile's FROM names: Debian slim, and node on top of it
# (node's binary and npm where the official image puts them, and its `node` user).
ctr=$(b from --pull=never scratch)
b add --quiet "$ctr" "$base_tar" / >/dev/null
b config --env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --cmd bash "$ctr"
b commit --quiet --rm "$ctr" docker.io/library/debian:bookworm-slim >/dev/null
ctr=$(b from --pull=never docker.io/library/debian:bookworm-slim)
b copy --quiet "$ctr" "$node_bin" /usr/local/bin/node >/dev/null
b copy --quiet "$ctr" "$npm_dir" /usr/local/lib/node_modules/npm >/dev/null
b run --network none "$ctr" -- sh -c 'ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
b config --env "NODE_VERSION=$("$node_bin" --version | tr -d v)" --cmd node "$ctr"
b commit --quiet --rm "$ctr" docker.io/library/node:20-bookworm-slim >/dev/null

# Behind a TLS-intercepting proxy the build's npm needs this machine's CA bundle; it is mounted for the
# build only (never in a layer).
volumes=()
cafile=$(npm config get cafile 2>/dev/null || true)
if [ -n "$cafile" ] && [ "$cafile" != "null" ] && [ -f "$cafile" ]; then
  # Mounted over /usr/local/etc, a directory the base already has (npm's global config dir), so no
  # mount point is left in a layer.
  mkdir -p "$work/etc"
  cp "$cafile" "$work/etc/build-ca.crt"
  printf 'cafile=/usr/local/etc/build-ca.crt\n' > "$work/etc/npmrc"
  volumes+=(--volume "$work/etc:/usr/local/etc:ro")
fi

echo "image: building $tag from the Dockerfile (buildah, --pull=never)" >&2
b build --quiet --pull=never --network host --layers "${volumes[@]}" "${build_args[@]}" -t localhost/meshcap:build -f Dockerfile . >&2

rm -f "$out.partial" "$work/oci.tar"
b push --quiet localhost/meshcap:build "docker-archive:$out.partial:$tag" >&2
b push --quiet --format oci --compression-format gzip localhost/meshcap:build "oci-archive:$work/oci.tar" >&2
stat -c %s "$work/oci.tar" > "$out.size"
mv "$out.partial" "$out"
# Keep the cache small: archives unused for a day go (a hit refreshes the time).
find "$cache/images" -maxdepth 1 -name "meshcap-*.tar*" -mmin +1440 -delete 2>/dev/null || true
echo "$out"
