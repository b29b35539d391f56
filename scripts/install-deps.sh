#!/usr/bin/env bash
# Installs what promoe needs from Debian's packages when it is missing (as root, with apt-get).
# Without root, lists the missing packages and fails. Optional groups, named as arguments: `mpi`
# adds Open MPI (mpicc, mpirun) for `make mpi` / `make test-mpi`; `bench` adds the PyTorch side of
# `make bench` (Debian's torch, which multiplies through BLIS; tcmalloc, preloaded by
# tests/bench/run.sh; Python runs as /usr/bin/python3).
set -euo pipefail

packages=(
  gcc make binutils
  libblis-openmp-dev            # BLIS with OpenMP threading: every fp32 matrix product
  libdnnl-dev                   # oneDNN (OpenMP build): the bf16 products of train.precision bf16
  libsqlite3-dev sqlite3        # results database (and the sqlite3 shell for queries)
  libyaml-dev                   # experiment and sweep files
  zlib1g-dev                    # gzip-compressed IDX data, npz checksums
  libpng-dev                    # sample grids
  libcjson-dev                  # safetensors headers
  libssl-dev                    # SHA-256 run ids
  dataset-fashion-mnist         # the mini-scale data set
  liblapack-dev                 # SVDs and eigen-decompositions (evaluation and analysis)
  gnuplot-nox                   # figures: promoe plot and the analysis commands (pngcairo)
  libmicrohttpd-dev             # promoe serve: the results dashboard's HTTP server
  chromium                      # the dashboard's browser test (headless) and its README screenshot
)
for group in "$@"; do
  case "$group" in
    mpi) packages+=(openmpi-bin libopenmpi-dev) ;;                          # data-parallel training
    bench) packages+=(python3-torch python3-numpy libtcmalloc-minimal4) ;;   # the PyTorch reference
    *) echo "promoe: install-deps.sh: unknown group '$group' (mpi, bench)" >&2; exit 129 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "promoe: missing Debian packages: ${missing[*]}" >&2
  echo "promoe: install them as root: apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "promoe: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
