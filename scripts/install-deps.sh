#!/usr/bin/env bash
# Installs what promoe needs from Debian's packages when it is missing (as root, with apt-get).
# Without root, lists the missing packages and fails. `install-deps.sh mpi` adds Open MPI (mpicc,
# mpirun) for the optional data-parallel build (`make mpi`, `make test-mpi`).
set -euo pipefail

packages=(
  gcc make binutils
  libblis-openmp-dev            # BLIS with OpenMP threading: every matrix product
  libsqlite3-dev sqlite3        # results database (and the sqlite3 shell for queries)
  libyaml-dev                   # experiment and sweep files
  zlib1g-dev                    # gzip-compressed IDX data, npz checksums
  libpng-dev                    # sample grids
  libcjson-dev                  # safetensors headers
  libssl-dev                    # SHA-256 run ids
  liblapack-dev                 # symmetric eigen-decompositions (Frechet distance)
  dataset-fashion-mnist         # the mini-scale data set
  liblapack-dev                 # SVDs and eigen-decompositions (evaluation and analysis)
  gnuplot-nox                   # figures: promoe plot and the analysis commands (pngcairo)
)
if [ "${1:-}" = mpi ]; then
  packages+=(openmpi-bin libopenmpi-dev)   # data-parallel training over MPI
fi

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
