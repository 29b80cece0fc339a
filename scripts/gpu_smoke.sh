#!/usr/bin/env bash
# GPU smoke test and benchmark, run on a machine with an NVIDIA GPU and CUDA 13.0 but no Rust
# toolchain. Build here with `cargo xtask build-cuda`, carry target/cuda/dist/ over, then:
#
#   scripts/gpu_smoke.sh [DIST_DIR] [OUT_DIR]
#
# It finds the CUDA 13 libraries in the Python environment's site-packages/nvidia (PyTorch's
# wheels ship them), checks the binary links, runs one learner update per action count on
# cuda:0 and on the CPU, and writes the outputs and `summary.txt` to OUT_DIR.
set -euo pipefail
dist=${1:-target/cuda/dist}
out=${2:-${OUT:-gpu-smoke}}
mkdir -p "$out"

site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
libdirs=$(find "$site/nvidia" -name 'lib*.so.*' \( -name 'libcublas*' -o -name 'libcudart*' -o -name 'libcurand*' -o -name 'libnvrtc*' \) -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
if [ -z "$libdirs" ]; then
    echo "no CUDA libraries under $site/nvidia: install PyTorch's CUDA wheels or set LD_LIBRARY_PATH" >&2
    exit 1
fi
export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
if ldd "$dist/learner_step" | grep 'not found'; then
    echo "the binary is missing libraries (above); LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >&2
    exit 1
fi

: > "$out/summary.txt"
for actions in 18 1042; do
    for device in cuda:0 cpu; do
        log="$out/learner_${actions}_${device/:/}.txt"
        "$dist/learner_step" --device "$device" --actions "$actions" --updates 50 | tee "$log"
        echo "actions=$actions device=$device $(tail -n 1 "$log")" >> "$out/summary.txt"
    done
done
cat "$out/summary.txt"
