#!/usr/bin/env bash
# The main job on the local filesystem: build arca, create a repository, back up a folder of
# sample files twice, list the snapshots, check the repository, restore and compare.
# The password is passed through RESTIC_PASSWORD, never on the command line.
# Set ARCA_DEMO_KEEP=1 to keep the working folder.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

say() { printf '\n==> %s\n' "$*" >&2; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }
fail() { echo "demo FAILED: $*" >&2; exit 1; }

say "building arca (cargo build -p arca)"
cargo build -p arca
arca="${CARGO_TARGET_DIR:-$PWD/target}/debug/arca"
[ -x "$arca" ] || fail "$arca was not built"

work=$(mktemp -d "${TMPDIR:-/tmp}/arca-demo.XXXXXX")
if [ "${ARCA_DEMO_KEEP:-0}" = 1 ]; then
  trap 'echo "kept $work" >&2' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
say "working in $work"

src="$work/sample"
mkdir -p "$src/docs/nested" "$src/empty-dir"
printf 'hello from arca\n' >"$src/hello.txt"
seq 1 200000 >"$src/docs/numbers.txt"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$src/docs/random.bin"
printf 'three levels down\n' >"$src/docs/nested/deep.txt"
: >"$src/empty.txt"
ln -s hello.txt "$src/link-to-hello"
say "sample files: $(find "$src" | wc -l) entries, $(du -sh "$src" | cut -f1)"

export RESTIC_PASSWORD=demo-password
repo="$work/repo"
say "creating a repository"
run "$arca" -r "$repo" init
[ -f "$repo/config" ] || fail "arca init did not create $repo/config"

say "first backup"
run "$arca" -r "$repo" backup "$src"
say "second backup of unchanged data (uses the first as its parent: nothing new is read or stored)"
run "$arca" -r "$repo" backup "$src"
run "$arca" -r "$repo" snapshots
say "checking every pack"
run "$arca" -r "$repo" check --read-data
say "restoring"
run "$arca" -r "$repo" restore latest --target "$work/restored"
restored="$work/restored$src" # like restic: the absolute source path under the target
run diff -r "$src" "$restored"
say "the restored copy is identical to the sample files"
