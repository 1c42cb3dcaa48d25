#!/usr/bin/env bash
# The main job on the local filesystem: build arca, create a repository, back up a folder of
# sample files, list the snapshot, restore it and compare. Until `arca backup` exists, the demo
# creates a repository and then restores one of restic's committed fixture repositories instead.
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

if "$arca" help backup >/dev/null 2>&1; then
  say "backup, snapshots, restore"
  run "$arca" -r "$repo" backup "$src"
  run "$arca" -r "$repo" snapshots
  run "$arca" -r "$repo" restore latest --target "$work/restored"
  restored="$work/restored$src" # like restic: the absolute source path under the target
  [ -d "$restored" ] || restored="$work/restored"
  run diff -r "$src" "$restored"
  say "the restored copy is identical to the sample files"
else
  say "arca has no backup command yet: restoring restic's fixture repository small-repo instead"
  mkdir -p "$work/fixture"
  run tar -xzf tests/fixtures/restic/small-repo.tar.gz -C "$work/fixture" --no-same-owner
  fixture="$work/fixture/repo"
  export RESTIC_PASSWORD=geheim # the fixtures' password
  run "$arca" -r "$fixture" snapshots
  run "$arca" -r "$fixture" check --read-data
  run "$arca" -r "$fixture" restore latest --target "$work/restored"
  count=$(find "$work/restored" -type f | wc -l)
  [ "$count" -gt 0 ] || fail "arca restore wrote no files"
  say "restored $count files (first 40 entries):"
  (cd "$work/restored" && find . -mindepth 1 | sort | head -n 40)
fi

say "demo finished"
