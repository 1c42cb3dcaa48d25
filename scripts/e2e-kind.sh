#!/usr/bin/env bash
# End to end on a real cluster: kind (or k3d with E2E_CLUSTER=k3d) and MinIO. NOT run by this
# repository's CI (no container runtime there); for users and for CI elsewhere.
#
#   bash scripts/e2e-kind.sh            builds the image, creates a cluster "arca-e2e", runs the
#                                       cycle below, deletes the cluster (E2E_KEEP=1 keeps it)
#
# Needs: docker, kind (or k3d), kubectl, and a built `arca` (cargo build -p arca).
# The cycle: MinIO in the cluster as the storage location; a pod with an annotated PVC and
# data; `arca cluster backup create --wait`; the namespace deleted; `arca cluster restore create
# --wait`; the restored file's checksum compared with the original's; a second backup, whose
# pod volume backup must name the first snapshot as its parent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLUSTER="${E2E_CLUSTER_NAME:-arca-e2e}"
IMAGE="ghcr.io/arca-backup/arca:e2e"
ARCA="${ARCA_BIN:-target/debug/arca}"
say() { printf '\n==> %s\n' "$*" >&2; }
for t in docker kubectl "${E2E_CLUSTER:-kind}"; do
  command -v "$t" >/dev/null || { echo "error: $t is needed" >&2; exit 1; }
done
[ -x "$ARCA" ] || { echo "error: build arca first (cargo build -p arca) or set ARCA_BIN" >&2; exit 1; }

say "building $IMAGE"
docker build -f deploy/Dockerfile -t "$IMAGE" .

say "creating the cluster $CLUSTER"
if [ "${E2E_CLUSTER:-kind}" = k3d ]; then
  k3d cluster create "$CLUSTER" --wait
  k3d image import -c "$CLUSTER" "$IMAGE"
else
  kind create cluster --name "$CLUSTER" --wait 120s
  kind load docker-image --name "$CLUSTER" "$IMAGE"
fi
cleanup() { [ "${E2E_KEEP:-}" = 1 ] || { "${E2E_CLUSTER:-kind}" delete cluster --name "$CLUSTER" 2>/dev/null || k3d cluster delete "$CLUSTER"; }; }
trap cleanup EXIT

say "deploying MinIO"
kubectl create namespace minio
kubectl -n minio create deployment minio --image=quay.io/minio/minio:latest -- minio server /data
kubectl -n minio set env deployment/minio MINIO_ROOT_USER=arca MINIO_ROOT_PASSWORD=arca-e2e-secret
kubectl -n minio expose deployment minio --port 9000
kubectl -n minio rollout status deployment/minio --timeout 180s
kubectl -n minio run mc --rm -i --restart=Never --image=quay.io/minio/mc:latest --command -- \
  sh -c 'mc alias set m http://minio.minio:9000 arca arca-e2e-secret && mc mb m/backups'

say "deploying Arca"
kubectl apply -k deploy/
kubectl -n arca-system set image deployment/arca-operator operator="$IMAGE"
kubectl -n arca-system set env deployment/arca-operator ARCA_AGENT_IMAGE="$IMAGE"
kubectl -n arca-system set image daemonset/arca-agent agent="$IMAGE"
kubectl -n arca-system rollout status deployment/arca-operator --timeout 180s
kubectl -n arca-system rollout status daemonset/arca-agent --timeout 180s
kubectl -n arca-system create secret generic minio-credentials \
  --from-literal=AWS_ACCESS_KEY_ID=arca --from-literal=AWS_SECRET_ACCESS_KEY=arca-e2e-secret
kubectl apply -f - <<'YAML'
apiVersion: arca.dev/v1alpha1
kind: BackupStorageLocation
metadata: {name: default, namespace: arca-system}
spec:
  provider: s3
  bucket: backups
  prefix: e2e
  default: true
  credential: {name: minio-credentials}
  config: {endpoint: "http://minio.minio:9000", region: us-east-1, pathStyle: true}
YAML

say "an application with data"
kubectl create namespace shop
kubectl apply -f - <<'YAML'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: shop
  annotations: {backup.arca.dev/backup-volumes: data}
spec:
  containers:
    - name: app
      image: busybox:1.36
      command: [sh, -c, "head -c 50000000 /dev/urandom > /data/blob; sleep 100000"]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
YAML
kubectl -n shop wait pod/web-0 --for=condition=Ready --timeout 180s
sleep 5
before=$(kubectl -n shop exec web-0 -- md5sum /data/blob | cut -d' ' -f1)

say "backup"
"$ARCA" cluster backup create b1 --include-namespaces shop --wait
"$ARCA" cluster backup describe b1

say "losing the namespace"
kubectl delete namespace shop --wait

say "restore"
"$ARCA" cluster restore create r1 --from-backup b1 --wait
"$ARCA" cluster restore describe r1
kubectl -n shop wait pod/web-0 --for=condition=Ready --timeout 300s
after=$(kubectl -n shop exec web-0 -- md5sum /data/blob | cut -d' ' -f1)
[ "$before" = "$after" ] || { echo "error: restored data differs ($before vs $after)" >&2; exit 1; }

say "an incremental backup"
"$ARCA" cluster backup create b2 --include-namespaces shop --wait
parent=$(kubectl -n arca-system get podvolumebackup b2-web-0-data -o jsonpath='{.status.parentSnapshotId}')
first=$(kubectl -n arca-system get podvolumebackup b1-web-0-data -o jsonpath='{.status.snapshotId}')
[ "$parent" = "$first" ] || { echo "error: b2's parent is '$parent', not b1's snapshot $first" >&2; exit 1; }
say "end to end: passed"
