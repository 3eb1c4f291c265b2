#!/usr/bin/env bash
# Installs the Debian 12 packages lorad builds and runs with. Idempotent: when every package is
# already installed it touches nothing (no apt-get update, no network).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git unzip python3 python3-pip curl
  libtorch-dev libopenblas0-openmp libopenblas-openmp-dev
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev prometheus-cpp-dev nlohmann-json3-dev libsqlite3-dev libssl-dev zlib1g-dev
  libcpp-httplib-dev
  libgtest-dev libgmock-dev
  clang libclang-rt-14-dev clang-format
  # The deploy/ checks (tests/deploy): venvs for PyPI clients, systemd-analyze, promtool and
  # the Prometheus server, HAProxy for the router in front of several replicas.
  python3-venv systemd prometheus haproxy
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
