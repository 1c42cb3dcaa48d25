#!/usr/bin/env bash
# The Go programs of the test bench, built from source at pinned versions through the Go module
# proxy (no release downloads), into a cache shared by every clone on the machine:
#   kube    kube-apiserver, kube-controller-manager, kubectl   k8s.io/kubernetes v1.36.3
#   etcd    etcd                                                go.etcd.io/etcd/server/v3 v3.6.16
#   minio   minio                                               github.com/minio/minio (a commit)
#   restic  restic (the newer one the interop tests use)        github.com/restic/restic v0.19.1
#   helm    helm (lint and template of deploy/chart)            helm.sh/helm/v4 v4.3.2
#   kwok    kwok (serves pods/exec for simulated nodes)         sigs.k8s.io/kwok v0.8.0, with
#                                                               scripts/bench/kwok/*.patch applied;
#                                                               its Exec CRDs and stages beside it
#   toxiproxy  toxiproxy-server (scripts/compare.sh only; built when named)
#                                                               github.com/Shopify/toxiproxy/v2 v2.12.0
#
#   scripts/go-tools.sh build [FILE [TOOL...]]   builds what is not in the cache yet (the six test
#                                      tools, or the TOOLs named), then writes export lines
#                                      (ARCA_TEST_KUBE_APISERVER, ARCA_TEST_KUBE_CONTROLLER_MANAGER,
#                                      ARCA_TEST_KUBECTL, ARCA_TEST_ETCD, ARCA_TEST_MINIO,
#                                      ARCA_TEST_RESTIC_NEW, ARCA_TEST_HELM, ARCA_TEST_KWOK;
#                                      ARCA_TOXIPROXY) to
#                                      FILE, or to stdout without FILE (or with FILE -)
#
# Typical use:  scripts/go-tools.sh build "$dir/go-tools.env"; source "$dir/go-tools.env"
#
# Each tool has a small wrapper module in scripts/bench/<tool>/ (go.mod and go.sum, the programs
# named by `tool` directives): modules with replace directives of their own (k8s.io/kubernetes,
# etcd's server) cannot be `go install`ed, so the wrapper pins what they replace instead. Its
# binaries go to $ARCA_GO_TOOLS_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/arca-go-tools) in
# <tool>-<version>/, with a stamp (a hash of the wrapper's go.mod, go.sum and build flags): a tool
# whose stamp matches is not built again, so a second run costs a second, from any clone. A cold
# build of everything takes a long while on 2 cores (see the times printed); Go's own build cache
# (`go env GOCACHE`) makes a rebuild after a flag or pin change much quicker.
# Go's defaults otherwise (cgo where a C compiler is found: none of the five needs it).
# Needs Go 1.24 or newer on PATH (a `go` older than the wrappers' `go` line fetches a newer
# toolchain through the proxy by itself, unless GOTOOLCHAIN=local).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/scripts/bench"
CACHE="${ARCA_GO_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/arca-go-tools}"

say() { printf 'go-tools: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

TOOLS=(kube etcd minio restic helm kwok)

KUBE_VERSION=v1.36.3
KUBE_MINOR=36
ETCD_VERSION=v3.6.16
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_COMMIT=7aac2a2c5b7c             # the pseudo-version's commit (MinIO has no semver tags)
MINIO_TIME=2026-02-12T20:18:48Z       # and its time: MinIO's release-style version
RESTIC_VERSION=v0.19.1                # the newest the proxy serves; it reports 0.19.1 by itself
TOXIPROXY_VERSION=v2.12.0
HELM_VERSION=v4.3.2
KWOK_VERSION=v0.8.0

# Per tool: version, ldflags, and the binaries as NAME=PACKAGE, each with its export variable.
tool_version() {
  case "$1" in
    kube) echo "$KUBE_VERSION" ;; etcd) echo "$ETCD_VERSION" ;;
    minio) echo "$MINIO_VERSION" ;; restic) echo "$RESTIC_VERSION" ;;
    toxiproxy) echo "$TOXIPROXY_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
  esac
}

tool_ldflags() {
  local v
  case "$1" in
    kube)  # what the Kubernetes release build stamps, so that --version and kubectl version tell
      for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf ' -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean' \
          "$v" "$KUBE_VERSION" "$v" "$v" "$KUBE_MINOR" "$v"
      done | sed 's/^/-s -w/' ;;
    minio)
      v=github.com/minio/minio/cmd
      echo "-s -w -X $v.Version=$MINIO_TIME -X $v.CopyrightYear=${MINIO_TIME%%-*}" \
        "-X $v.ReleaseTag=DEVELOPMENT.${MINIO_TIME//:/-} -X $v.CommitID=$MINIO_COMMIT -X $v.ShortCommitID=$MINIO_COMMIT" ;;
    helm)  # what helm's Makefile stamps for a tagged release, so that `helm version` tells
      v=helm.sh/helm/v4/internal/version
      echo "-s -w -X $v.version=$HELM_VERSION -X $v.metadata= -X $v.gitTreeState=clean" ;;
    *) echo "-s -w" ;;
  esac
}

tool_binaries() {  # lines: binary package export-variable
  case "$1" in
    kube)
      echo "kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver ARCA_TEST_KUBE_APISERVER"
      echo "kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager ARCA_TEST_KUBE_CONTROLLER_MANAGER"
      echo "kubectl k8s.io/kubernetes/cmd/kubectl ARCA_TEST_KUBECTL" ;;
    etcd) echo "etcd go.etcd.io/etcd/server/v3 ARCA_TEST_ETCD" ;;
    minio) echo "minio github.com/minio/minio ARCA_TEST_MINIO" ;;
    restic) echo "restic github.com/restic/restic/cmd/restic ARCA_TEST_RESTIC_NEW" ;;
    toxiproxy) echo "toxiproxy-server github.com/Shopify/toxiproxy/v2/cmd/server ARCA_TOXIPROXY" ;;
    helm) echo "helm helm.sh/helm/v4/cmd/helm ARCA_TEST_HELM" ;;
    kwok) echo "kwok sigs.k8s.io/kwok/cmd/kwok ARCA_TEST_KWOK" ;;
  esac
}

version_line() {  # binary -> first line of its version output
  case "$(basename "$1")" in
    restic) "$1" version ;;
    kubectl) "$1" version --client ;;
    helm) "$1" version --short ;;
    *) "$1" --version ;;
  esac 2>&1 | head -n 1
}

# The stamp: what went into the binaries. Another clone with the same files shares them.
stamp_of() {
  {
    cat "$BENCH/$1/go.mod" "$BENCH/$1/go.sum"
    cat "$BENCH/$1"/*.patch 2>/dev/null || true
    tool_ldflags "$1"
    tool_binaries "$1"
  } | sha256sum | cut -d' ' -f1
}

# The module a tool's patches apply to (a tool with scripts/bench/<tool>/*.patch needs one).
patched_module() {
  case "$1" in
    kwok) echo "sigs.k8s.io/kwok $KWOK_VERSION" ;;
  esac
}

# A go.work in $2 that builds the wrapper of tool $1 against a patched copy of its module:
# `go build -overlay` may not replace files in the module cache, a workspace replace may. The
# wrapper's go.mod and go.sum still pin every other module. Prints the go.work's path.
patched_workspace() {  # tool, scratch dir
  local name="$1" scratch="$2" module version dir p
  read -r module version < <(patched_module "$name")
  [ -n "$module" ] || die "scripts/bench/$name has patches but no module to apply them to"
  dir="$(cd "$BENCH/$name" && go mod download -json "$module@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$dir" ] || die "go mod download $module@$version gave no folder"
  cp -r "$dir" "$scratch/src"
  chmod -R u+w "$scratch/src"
  for p in "$BENCH/$name"/*.patch; do
    patch -s -d "$scratch/src" -p1 <"$p" >&2 || die "$(basename "$p") does not apply to $module $version"
  done
  printf 'go %s\n\nuse %s\n\nreplace %s %s => %s\n' \
    "$(sed -n 's/^go //p' "$BENCH/$name/go.mod")" "$BENCH/$name" "$module" "$version" "$scratch/src" \
    >"$scratch/go.work"
  echo "$scratch/go.work"
}

# What a tool needs beside its binary, copied from its module into $2.
tool_files() {  # tool, destination
  case "$1" in
    kwok)  # the Exec CRDs and the stages that make simulated nodes and pods Ready
      local dir
      dir="$(cd "$BENCH/kwok" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
      mkdir -p "$2/crds" "$2/stages"
      cp "$dir/kustomize/crd/bases/kwok.x-k8s.io_execs.yaml" \
        "$dir/kustomize/crd/bases/kwok.x-k8s.io_clusterexecs.yaml" "$2/crds/"
      cp "$dir/kustomize/stage/node/fast/node-initialize.yaml" \
        "$dir/kustomize/stage/pod/fast/pod-ready.yaml" \
        "$dir/kustomize/stage/pod/fast/pod-delete.yaml" "$2/stages/"
      chmod -R u+w "$2/crds" "$2/stages" ;;
  esac
}

build_tool() {  # name
  local name="$1" version dest stamp tmp ldflags t0 bin pkg var
  version="$(tool_version "$name")"
  dest="$CACHE/$name-$version"
  stamp="$(stamp_of "$name")"
  local bins=() pkgs=() have=1
  while read -r bin pkg var; do bins+=("$bin"); pkgs+=("$pkg"); done < <(tool_binaries "$name")
  for bin in "${bins[@]}"; do [ -x "$dest/$bin" ] || have=0; done
  if [ "$have" = 1 ] && [ "$(cat "$dest/.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  ldflags="$(tool_ldflags "$name")"

  t0=$SECONDS
  rm -rf "$CACHE/.$name-$version".*  # what an interrupted build left (we hold the lock)
  tmp="$(mktemp -d "$CACHE/.$name-$version.XXXXXX")"
  chmod 755 "$tmp"
  local out="$tmp/"
  if [ "${#pkgs[@]}" -eq 1 ]; then out="$tmp/${bins[0]}"; fi  # etcd's package ends in /v3
  say "building $name $version (${bins[*]}): go build in scripts/bench/$name (cold: many minutes)"
  local work=off
  if compgen -G "$BENCH/$name/*.patch" >/dev/null; then
    mkdir "$tmp/.patched"
    work="$(patched_workspace "$name" "$tmp/.patched")"
  fi
  if ! (cd "$BENCH/$name" && GOWORK="$work" go build -trimpath -ldflags="$ldflags" -o "$out" "${pkgs[@]}") >&2; then
    rm -rf "$tmp"
    die "go build of $name $version failed (scripts/bench/$name)"
  fi
  rm -rf "$tmp/.patched"
  tool_files "$name" "$tmp"
  for bin in "${bins[@]}"; do
    [ -x "$tmp/$bin" ] || { rm -rf "$tmp"; die "go build of $name did not produce $bin"; }
    say "  $bin: $(version_line "$tmp/$bin")"
  done
  printf '%s\n' "$stamp" >"$tmp/.stamp"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  say "built $name $version into $dest in $((SECONDS - t0)) s"
}

build() {
  local file="${1:-}" name lock t0=$SECONDS names
  [ "$file" = - ] && file=""
  shift || true
  if [ $# -gt 0 ]; then names=("$@"); else names=("${TOOLS[@]}"); fi
  command -v go >/dev/null 2>&1 ||
    die "go is not on PATH: Go 1.24 or newer is needed to build the test bench (scripts/bench/)"
  mkdir -p "$CACHE"
  # One build of a tool at a time per machine: a second run waits here, then finds it cached.
  for name in "${names[@]}"; do
    if command -v flock >/dev/null 2>&1; then
      exec {lock}>"$CACHE/.$name.lock"
      flock "$lock"
      build_tool "$name"
      exec {lock}>&-
    else
      build_tool "$name"
    fi
  done

  local lines="" bin pkg var dest
  for name in "${names[@]}"; do
    dest="$CACHE/$name-$(tool_version "$name")"
    while read -r bin pkg var; do
      [ -x "$dest/$bin" ] || die "$dest/$bin is missing"
      lines+="$(printf 'export %s=%q' "$var" "$dest/$bin")"$'\n'
    done < <(tool_binaries "$name")
  done
  if [ -n "$file" ]; then
    printf '%s' "$lines" >"$file.tmp"
    mv "$file.tmp" "$file"
  else
    printf '%s' "$lines"
  fi
  say "go tools ready in $((SECONDS - t0)) s (cache $CACHE)"
}

case "${1:-}" in
  build) shift; build "$@" ;;
  *) echo "usage: $0 build [FILE]" >&2; exit 2 ;;
esac
