#!/usr/bin/env bash
# Installs clang (libFuzzer, sanitizers) for the optional `make fuzz` target when it is missing; the
# default build and `make test` never need it. As root with apt-get; otherwise says what to install.
set -euo pipefail
command -v clang >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "promoe: make fuzz needs clang: apt-get install --no-install-recommends clang" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends clang >/dev/null
