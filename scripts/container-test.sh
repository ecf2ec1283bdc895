#!/usr/bin/env bash
# Builds the image and answers a seed question over HTTP from a running container:
#   ingest seeds/ into a volume (one container), serve it (another), wait for /health, POST /v1/ask.
# ENGINE=podman (default) or docker. The build context is the Dockerfile + wheelhouse/ (make wheelhouse), and the
# build runs with --network none: it must need no network.
# BASE: the base image (default python:3.11-slim). Where no container registry is reachable, build a local one
# first: scripts/local-base-image.sh, then BASE=localhost/rag-base:bookworm.
# ENGINE_OPTS / RUN_OPTS: extra flags for the engine / for build and run, for sandboxes that need them (this
# project's dev machines: ENGINE_OPTS="--runtime runc" RUN_OPTS="--ulimit nofile=1024:1024 --ulimit
# nproc=1024:1024"; see README, Shipping).
set -euo pipefail
ENGINE=${ENGINE:-podman}
IMAGE=${IMAGE:-localhost/rag:test}
BASE=${BASE:-python:3.11-slim}
ENGINE_OPTS=${ENGINE_OPTS:-}
RUN_OPTS=${RUN_OPTS:-}
PORT=${PORT:-18000}
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
engine() { "$ENGINE" $ENGINE_OPTS "$@"; }

test -d wheelhouse || { echo "no wheelhouse/: run make wheelhouse first" >&2; exit 2; }
format=()
[ "$ENGINE" = podman ] && format=(--format docker)  # keeps HEALTHCHECK (the OCI format has none)
engine build "${format[@]}" --network none $RUN_OPTS --build-arg "BASE=$BASE" -t "$IMAGE" .

volume="rag-test-index-$$"
container="rag-test-$$"
cleanup() {
  engine rm -f "$container" >/dev/null 2>&1 || true
  engine volume rm -f "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT
engine volume create "$volume" >/dev/null
engine run --rm --network none $RUN_OPTS -v "$volume:/data/index" -v "$root/seeds:/seeds:ro" "$IMAGE" rag ingest /seeds

# Host networking with the server's port set: no port mapping to set up (slirp/netavark may be missing).
engine run -d --name "$container" --network host $RUN_OPTS -e "RAG_SERVER__PORT=$PORT" -v "$volume:/data/index" \
  "$IMAGE" >/dev/null
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/health"; echo
if [ "$ENGINE" = podman ]; then
  # podman schedules HEALTHCHECK through systemd timers, absent in some sandboxes; run the check itself once.
  engine healthcheck run "$container" && echo "HEALTHCHECK: healthy"
fi
answer=$(curl -fsS -X POST "http://127.0.0.1:$PORT/v1/ask" -H 'Content-Type: application/json' \
  -d "{\"question\": \"What was Calix's Q4 revenue?\"}")
echo "$answer" | python3 -c '
import json, sys
a = json.load(sys.stdin)
print(a["answer"])
assert "$206 million" in a["answer"], "no $206 million in the answer"
assert a["citations"] and a["citations"][0]["quote"], "no citation"
print("cited:", a["citations"][0]["title"], a["citations"][0]["start"], a["citations"][0]["end"])
'
curl -fsS "http://127.0.0.1:$PORT/" | grep -q "static/app.js"
user=$(engine exec "$container" id -un)
[ "$user" = rag ] || { echo "server runs as $user, not rag" >&2; exit 1; }
echo "container test passed ($ENGINE, base $BASE)"
