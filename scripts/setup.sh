#!/usr/bin/env bash
# One-time setup on a fresh Debian/Ubuntu machine: headless GL libraries, CPU PyTorch, the package.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
# Headless OpenGL (Mesa EGL/OSMesa software rendering) and git (robot_descriptions clones models).
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq libosmesa6 libegl1 libegl-mesa0 libgl1-mesa-dri git >/dev/null
# Debian's Chromium: the leaderboard page is tested in a real headless browser.
$SUDO apt-get install -y -qq chromium >/dev/null
python3 -m pip install -q --upgrade pip
# The CPU build of PyTorch first: an unpinned torch pulls gigabytes of CUDA wheels.
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q ".[test]"
python3 -m pip check
