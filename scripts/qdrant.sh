#!/usr/bin/env bash
# Private single-node Qdrant server for Kasal's distributed tests.
#
#   bash scripts/qdrant.sh up       # start; last stdout line = URL (nothing, exit 3: no binary)
#   bash scripts/qdrant.sh down     # stop the server (SIGTERM, wait, then SIGKILL) if running
#   bash scripts/qdrant.sh url      # print the URL
#   bash scripts/qdrant.sh status   # show whether the server is running (exit 0 if so)
#   bash scripts/qdrant.sh destroy  # stop and delete the server's directory (collections)
#
# The binary, first found of: KASAL_QDRANT_BIN, `qdrant` on the PATH, ../shared/bin/qdrant
# beside the repository (a Qdrant v1.18.3 built for the test machines). Qdrant publishes no
# Debian package and the machines have no network for a download: without a binary, `up`
# says so in one line and exits 3, and the tests that need the server report they did not run.
#
# Environment:
#   KASAL_QDRANT_BIN            the server binary             (default: see above)
#   KASAL_QDRANT_DIR            server directory              (default: <repo>/.services/qdrant)
#   KASAL_QDRANT_PORT           HTTP port on 127.0.0.1        (default: 56333)
#   KASAL_QDRANT_GRPC_PORT      gRPC port on 127.0.0.1        (default: 56334)
#   KASAL_QDRANT_START_TIMEOUT  seconds to wait for ready     (default: 60)
#
# Layout of the server directory: config.yaml, storage/, snapshots/, qdrant.out, qdrant.pid
# Informational messages go to stderr; stdout carries only the URL.
set -euo pipefail

HOST="127.0.0.1"
PORT="${KASAL_QDRANT_PORT:-56333}"
GRPC_PORT="${KASAL_QDRANT_GRPC_PORT:-56334}"
URL="http://${HOST}:${PORT}"
START_TIMEOUT="${KASAL_QDRANT_START_TIMEOUT:-60}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QDRANT_DIR="${KASAL_QDRANT_DIR:-${REPO_ROOT}/.services/qdrant}"
case "$QDRANT_DIR" in /*) ;; *) QDRANT_DIR="$PWD/$QDRANT_DIR" ;; esac
PID_FILE="${QDRANT_DIR}/qdrant.pid"

log() { printf '[qdrant.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

find_binary() { # prints the server binary, or nothing
    local candidate
    for candidate in "${KASAL_QDRANT_BIN:-}" "$(command -v qdrant 2>/dev/null || true)" \
                     "${REPO_ROOT}/../shared/bin/qdrant"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
}

running_pid() { # prints the server's pid if it is running
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    local cmdline  # a recycled pid; read into a variable: no pipe, so no SIGPIPE under pipefail
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmdline" == *"--config-path ${QDRANT_DIR}/"* ]] || return 1
    echo "$pid"
}

answers() { # the server says every shard is ready
    local reply
    reply="$(exec 2>/dev/null; exec 3<>"/dev/tcp/$HOST/$PORT" \
             && printf 'GET /readyz HTTP/1.0\r\nConnection: close\r\n\r\n' >&3 && timeout 5 cat <&3)" || return 1
    case "$reply" in *"200 OK"*) return 0 ;; *) return 1 ;; esac
}

write_config() {
    mkdir -p "$QDRANT_DIR/storage" "$QDRANT_DIR/snapshots"
    cat >"$QDRANT_DIR/config.yaml" <<EOF
service:
  host: ${HOST}
  http_port: ${PORT}
  grpc_port: ${GRPC_PORT}
storage:
  storage_path: ${QDRANT_DIR}/storage
  snapshots_path: ${QDRANT_DIR}/snapshots
telemetry_disabled: true
log_level: WARN
EOF
}

wait_ready() { # until the server answers; $1: its pid
    local started=$SECONDS
    while ! answers; do
        if ! kill -0 "$1" 2>/dev/null; then
            tail -n 20 "$QDRANT_DIR/qdrant.out" >&2 || true
            return 1
        fi
        if [ $((SECONDS - started)) -ge "$START_TIMEOUT" ]; then
            return 1
        fi
        sleep 0.2
    done
}

cmd_up() {
    local pid child binary started=$SECONDS
    if pid="$(running_pid)"; then
        wait_ready "$pid" || die "running (pid $pid) but not ready: see $QDRANT_DIR/qdrant.out, or 'down' it"
        log "already running (pid $pid, $URL, $QDRANT_DIR)"
        echo "$URL"
        return 0
    fi
    binary="$(find_binary)"
    if [ -z "$binary" ]; then
        log "no Qdrant server binary (KASAL_QDRANT_BIN, qdrant on the PATH, ../shared/bin/qdrant): the tests that need one will say they did not run"
        exit 3
    fi
    if answers; then
        die "port $PORT answers but is not this server (set KASAL_QDRANT_PORT)"
    fi
    write_config
    log "starting $binary on $URL (data in $QDRANT_DIR)"
    # its working directory is the server's: it writes nothing in the caller's
    (cd "$QDRANT_DIR" && exec nohup "$binary" --config-path "$QDRANT_DIR/config.yaml" \
        >"$QDRANT_DIR/qdrant.out" 2>&1 </dev/null) &
    child=$!
    echo "$child" >"$PID_FILE"
    if ! wait_ready "$child"; then
        kill -KILL "$child" 2>/dev/null || true  # never left half-started
        rm -f "$PID_FILE"
        die "not ready after $((SECONDS - started)) s (see $QDRANT_DIR/qdrant.out)"
    fi
    log "ready in $((SECONDS - started)) s"
    echo "$URL"
}

gone() { # waits up to $2 tenths of a second for pid $1 to end; fails if it did not
    local _
    for _ in $(seq 1 "$2"); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$1" 2>/dev/null
}

cmd_down() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running"
        return 0
    fi
    log "stopping server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! gone "$pid" 100; then
        log "still running after 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        gone "$pid" 50 || true
    fi
    rm -f "$PID_FILE"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        log "running (pid $pid, $URL, $QDRANT_DIR)"
        return 0
    fi
    log "not running"
    return 1
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    url) echo "$URL" ;;
    status) cmd_status ;;
    destroy) cmd_down; rm -rf "$QDRANT_DIR"; log "removed $QDRANT_DIR" ;;
    *) echo "usage: $0 {up|down|url|status|destroy}" >&2; exit 2 ;;
esac
