#!/usr/bin/env bash
# make bench-deps: what the PyTorch side of the benchmark needs (not part of scripts/install-deps.sh;
# make test never needs it). Debian's torch multiplies through BLIS; tcmalloc is preloaded by
# tests/bench/run.sh for PyTorch's best allocation speed. Python runs as /usr/bin/python3.
set -euo pipefail

packages=(
  python3-torch                 # the reference implementation (tests/bench/torch_dit.py)
  python3-numpy                 # .npy inputs and outputs
  libtcmalloc-minimal4          # LD_PRELOAD for PyTorch's allocator-heavy step
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "promoe: missing Debian packages for the benchmark: ${missing[*]}" >&2
  echo "promoe: install them as root: apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
