#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa lavapipe) so that Dawn (npm package `webgpu`) finds a
# WebGPU adapter on a Linux machine without a GPU. Idempotent: safe to run again.
#
# Debian bookworm's own Mesa (22.3) lacks features Dawn requires
# ("shaderUniform*ArrayDynamicIndexing required"), so the driver comes from bookworm-backports (Mesa 25.x).
# Needs root (or sudo). Other distributions: install a recent mesa-vulkan-drivers (>= 23) and libvulkan1.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

have_lavapipe() {
  ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || return 1
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  # Version 23 or newer is what Dawn accepts.
  [ -n "$v" ] && [ "${v%%.*}" -ge 23 ] 2>/dev/null
}

if have_lavapipe; then
  echo "setup-software-gpu: lavapipe already installed ($(dpkg-query -W -f='${Version}' mesa-vulkan-drivers))"
  exit 0
fi

. /etc/os-release
if [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
  echo "setup-software-gpu: this script knows Debian bookworm; on ${PRETTY_NAME:-this system} install" >&2
  echo "  a Mesa >= 23 'mesa-vulkan-drivers' and 'libvulkan1' with your package manager." >&2
  exit 1
fi

if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "setup-software-gpu: adding the bookworm-backports suite"
  echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
echo "setup-software-gpu: installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
