#!/usr/bin/env bash
# Side-by-side comparison of arca and restic on the same data, in one run.
#
#   bash scripts/compare.sh                 # mixed dataset: 1 GiB random, 0.5 GiB text, 20,000 small files
#   SCALE=0.1 bash scripts/compare.sh       # the same shape, 10% of the size (quick check)
#   MANY_FILES=1000000 bash scripts/compare.sh many   # metadata-heavy: N small files
#   bash scripts/compare.sh s3              # first backup of the mixed dataset to SeaweedFS (S3)
#                                            # on loopback; arca also with -o s3.connections=64
#   SCALE=0.25 bash scripts/compare.sh proxy    # the mixed dataset over "S3 at 20 ms per request":
#                                            # MinIO behind toxiproxy (LATENCY_MS=20 on every
#                                            # answer, BANDWIDTH_KBS=51200 each way); first and
#                                            # incremental backup, snapshots, ls latest, restore,
#                                            # each tool with its own fresh local cache
#   GENERATE_ONLY=1 ...                                # only build the dataset (kept in $WORK)
#   ROUNDS=5 ...                                       # rounds to take the median of (default 3)
#   RUSTIC=~/.cache/arca-rustic/bin/rustic ...         # rustic too (local disk modes), built by
#                                                      # `cargo install rustic-rs --locked --root ~/.cache/arca-rustic`
#
# For each tool: init, first backup, second backup of unchanged data, restore. The tools are
# arca, Debian's restic 0.14.0 and the current restic (0.19.1, built by scripts/go-tools.sh),
# all three in each round. Prints wall time and peak memory (max RSS) of each step and the
# ratio arca/restic, once against each restic.
# Needs restic on PATH, Go and /usr/bin/time; builds arca in release mode.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODE=${1:-mixed}
SCALE=${SCALE:-1}
MANY_FILES=${MANY_FILES:-1000000}
ROUNDS=${ROUNDS:-3}
WORK=${WORK:-/tmp/arca-compare}
export RESTIC_PASSWORD=compare-password

command -v restic >/dev/null || { echo "restic is not installed (apt-get install restic)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

echo "==> building arca (release)" >&2
cargo build --release -p arca >&2
ARCA=$PWD/target/release/arca
echo "==> the current restic (scripts/go-tools.sh build; cached after the first time)" >&2
mkdir -p "$WORK"
bash scripts/go-tools.sh build "$WORK/go-tools.env" >&2
# shellcheck disable=SC1091
source "$WORK/go-tools.env"
RESTIC_NEW=$ARCA_TEST_RESTIC_NEW
RESTIC_OLD=$(command -v restic)
# rustic where it was built (local disk only: its S3 goes through other options).
RUSTIC=${RUSTIC:-}
case $MODE in s3 | proxy) RUSTIC= ;; esac
export RUSTIC_PASSWORD=$RESTIC_PASSWORD

mkdir -p "$WORK"
DATA=$WORK/data-$MODE-$SCALE
[ "$MODE" = many ] && DATA=$WORK/data-many-$MANY_FILES
case $MODE in s3 | proxy) DATA=$WORK/data-mixed-$SCALE ;; esac
GEN_MODE=$MODE
case $MODE in s3 | proxy) GEN_MODE=mixed ;; esac

if [ ! -e "$DATA/.complete" ]; then
  echo "==> generating dataset in $DATA" >&2
  rm -rf "$DATA"
  mkdir -p "$DATA"
  python3 - "$DATA" "$GEN_MODE" "$SCALE" "$MANY_FILES" <<'PY'
import os, random, sys
root, mode, scale, many = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(42)
if mode == "many":
    per_dir = 1000
    for i in range(many):
        d = os.path.join(root, "d%04d" % (i // per_dir))
        if i % per_dir == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%06d" % i), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(0, 256)))
else:
    mib = 1 << 20
    os.makedirs(os.path.join(root, "random"))
    for i in range(8):
        with open(os.path.join(root, "random", "r%d.bin" % i), "wb") as f:
            for _ in range(int(128 * scale)):
                f.write(os.urandom(mib))
    # Compressible text: sentences from a small vocabulary, about 3:1 with zstd.
    words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10))) for _ in range(5000)]
    block = " ".join(rnd.choice(words) for _ in range(300000)).encode()
    os.makedirs(os.path.join(root, "text"))
    for i in range(4):
        with open(os.path.join(root, "text", "t%d.txt" % i), "wb") as f:
            written = 0
            while written < 128 * scale * mib:
                start = rnd.randrange(0, len(block) // 2)
                part = block[start:start + mib]
                f.write(part)
                written += len(part)
    n = int(20000 * scale)
    for i in range(n):
        d = os.path.join(root, "small", "d%03d" % (i // 100))
        if i % 100 == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d" % i), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(100, 16000)))
open(os.path.join(root, ".complete"), "w").close()
PY
fi
echo "==> dataset: $(du -sh "$DATA" | cut -f1), $(find "$DATA" -type f | wc -l) files" >&2
[ "${GENERATE_ONLY:-0}" = 1 ] && exit 0
# Warm the page cache so neither tool pays for the first read from disk.
find "$DATA" -type f -print0 | xargs -0 cat > /dev/null

# Start from a quiet disk: remove the previous run's repositories and restore targets, then
# wait until ext4 no longer treats their inodes as recently deleted (it skips such inodes
# when allocating, which slows the next run's file creation by seconds and would penalise
# whichever tool ran after a deletion). Nothing is deleted again until the next run.
leftovers=$(find "$WORK" -maxdepth 1 \( -name 'repo-*' -o -name 'restore-*' \) | wc -l)
if [ "$leftovers" -gt 0 ]; then
  echo "==> removing the previous run's repositories and waiting 65 s for ext4 to settle" >&2
  find "$WORK" -maxdepth 1 \( -name 'repo-*' -o -name 'restore-*' -o -name 'cache-*' \) -exec rm -rf {} +
  sync
  sleep 65
fi

# Every measurement is kept as "tool-step-round"; the table shows the median over rounds.
declare -A T M C SIZE
measure() { # name, command...
  local name=$1; shift
  # Each step starts with no dirty pages, so neither tool pays for the other's writeback.
  sync
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/$name.time" "$@" > /dev/null 2> "$WORK/$name.err" || {
    echo "step $name failed:" >&2; cat "$WORK/$name.err" >&2; exit 1; }
  local e m u s
  read -r e m u s < <(tail -n 1 "$WORK/$name.time")
  T[$name]=$e
  M[$name]=$m
  C[$name]=$(echo "$u + $s" | bc -l)
  echo "    $name: ${e} s, $((m / 1024)) MiB" >&2
}

# rustic (RUSTIC=path, e.g. from `cargo install rustic-rs`) on local disk: its own command
# line (restore takes the target as an argument; no -q, --no-progress instead).
run_rustic() { # round
  local r=$1 repo=$WORK/repo-rustic-$r target=$WORK/restore-rustic-$r
  local g=(--no-progress -r "$repo")
  "$RUSTIC" "${g[@]}" init >/dev/null 2>&1
  measure "rustic-backup1-$r" "$RUSTIC" "${g[@]}" backup "$DATA"
  SIZE[rustic]=$(du -sb "$repo" | cut -f1)
  [ "$MODE" = many ] && return
  measure "rustic-backup2-$r" "$RUSTIC" "${g[@]}" backup "$DATA"
  measure "rustic-restore-$r" "$RUSTIC" "${g[@]}" restore latest "$target"
  # rustic restores the snapshot's paths below the target as restic does, or their contents.
  if [ -d "$target$DATA" ]; then
    diff -r "$DATA" "$target$DATA" > /dev/null || { echo "rustic restore differs from the source" >&2; exit 1; }
  else
    diff -r "$DATA" "$target" > /dev/null || { echo "rustic restore differs from the source" >&2; exit 1; }
  fi
}

run_tool() { # tool, binary, round
  local tool=$1 bin=$2 r=$3
  [ "$tool" = rustic ] && { run_rustic "$r"; return; }
  local repo=$WORK/repo-$tool-$r target=$WORK/restore-$tool-$r
  if [ "$MODE" = s3 ]; then
    repo="s3:$ARCA_TEST_S3_ENDPOINT/$ARCA_TEST_BUCKET/compare-$tool-$r"
    "$bin" -r "$repo" init >/dev/null 2>&1
    measure "$tool-backup1-$r" "$bin" -r "$repo" backup -q "$DATA"
    if [ "$tool" = arca ]; then
      # Memory must stay bounded however many connections are allowed.
      "$bin" -r "$repo-64" init >/dev/null 2>&1
      measure "arca64-backup1-$r" "$bin" -o s3.connections=64 -r "$repo-64" backup -q "$DATA"
    fi
    return
  fi
  if [ "$MODE" = proxy ]; then
    # Through the proxy, with a cache of its own as each tool uses by default.
    repo="s3:$PROXY_ENDPOINT/$ARCA_TEST_BUCKET/compare-$tool-$r"
    local c=(--cache-dir "$WORK/cache-$tool-$r")
    "$bin" "${c[@]}" -r "$repo" init >/dev/null 2>&1
    measure "$tool-backup1-$r" "$bin" "${c[@]}" -r "$repo" backup -q "$DATA"
    measure "$tool-backup2-$r" "$bin" "${c[@]}" -r "$repo" backup -q "$DATA"
    measure "$tool-snapshots-$r" "$bin" "${c[@]}" -r "$repo" snapshots
    measure "$tool-ls-$r" "$bin" "${c[@]}" -r "$repo" ls latest
    measure "$tool-restore-$r" "$bin" "${c[@]}" -r "$repo" restore -q latest --target "$target"
    diff -r "$DATA" "$target$DATA" > /dev/null || { echo "$tool restore differs from the source" >&2; exit 1; }
    return
  fi
  "$bin" -r "$repo" init >/dev/null 2>&1
  measure "$tool-backup1-$r" "$bin" -r "$repo" backup -q "$DATA"
  SIZE[$tool]=$(du -sb "$repo" | cut -f1)
  [ "$MODE" = many ] && return
  measure "$tool-backup2-$r" "$bin" -r "$repo" backup -q "$DATA"
  measure "$tool-restore-$r" "$bin" -r "$repo" restore -q latest --target "$target"
  diff -r "$DATA" "$target$DATA" > /dev/null || { echo "$tool restore differs from the source" >&2; exit 1; }
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
pick() { # array-name tool step -> median over rounds
  local -n arr=$1; local vals=() r
  for r in $(seq 1 "$ROUNDS"); do vals+=("${arr[$2-$3-$r]}"); done
  median "${vals[@]}"
}

if [ "$MODE" = s3 ] || [ "$MODE" = proxy ]; then
  echo "==> starting the object stores (scripts/servers.sh)" >&2
  SERVERS=$(bash scripts/servers.sh start)
  trap 'bash scripts/servers.sh stop "$SERVERS" >/dev/null 2>&1; rm -rf "$SERVERS"' EXIT
  # shellcheck disable=SC1091
  source "$SERVERS/env"
  export AWS_ACCESS_KEY_ID=$ARCA_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$ARCA_TEST_S3_SECRET_KEY
  export AWS_DEFAULT_REGION=us-east-1
  unset AWS_CA_BUNDLE
fi
if [ "$MODE" = proxy ]; then
  LATENCY_MS=${LATENCY_MS:-20}
  BANDWIDTH_KBS=${BANDWIDTH_KBS:-51200}
  echo "==> toxiproxy (scripts/go-tools.sh build; cached after the first time)" >&2
  bash scripts/go-tools.sh build "$WORK/toxiproxy.env" toxiproxy >&2
  # shellcheck disable=SC1091
  source "$WORK/toxiproxy.env"
  tp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$ARCA_TOXIPROXY" -host 127.0.0.1 -port "$tp_port" > "$WORK/toxiproxy.log" 2>&1 &
  tp_pid=$!
  trap 'kill "$tp_pid" 2>/dev/null; bash scripts/servers.sh stop "$SERVERS" >/dev/null 2>&1; rm -rf "$SERVERS"' EXIT
  api=http://127.0.0.1:$tp_port
  for _ in $(seq 1 100); do curl -sf "$api/version" > /dev/null && break; sleep 0.1; done
  # MinIO, not SeaweedFS: the server shares the two cores with the tools, and SeaweedFS
  # spent 13.8 CPU seconds storing what arca uploaded in 15.6 s, so the server's own work set
  # the pace; MinIO needs 5.5.
  upstream=${ARCA_TEST_MINIO_ENDPOINT#http://}
  export AWS_ACCESS_KEY_ID=$ARCA_TEST_MINIO_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$ARCA_TEST_MINIO_SECRET_KEY
  listen=$(curl -sf -X POST "$api/proxies" \
    -d "{\"name\":\"s3\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"$upstream\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["listen"])')
  curl -sf -X POST "$api/proxies/s3/toxics" > /dev/null \
    -d "{\"type\":\"latency\",\"stream\":\"downstream\",\"attributes\":{\"latency\":$LATENCY_MS}}"
  for dir in upstream downstream; do
    curl -sf -X POST "$api/proxies/s3/toxics" > /dev/null \
      -d "{\"name\":\"bw_$dir\",\"type\":\"bandwidth\",\"stream\":\"$dir\",\"attributes\":{\"rate\":$BANDWIDTH_KBS}}"
  done
  PROXY_ENDPOINT=http://$listen
  echo "==> S3 through toxiproxy at $PROXY_ENDPOINT: $LATENCY_MS ms per answer, $BANDWIDTH_KBS KB/s each way" >&2
fi

"$RESTIC_OLD" version >&2
"$RESTIC_NEW" version >&2
# Rotate which tool goes first, so neither always runs on a machine the other warmed up.
# Between rounds: free the disk and the page cache the last round filled (several GB of
# repositories and restored files would otherwise push the next round into memory reclaim),
# warm the dataset again and let ext4 forget the deleted inodes.
settle() {
  echo "==> settling: removing the round's repositories, dropping caches, waiting 65 s" >&2
  find "$WORK" -maxdepth 1 \( -name 'repo-*' -o -name 'restore-*' -o -name 'cache-*' \) -exec rm -rf {} +
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 1 > /proc/sys/vm/drop_caches; fi
  find "$DATA" -type f -print0 | xargs -0 cat > /dev/null
  sleep 65
}

for r in $(seq 1 "$ROUNDS"); do
  echo "==> round $r of $ROUNDS" >&2
  if [ "$r" -gt 1 ] && [ "$MODE" != s3 ]; then settle; fi
  case $((r % 3)) in
    1) run_tool restic "$RESTIC_OLD" "$r"; run_tool arca "$ARCA" "$r"; run_tool restic19 "$RESTIC_NEW" "$r" ;;
    2) run_tool arca "$ARCA" "$r"; run_tool restic19 "$RESTIC_NEW" "$r"; run_tool restic "$RESTIC_OLD" "$r" ;;
    0) run_tool restic19 "$RESTIC_NEW" "$r"; run_tool restic "$RESTIC_OLD" "$r"; run_tool arca "$ARCA" "$r" ;;
  esac
  if [ -n "$RUSTIC" ]; then run_tool rustic "$RUSTIC" "$r"; fi
done

steps="backup1 backup2 restore"
[ "$MODE" = many ] && steps="backup1"
[ "$MODE" = s3 ] && steps="backup1"
[ "$MODE" = proxy ] && steps="backup1 backup2 snapshots ls restore"
table() { # baseline tool name, its label
  local base=$1
  printf '\n==> arca against %s\n' "$2"
  printf '%-8s %9s %9s %6s %10s %10s %6s %9s %9s %6s\n' step base_s arca_s ratio base_cpu arca_cpu ratio base_MiB arca_MiB ratio
  for s in $steps; do
    rt=$(pick T "$base" "$s") at=$(pick T arca "$s") rm=$(pick M "$base" "$s") am=$(pick M arca "$s")
    rc=$(pick C "$base" "$s") ac=$(pick C arca "$s")
    printf '%-8s %9.2f %9.2f %6.2f %10.2f %10.2f %6.2f %9.1f %9.1f %6.2f\n' "$s" "$rt" "$at" \
      "$(echo "$at / $rt" | bc -l)" "$rc" "$ac" "$(echo "$ac / $rc" | bc -l)" \
      "$(echo "$rm / 1024" | bc -l)" "$(echo "$am / 1024" | bc -l)" "$(echo "$am / $rm" | bc -l)"
  done
  if [ "$MODE" != s3 ] && [ "$MODE" != proxy ]; then
    printf 'repository size after the first backup: %s %s, arca %s (ratio %.3f)\n' "$2" \
      "$(numfmt --to=iec "${SIZE[$base]}")" "$(numfmt --to=iec "${SIZE[arca]}")" "$(echo "${SIZE[arca]} / ${SIZE[$base]}" | bc -l)"
  fi
}
table restic "restic 0.14.0 (Debian)"
table restic19 "restic 0.19.1"
if [ -n "$RUSTIC" ]; then table rustic "rustic $("$RUSTIC" --version | awk '{print $2}')"; fi
echo "(median of $ROUNDS rounds: wall seconds, CPU seconds user+system, max RSS MiB; ratio = arca / restic)"
if [ "$MODE" = s3 ]; then
  printf 'arca with -o s3.connections=64: %.2f s, max RSS %.1f MiB (default 5 connections: %.1f MiB)\n' \
    "$(pick T arca64 backup1)" "$(echo "$(pick M arca64 backup1) / 1024" | bc -l)" "$(echo "$(pick M arca backup1) / 1024" | bc -l)"
fi
