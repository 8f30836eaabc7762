#!/usr/bin/env bash
# The benchmark on a lent GPU machine (the `device` tool of this workplace). That machine has no Node, no
# npm registry and maybe no Vulkan loader, so what runs there is built here and carried:
#
#   bash scripts/device-bench.sh prepare          # here: .devbench/ (the harness bundled, Dawn, Node) and .gl/
#   device run, carry [".devbench", ".gl"], command:
#     bash scripts/device-bench.sh run --only inference,training,kernels && \
#     bash scripts/device-bench.sh run --only inference,training --no-peer --conv3x3 winograd && \
#     bash scripts/device-bench.sh winograd --settings 1x256,8x128
#
# `run` passes its options to bench/run.ts (--no-ort and the shipped teacher are added; onnxruntime-node is
# native and stays here) and writes the report to $OUT (what the device tool brings back), else to
# bench/results; `winograd` runs bench/conv-winograd.ts the same way (direct against Winograd on the GPU:
# `conv3x3` stays direct on GPUs until this and `run --conv3x3 winograd` say otherwise). Both were tried here on lavapipe from a clone
# holding only the carried folders. Both folders are git-ignored: they travel because `carry` names them.
set -euo pipefail
cd "$(dirname "$0")/.."
teacher=weights/resnet18-imagenet-layer1to3.safetensors

bundle() { # entry, output
  npx esbuild "$1" --bundle --minify --platform=node --format=esm --target=node20 --outfile="$2" --log-level=warning \
    --external:webgpu --external:onnxruntime-node \
    --banner:js="import { createRequire as __dcamRequire } from 'node:module'; const require = __dcamRequire(import.meta.url);"
}

case "${1:-}" in
  prepare)
    rm -rf .devbench && mkdir -p .devbench/webgpu
    bundle bench/run.ts .devbench/bench.mjs
    bundle bench/conv-winograd.ts .devbench/conv-winograd.mjs
    cp node_modules/webgpu/package.json node_modules/webgpu/index.js .devbench/webgpu/
    # compressed, as Node below: the working tree that travels is at most 64 MiB, this repository included
    xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .devbench/dawn.node.xz
    node -e 'const r = (n) => require(`./node_modules/${n}/package.json`).version;
      const names = ["webgpu", "@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-webgpu"];
      console.log(JSON.stringify(Object.fromEntries(names.map((n) => [n, r(n)]))));' > .devbench/packages.json
    # the official Node build links only the C and C++ runtimes, which that machine has
    xz -T0 -6 -c "$(command -v node)" > .devbench/node.xz
    # the Vulkan loader (that machine's NVIDIA driver brings the ICD, not always the loader)
    mkdir -p .gl /tmp/amd64/partial
    apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${apt_opts[@]}" update -qq
    (cd .gl && apt-get "${apt_opts[@]}" download -qq libvulkan1)
    du -sh .devbench .gl
    ;;
  run | winograd)
    what=$1
    shift
    [ -f .devbench/bench.mjs ] || { echo "device-bench: no .devbench (run 'bash scripts/device-bench.sh prepare' here, carry .devbench and .gl)" >&2; exit 2; }
    if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
      for f in .gl/*.deb; do dpkg -x "$f" /; done
      ldconfig
    fi
    icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
    unxz() { # file.xz, destination
      if command -v xz >/dev/null; then xz -dc "$1" > "$2"
      else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
    }
    # unpacked under /tmp (the working tree stays small enough to travel again); the bundles find
    # `webgpu` through .devbench/node_modules, a link to it
    lib=/tmp/dcam-devbench/node_modules
    node=/tmp/dcam-devbench/node
    if [ ! -x "$node" ]; then
      mkdir -p "$lib/webgpu/dist/linux-x64"
      cp .devbench/webgpu/package.json .devbench/webgpu/index.js "$lib/webgpu/"
      unxz .devbench/dawn.node.xz "$lib/webgpu/dist/linux-x64/dawn.node"
      unxz .devbench/node.xz "$node"
      chmod +x "$node"
    fi
    ln -sfn "$lib" .devbench/node_modules
    out="${OUT:-bench/results}"
    mkdir -p "$out"
    if [ "$what" = run ]; then
      "$node" .devbench/bench.mjs --no-ort --teacher "$teacher" --out "$out" "$@"
    else
      "$node" .devbench/conv-winograd.mjs --out "$out/conv-winograd" "$@"
    fi
    ;;
  *)
    echo "usage: bash scripts/device-bench.sh prepare | run [bench options] | winograd [conv-winograd options]" >&2
    exit 2
    ;;
esac
