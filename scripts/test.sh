#!/usr/bin/env bash
# The test command (README): runs the whole suite against the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL="${MUJOCO_GL:-egl}"
# importlib mode: the tests import the installed package, never the source tree
pytest -q -p no:cacheprovider --import-mode=importlib tests "$@"
