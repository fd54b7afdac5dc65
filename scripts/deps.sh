#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs everything objcache needs to build and test on Debian 12: apt
# packages, then the npm test servers from tests/s3server/package-lock.json.
# Idempotent, and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build
  g++ meson ninja-build pkg-config
  libcurl4-openssl-dev libssl-dev libxxhash-dev libtoml11-dev
  libpugixml-dev nlohmann-json3-dev libcli11-dev
  # tests
  doctest-dev python3 ca-certificates sqlite3 tar coreutils
  # tests: the shim under a malloc replacement preloaded beside it (run_passthrough.py)
  libmimalloc2.0
  # tests: metadata lifetimes under a fake wall clock (tests/preload/run_outages.py)
  faketime
  # programs the shim is tested with (Debian's python3 and its packages)
  python3-numpy python3-pil python3-torch python3-torchvision python3-boto3
  # tests: a second, stricter S3 server (tests/s3server/radosgw.py; the store and
  # write integration tests run against it too): Ceph's radosgw on a one-node cluster
  radosgw ceph-mon ceph-osd
  # fuzzers (make fuzz): clang with libFuzzer and its sanitizer runtimes
  clang libclang-rt-14-dev
  # benchmarks: nginx with echo_sleep as a fast remote with latency (bench/latency_remote.py)
  nginx libnginx-mod-http-echo
  # benchmarks: the peers objcache is compared with (bench/bench_peers.py), its plots
  s3fs rclone fuse3 python3-matplotlib
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
    echo "deps: not root and no sudo; install these packages: ${packages[*]}" >&2
  fi
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js: a machine may already have node and npm from elsewhere, and
# Debian's npm conflicts with a nodejs that bundles npm: install only what
# is absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The S3 test servers, pinned by the committed package-lock.
srv=tests/s3server
stamp=$srv/node_modules/.objcache-stamp
if [ ! -f "$stamp" ] || [ "$srv/package-lock.json" -nt "$stamp" ]; then
  echo "deps: npm ci in $srv"
  (cd "$srv" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
echo "deps: ok"
