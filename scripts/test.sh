#!/usr/bin/env bash
# The whole test suite: unit, golden (Istio's own outputs), real-kernel namespace tests and the
# container-runtime tier (containerd through its CRI, the image built from the Dockerfile).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Some tests run meshcap as the proxy user (uid 1337), as a pod does. A checkout under a directory
# closed to other users (e.g. a clone in a 0700 mktemp dir) would make them fail for the wrong
# reason, so the suite then runs from a world-readable copy that it removes afterwards.
if ! setpriv --reuid=1337 --regid=1337 --clear-groups test -r "$PWD/bin/meshcap" 2>/dev/null; then
  copy=$(mktemp -d /tmp/meshcap-suite-XXXXXX)
  trap 'rm -rf "$copy"' EXIT
  chmod 755 "$copy"
  echo "test: uid 1337 cannot read this checkout ($PWD); running the suite from a readable copy in $copy" >&2
  cp -a . "$copy/meshcap"
  # cp -a keeps the checkout root's own mode: a clone made straight into a 0700 mktemp dir is one.
  chmod a+rx "$copy/meshcap"
  setpriv --reuid=1337 --regid=1337 --clear-groups test -r "$copy/meshcap/bin/meshcap" \
    || { echo "test: uid 1337 cannot read the copy in $copy either; the proxy-user tests would fail for that reason" >&2; exit 3; }
  [ -d ../shared ] && ln -s "$(cd ../shared && pwd)" "$copy/shared"
  cd "$copy/meshcap"
  # Namespace tests need root; they create their own namespaces and remove them on exit.
  node --test $(find dist/test -name '*.test.js' | sort)
  exit $?
fi
# Namespace tests need root; they create their own namespaces and remove them on exit.
exec node --test $(find dist/test -name '*.test.js' | sort)
