#!/usr/bin/env bash
# Build the fuzz targets and run each for SECONDS: fuzz/run.sh SECONDS [TARGET...]
#
# - Builds with `RUSTC_BOOTSTRAP=1 cargo fuzz build` (cargo-fuzz needs nightly flags; the
#   bootstrap switch allows them on stable). FUZZ_SANITIZER=none builds without ASan.
# - Runs at most FUZZ_JOBS (default 2) targets at once, each under `nice -n 19`, with
#   -max_total_time=SECONDS -rss_limit_mb=2048 -timeout=10, corpus in fuzz/corpus/<target>
#   (gitignored) seeded from fuzz/seeds/<target>, crashes in fuzz/artifacts/<target>/.
# - As root, the fuzzers run as user `nobody` (FUZZ_USER to change, FUZZ_USER=root to keep
#   root): open_repository restores hostile trees, and a restore bug must not be able to
#   chmod/chown the machine's files while we look for it.
# - Prints per target the executions, the time run and whether a crash was found; exits 1
#   if any target crashed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
secs="$1"
shift
all=(keyfile config pack_header index snapshot tree lock unpacked open_repository)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
jobs="${FUZZ_JOBS:-2}"
sanitizer="${FUZZ_SANITIZER:-address}"

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }

triple="$(rustc -vV | sed -n 's/^host: //p')"
build=(cargo fuzz build --release --debug-assertions --sanitizer "$sanitizer")
echo "building: RUSTC_BOOTSTRAP=1 ${build[*]} ${targets[*]}"
if [[ $# -eq 0 ]]; then
    RUSTC_BOOTSTRAP=1 nice -n 19 "${build[@]}"
else
    for t in "${targets[@]}"; do
        RUSTC_BOOTSTRAP=1 nice -n 19 "${build[@]}" "$t"
    done
fi
bindir="$here/target/$triple/release"

user="${FUZZ_USER:-nobody}"
as_user=()
if [[ "$(id -u)" == 0 && "$user" != root ]]; then
    as_user=(setpriv "--reuid=$user" "--regid=$(id -g "$user")" --clear-groups)
fi

# Temporary repositories: tmpfs is several times faster than a disk for open_repository.
tmp="${FUZZ_TMPDIR:-}"
if [[ -z "$tmp" ]]; then
    if [[ -d /dev/shm && -w /dev/shm ]]; then tmp=/dev/shm; else tmp=/tmp; fi
fi

mkdir -p logs corpus artifacts
run_one() {
    local t="$1"
    mkdir -p "corpus/$t" "artifacts/$t"
    if [[ ${#as_user[@]} -gt 0 ]]; then
        chown -R "$user" "corpus/$t" "artifacts/$t"
    fi
    local start=$SECONDS
    # TMPDIR must be writable by the (unprivileged) fuzzer.
    TMPDIR="$tmp" nice -n 19 "${as_user[@]}" "$bindir/$t" "corpus/$t" "seeds/$t" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
        >"logs/$t.log" 2>&1 || true
    echo $((SECONDS - start)) >"logs/$t.secs"
}

running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [[ $running -ge $jobs ]]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

crashed=0
printf '%-16s %14s %8s %8s  %s\n' target executions seconds corpus result
for t in "${targets[@]}"; do
    log="logs/$t.log"
    execs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)"
    [[ -z "$execs" ]] && execs="$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)"
    found="$(ls "artifacts/$t" 2>/dev/null | grep -E '^(crash|timeout|oom|leak)-' || true)"
    if [[ -n "$found" ]] || grep -qE 'ERROR: (libFuzzer|AddressSanitizer)|panicked at' "$log"; then
        result="CRASH: $(echo $found | tr '\n' ' ')"
        crashed=1
    else
        result="no crash"
    fi
    printf '%-16s %14s %8s %8s  %s\n' "$t" "${execs:-?}" "$(cat "logs/$t.secs" 2>/dev/null || echo ?)" \
        "$(ls "corpus/$t" | wc -l)" "$result"
done
exit $crashed
