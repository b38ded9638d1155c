#!/usr/bin/env bash
# The main job on a built-in default: the istio-init capture, for real, in a throwaway namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./bin/meshcap demo "$@"
