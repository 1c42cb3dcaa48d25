#!/usr/bin/env bash
# The whole test suite: installs the external tools the tests use (restic and rclone, from
# Debian), builds the arca binary the interop tests run, and runs every test of the workspace.
# Exits non-zero on any failure. CI runs it through .ci/run with CI=true, which turns a missing
# tool into a test failure instead of a skip.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

say() { printf '\n==> %s\n' "$*" >&2; }

# --- 1. Tools the tests need --------------------------------------------------------------------
missing=()
for tool in restic rclone; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing restic and rclone from Debian (missing: ${missing[*]})"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "error: ${missing[*]} not installed, and not root (no sudo) to apt-get install them" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update
  "${sudo[@]}" apt-get install -y restic rclone
else
  say "restic and rclone are installed; skipping apt-get"
fi
for tool in restic rclone; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is still not installed" >&2; exit 1; }
done
say "tools: $(restic version); $(rclone version | head -n 1)"

# --- 2. Object-storage servers for the backend tests ----------------------------------------------
# LATER: start the servers the backend conformance and interop tests talk to, each on 127.0.0.1,
# and stop them on exit (trap ... EXIT):
#   - seaweedfs (S3 API)
#   - azurite (Azure Blob)
#   - fake-gcs-server (GCS)
#   - rclone serve restic (restic REST server)
# Export their endpoints for the tests here. Not implemented yet: no test needs them so far.

# --- 3. Build and test ----------------------------------------------------------------------------
say "cargo build -p arca   (the interop tests run target/debug/arca)"
cargo build -p arca

say "cargo test --workspace   (CI=${CI:-<unset>})"
cargo test --workspace --no-fail-fast

say "all tests passed"
