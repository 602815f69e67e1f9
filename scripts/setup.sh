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
# pip must not write into a distribution's own Python (PEP 668: Debian 12, Ubuntu 23.04 and later).
if python3 -c 'import sys; sys.exit(sys.prefix != sys.base_prefix)' \
    && [ -e "$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED" ]; then
  echo "error: python3 is the system's externally managed Python; install into a virtualenv instead:" >&2
  echo "  $SUDO apt-get install -y python3-venv && python3 -m venv ~/vrb && . ~/vrb/bin/activate, then run this again" >&2
  exit 2
fi
python3 -m pip install -q --upgrade pip
# The CPU build of PyTorch first: an unpinned torch pulls gigabytes of CUDA wheels. A wheel directory
# (PIP_FIND_LINKS, as on the project's CI machines) holds it; elsewhere it comes from PyTorch's CPU index.
if [ -n "${PIP_FIND_LINKS:-}" ]; then
  python3 -m pip install -q torch==2.13.0
else
  python3 -m pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
fi
python3 -m pip install -q ".[test]"
python3 -m pip check
