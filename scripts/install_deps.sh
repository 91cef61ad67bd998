#!/usr/bin/env bash
# Installs what loom needs from Debian's packages, only when something is missing (so reruns are fast).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config libgtest-dev libopenblas-openmp-dev nlohmann-json3-dev zlib1g-dev
      libstb-dev python3 python3-torch python3-numpy dataset-fashion-mnist time)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
