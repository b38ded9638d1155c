#!/usr/bin/env bash
# The whole test suite: unit, golden (Istio's own outputs) and real-kernel namespace tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Namespace tests need root; they create their own namespaces and remove them on exit.
exec node --test $(find dist/test -name '*.test.js' | sort)
