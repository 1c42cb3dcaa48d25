#!/usr/bin/env bash
# A real Kubernetes control plane for the operator tests, on 127.0.0.1 with ports picked free and no
# nodes: etcd, kube-apiserver and kube-controller-manager (all controllers but node lifecycle and
# taint eviction, which would evict the pods of the tests' kubelet-less nodes: namespace deletion,
# garbage collector, service accounts, ...), from the binaries scripts/go-tools.sh builds.
#
#   scripts/control-plane.sh start [DIR]   makes a throwaway CA and certificates (openssl) in DIR
#                                          (default $ARCA_TEST_CONTROL_PLANE_DIR, else a fresh
#                                          mktemp -d), starts the three, waits until the API server
#                                          is ready and the controller-manager has made the
#                                          `default` ServiceAccount, writes DIR/kubeconfig (admin,
#                                          group system:masters), DIR/env (export lines) and
#                                          DIR/pids, prints DIR on stdout; on failure stops what it
#                                          started, prints the log tails and exits non-zero
#   scripts/control-plane.sh stop DIR      stops the processes listed in DIR/pids, last started
#                                          first (SIGTERM, SIGKILL after 10 s); keeps DIR
#
# Typical use:  dir=$(mktemp -d); trap 'scripts/control-plane.sh stop "$dir"' EXIT
#               scripts/control-plane.sh start "$dir" >/dev/null; source "$dir/env"
#
# With ARCA_TEST_KWOK set (scripts/go-tools.sh builds it) it also starts kwok, the kubelet of
# the nodes annotated kwok.x-k8s.io/node=fake only (pods Ready, pods/exec served by running the
# commands their Exec objects say on this machine), and DIR/env names that annotation in
# ARCA_TEST_KWOK_NODES (empty without kwok).
#
# DIR/env exports ARCA_TEST_KUBECONFIG, ARCA_TEST_KUBE_SERVER (https://127.0.0.1:PORT),
# ARCA_TEST_KUBE_CA and ARCA_TEST_KUBE_AUDIT_LOG (JSON lines: every request on arca.dev objects,
# at the Metadata level). The binaries come from ARCA_TEST_ETCD, ARCA_TEST_KUBE_APISERVER,
# ARCA_TEST_KUBE_CONTROLLER_MANAGER and ARCA_TEST_KUBECTL (set by `scripts/go-tools.sh build`).
# DIR holds the CA (ca.crt, ca.key), the certificates and keys (apiserver, admin,
# controller-manager), the service-account key pair (sa.key, sa.pub), etcd/ (data), *.log, the
# controller-manager's kubeconfig, pids and env. ARCA_TEST_CONTROL_PLANE_TIMEOUT (seconds,
# default 120) bounds each wait. The service range is 10.0.0.0/24; nothing listens there (no
# kube-proxy, no nodes), so clients must use ARCA_TEST_KUBE_SERVER.
set -euo pipefail

TIMEOUT="${ARCA_TEST_CONTROL_PLANE_TIMEOUT:-120}"
PYTHON="${PYTHON:-python3}"
SERVICE_RANGE="10.0.0.0/24"
SERVICE_IP="10.0.0.1"   # the `kubernetes` Service's address: a SAN only, never dialled
CERT_DAYS=30

say() { printf 'control-plane: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need_bin() {  # variable: the path it holds must be an executable
  local path="${!1:-}"
  [ -n "$path" ] || die "$1 is not set (run: source <(scripts/go-tools.sh build))"
  [ -x "$path" ] || die "$1=$path is not an executable"
}

# N distinct free TCP ports on 127.0.0.1 (all held until all are picked).
free_ports() {
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

# --- certificates ----------------------------------------------------------------------------------

# An ECDSA P-256 key and a certificate for it signed by the CA. ext: extensions in openssl's
# config syntax (one per line).
issue() {  # name subject ext
  local pki="$DIR" name="$1"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$pki/$name.key" -subj "$2" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days "$CERT_DAYS" -sha256 -extfile <(printf '%s\n' "$3") -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

make_pki() {
  local pki="$DIR"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$CERT_DAYS" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=arca-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null || die "openssl could not make the CA"
  issue apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:$SERVICE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  local client="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  issue admin "/O=system:masters/CN=arca-test-admin" "$client"
  issue controller-manager "/CN=system:kube-controller-manager" "$client"
  # The service-account token signing pair.
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  chmod 600 "$pki"/*.key
}

kubeconfig() {  # file server user
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: arca-test
  cluster:
    server: $2
    certificate-authority: $DIR/ca.crt
users:
- name: $3
  user:
    client-certificate: $DIR/$3.crt
    client-key: $DIR/$3.key
contexts:
- name: arca-test
  context:
    cluster: arca-test
    user: $3
current-context: arca-test
EOF
}

# --- processes -------------------------------------------------------------------------------------

# Start a process in its own session (its pid is its process group), detached from our stdio.
spawn() {  # name log command...
  local name="$1" log="$2"
  shift 2
  setsid "$@" </dev/null >"$log" 2>&1 &
  echo "$name $!" >>"$DIR/pids"
}

pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$DIR/pids"; }

alive() {
  local stat
  stat="$(cat 2>/dev/null "/proc/$1/stat")" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

# Run CHECK until it succeeds; fail (with NAME's log tail) if NAME dies or TIMEOUT passes.
wait_until() {  # name log what check...
  local name="$1" log="$2" what="$3" pid deadline=$((SECONDS + TIMEOUT))
  shift 3
  pid="$(pid_of "$name")"
  until "$@" >/dev/null 2>&1; do
    if ! alive "$pid"; then
      say "$name exited (pid $pid) before $what; last lines of $log:"
      tail -n 30 "$log" >&2 || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$name: no $what within $TIMEOUT s; last lines of $log:"
      tail -n 30 "$log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

http_ok() {  # url: 200 over plain HTTP
  "$PYTHON" - "$1" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

https_ok() {  # url: 200 over HTTPS, the server's certificate not checked (self-signed)
  "$PYTHON" - "$1" <<'EOF'
import ssl, sys, urllib.request
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
with urllib.request.urlopen(sys.argv[1], timeout=5, context=ctx) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

kubectl() { "$ARCA_TEST_KUBECTL" --kubeconfig "$DIR/kubeconfig" --request-timeout=5s "$@"; }

start_failed() { if [ "$1" -ne 0 ]; then stop_dir "$DIR"; fi; }

# --- kwok: the kubelet of simulated nodes -----------------------------------------------------------

# The annotation that hands a node to kwok; nodes without it (the tests' own) it leaves alone.
KWOK_ANNOTATION="kwok.x-k8s.io/node=fake"

# kwok (ARCA_TEST_KWOK, built by scripts/go-tools.sh with its Exec CRDs and stages beside it)
# makes annotated nodes and their pods Ready and serves their pods/exec, running the commands
# its Exec objects name on this machine. The API server reaches it at the node's InternalIP
# (127.0.0.1) and port over HTTPS without checking its certificate (no
# --kubelet-certificate-authority). Its commands inherit its environment: it gets a bare one.
start_kwok() {
  need_bin ARCA_TEST_KWOK
  local files port stage
  files="$(dirname "$ARCA_TEST_KWOK")"
  kubectl apply -f "$files/crds/kwok.x-k8s.io_execs.yaml" -f "$files/crds/kwok.x-k8s.io_clusterexecs.yaml" >/dev/null
  kubectl wait --for condition=established crd/execs.kwok.x-k8s.io crd/clusterexecs.kwok.x-k8s.io >/dev/null
  port="$(free_ports 1)"
  # A --config file gets no defaults: every option kwok needs is spelled out.
  {
    printf '%s\n' \
      "apiVersion: config.kwok.x-k8s.io/v1alpha1" \
      "kind: KwokConfiguration" \
      "options:" \
      "  enableCRDs: [Exec, ClusterExec]" \
      "  manageNodesWithAnnotationSelector: $KWOK_ANNOTATION" \
      "  nodeIP: 127.0.0.1" \
      "  nodePort: $port" \
      "  serverAddress: 127.0.0.1:$port" \
      "  enableDebuggingHandlers: true" \
      "  enableProfilingHandler: false" \
      "  podPlayStageParallelism: 4" \
      "  nodePlayStageParallelism: 4" \
      "  nodeLeaseParallelism: 4" \
      "  podsOnNodeSyncParallelism: 1"
    for stage in "$files"/stages/*.yaml; do printf -- '---\n'; cat "$stage"; done
  } >"$DIR/kwok.yaml"
  mkdir -p "$DIR/kwok-home"
  spawn kwok "$DIR/kwok.log" env -i PATH="$PATH" HOME="$DIR/kwok-home" \
    "$ARCA_TEST_KWOK" --kubeconfig "$DIR/kubeconfig" --config "$DIR/kwok.yaml"
  wait_until kwok "$DIR/kwok.log" "healthy answer on http://127.0.0.1:$port/healthz" \
    http_ok "http://127.0.0.1:$port/healthz"
}

start() {
  DIR="${1:-${ARCA_TEST_CONTROL_PLANE_DIR:-}}"
  if [ -z "$DIR" ]; then DIR="$(mktemp -d "${TMPDIR:-/tmp}/arca-kube.XXXXXX")"; fi
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  [ ! -s "$DIR/pids" ] || die "$DIR/pids exists: already started there? (scripts/control-plane.sh stop $DIR)"
  local var
  for var in ARCA_TEST_ETCD ARCA_TEST_KUBE_APISERVER ARCA_TEST_KUBE_CONTROLLER_MANAGER ARCA_TEST_KUBECTL; do
    need_bin "$var"
  done
  command -v openssl >/dev/null 2>&1 || die "openssl is needed for the control plane's certificates"
  trap 'start_failed $?' EXIT

  local t0=$SECONDS
  make_pki
  : >"$DIR/pids"
  local p
  read -r -a p <<<"$(free_ports 4)"
  [ "${#p[@]}" -eq 4 ] || die "could not pick free ports"
  local etcd_port=${p[0]} peer_port=${p[1]} api_port=${p[2]} kcm_port=${p[3]}
  local etcd_url="http://127.0.0.1:$etcd_port" server="https://127.0.0.1:$api_port"

  # etcd: one member, plain HTTP on loopback, no fsync (the data is thrown away).
  mkdir -p -m 700 "$DIR/etcd"
  spawn etcd "$DIR/etcd.log" "$ARCA_TEST_ETCD" --name arca-test --data-dir "$DIR/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "arca-test=http://127.0.0.1:$peer_port" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn
  wait_until etcd "$DIR/etcd.log" "healthy answer on $etcd_url/health" http_ok "$etcd_url/health"

  # The audit log records who did what to Arca's objects (get, list, watch, patch...), so
  # the tests can tell a watch from a polling loop; other groups are left out.
  cat >"$DIR/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources:
  - group: arca.dev
- level: None
EOF

  # --cert-dir: where it would write certificates it makes itself (none: they are all given).
  spawn kube-apiserver "$DIR/kube-apiserver.log" "$ARCA_TEST_KUBE_APISERVER" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$DIR/apiserver-generated" \
    --etcd-servers="$etcd_url" \
    --authorization-mode=Node,RBAC \
    --client-ca-file="$DIR/ca.crt" \
    --tls-cert-file="$DIR/apiserver.crt" --tls-private-key-file="$DIR/apiserver.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$DIR/sa.pub" \
    --service-account-signing-key-file="$DIR/sa.key" \
    --service-cluster-ip-range="$SERVICE_RANGE" \
    --allow-privileged=true --profiling=false \
    --endpoint-reconciler-type=none \
    --audit-policy-file="$DIR/audit-policy.yaml" --audit-log-path="$DIR/audit.log" \
    --audit-log-format=json --audit-log-mode=blocking
  kubeconfig "$DIR/kubeconfig" "$server" admin
  wait_until kube-apiserver "$DIR/kube-apiserver.log" "ready answer on $server/readyz" \
    kubectl get --raw /readyz

  kubeconfig "$DIR/controller-manager.kubeconfig" "$server" controller-manager
  spawn kube-controller-manager "$DIR/kube-controller-manager.log" "$ARCA_TEST_KUBE_CONTROLLER_MANAGER" \
    --kubeconfig="$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$DIR/controller-manager.kubeconfig" \
    --client-ca-file="$DIR/ca.crt" --authentication-skip-lookup=true \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" \
    --cert-dir="$DIR/controller-manager-generated" \
    --leader-elect=false \
    --controllers='*,-node-lifecycle-controller,-taint-eviction-controller' \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$DIR/sa.key" \
    --root-ca-file="$DIR/ca.crt" \
    --cluster-signing-cert-file="$DIR/ca.crt" --cluster-signing-key-file="$DIR/ca.key" \
    --service-cluster-ip-range="$SERVICE_RANGE" \
    --profiling=false
  wait_until kube-controller-manager "$DIR/kube-controller-manager.log" \
    "healthy answer on https://127.0.0.1:$kcm_port/healthz" https_ok "https://127.0.0.1:$kcm_port/healthz"
  # Its service-account controller is running once the `default` namespace has its ServiceAccount.
  wait_until kube-controller-manager "$DIR/kube-controller-manager.log" \
    "ServiceAccount default/default" kubectl -n default get serviceaccount default

  local kwok_nodes=""
  if [ -n "${ARCA_TEST_KWOK:-}" ]; then
    start_kwok
    kwok_nodes=$KWOK_ANNOTATION
  fi

  {
    printf 'export ARCA_TEST_CONTROL_PLANE_DIR=%q\n' "$DIR"
    printf 'export ARCA_TEST_KWOK_NODES=%q\n' "$kwok_nodes"
    printf 'export ARCA_TEST_KUBECONFIG=%q\n' "$DIR/kubeconfig"
    printf 'export ARCA_TEST_KUBE_SERVER=%q\n' "$server"
    printf 'export ARCA_TEST_KUBE_CA=%q\n' "$DIR/ca.crt"
    printf 'export ARCA_TEST_KUBE_AUDIT_LOG=%q\n' "$DIR/audit.log"
  } >"$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
  say "etcd, kube-apiserver ($server) and kube-controller-manager up in $((SECONDS - t0)) s; environment in $DIR/env"
  trap - EXIT
  printf '%s\n' "$DIR"
}

# --- stop ------------------------------------------------------------------------------------------

# One process after the other, the last started first (the controller-manager, then the API
# server while etcd still answers, which lets it shut down quickly, then etcd): SIGTERM, then
# SIGKILL if it is still there after 10 s.
stop_dir() {
  local dir name pid cmd i lines=()
  dir="$(cd "$1" 2>/dev/null && pwd)" || return 0
  [ -f "$dir/pids" ] || return 0
  mapfile -t lines <"$dir/pids"
  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    read -r name pid <<<"${lines[i]}" || true
    [ -n "${pid:-}" ] || continue
    # Only a live process of ours: its command line names this directory (guards pid reuse).
    cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)"
    [[ "$cmd" == *"$dir"* ]] || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local n
    for n in $(seq 1 50); do
      alive "$pid" || break
      if [ "$n" -eq 50 ]; then
        say "$name still running 10 s after SIGTERM, killing it (pid $pid)"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
  done
  mv "$dir/pids" "$dir/pids.stopped"
  say "control plane in $dir stopped"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) [ -n "${2:-}" ] || die "usage: $0 stop DIR"; stop_dir "$2" ;;
  *) echo "usage: $0 start [DIR] | stop DIR" >&2; exit 2 ;;
esac
