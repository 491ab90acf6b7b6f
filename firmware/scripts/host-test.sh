#!/usr/bin/env bash
# Builds the firmware's portable core, its unit tests and toy-host on a PC,
# then runs them with ctest. Exits non-zero on any failure.
#
# Debian/Ubuntu packages needed (CI installs them):
#   apt-get install -y g++ cmake make libopus-dev pkg-config
#
# Optional: the end-to-end test (toy-host against a scripted fake server)
# needs a Python 3 with the `websockets` package. Default: <repo>/.venv/bin/python,
# else python3; override with TOY_PYTHON=/path/to/python. Without it that test
# is reported as "Skipped"; set TOY_REQUIRE_E2E=1 to turn a skip into a failure.
#
# Usage: firmware/scripts/host-test.sh [BUILD_DIR]     (default: firmware/build)
#        TOY_SANITIZE=1 firmware/scripts/host-test.sh  (AddressSanitizer + UBSan)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
firmware_dir="$(dirname "$script_dir")"
build_dir="${1:-$firmware_dir/build}"
jobs="$(nproc 2>/dev/null || echo 2)"

cmake_args=(-S "$firmware_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ -n "${TOY_PYTHON:-}" ]]; then
  cmake_args+=("-DTOY_PYTHON=$TOY_PYTHON")
fi
if [[ "${TOY_SANITIZE:-0}" == "1" ]]; then
  cmake_args+=(-DTOY_SANITIZE=ON)
fi

cmake "${cmake_args[@]}"
cmake --build "$build_dir" -j "$jobs"
ctest --test-dir "$build_dir" --output-on-failure
