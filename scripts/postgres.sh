#!/usr/bin/env bash
# Private PostgreSQL cluster for Kasal tests.
#
#   bash scripts/postgres.sh up       # install (if needed), init, start; last stdout line = URL
#   bash scripts/postgres.sh down     # stop the cluster (pg_ctl stop -m fast) if running
#   bash scripts/postgres.sh url      # print the connection URL
#   bash scripts/postgres.sh status   # show whether the cluster is running
#   bash scripts/postgres.sh destroy  # stop and delete the cluster's directory
#
# The cluster is created with initdb in its own directory and never touches the
# system's default cluster (/var/lib/postgresql/<ver>/main, port 5432).
#
# Environment:
#   KASAL_PG_DIR   cluster directory   (default: <repo>/.services/pg; falls back to
#                                       /tmp/kasal-pg-$UID when the postgres user
#                                       cannot reach the repo)
#   KASAL_PG_PORT  TCP port on 127.0.0.1 (default: 55432)
#
# Layout of the cluster directory: data/ (PGDATA), run/ (unix socket), postgres.log
#
# Informational messages go to stderr; stdout carries only the URL.
set -euo pipefail

PORT="${KASAL_PG_PORT:-55432}"
DB_NAME="kasal_test"
DB_USER="kasal"
DB_PASS="kasal"
HOST="127.0.0.1"
URL="postgresql://${DB_USER}:${DB_PASS}@${HOST}:${PORT}/${DB_NAME}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEFAULT_DIR="${REPO_ROOT}/.services/pg"
FALLBACK_DIR="/tmp/kasal-pg-${UID}"

log() { printf '[postgres.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------- binaries ---

# Sets PG_BIN to the directory holding initdb/pg_ctl/postgres.  Prefers the
# major version the cluster was created with (data/PG_VERSION) if any.
find_pg_bin() {
    local want="${1:-}" d
    PG_BIN=""
    if [ -n "$want" ] && [ -x "/usr/lib/postgresql/${want}/bin/pg_ctl" ]; then
        PG_BIN="/usr/lib/postgresql/${want}/bin"
        return 0
    fi
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
        PG_BIN="$d"
    elif command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        # Non-Debian layouts (e.g. Homebrew): binaries on PATH.
        PG_BIN="$(dirname "$(command -v pg_ctl)")"
    else
        return 1
    fi
}

install_postgres() {
    local sudo=""
    if ! is_root; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            die "PostgreSQL server binaries not found and not running as root (no sudo).
Install the package 'postgresql' first, e.g.:  apt-get install -y postgresql"
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        die "PostgreSQL server binaries not found and apt-get is unavailable.
Install the PostgreSQL server (Debian/Ubuntu package: postgresql) and retry."
    fi
    log "PostgreSQL server not found; installing package 'postgresql' via apt-get"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        postgresql >&2
}

# ------------------------------------------------------------- run-as user ---

# initdb/postgres refuse to run as root: as root we act as the 'postgres'
# system user; otherwise we run everything as the current user.
PG_OS_USER=""
setup_os_user() {
    if is_root; then
        PG_OS_USER="postgres"
        if ! id -u postgres >/dev/null 2>&1; then
            log "creating system user 'postgres'"
            useradd --system --user-group --home-dir /var/lib/postgresql \
                --shell /bin/sh postgres
        fi
    fi
}

# Run a command as the cluster owner, from '/' so an unreadable cwd is harmless.
as_pg() {
    if [ -n "$PG_OS_USER" ]; then
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u "$PG_OS_USER" -- "$@")
        else
            local cmd
            cmd="$(printf '%q ' "$@")"
            (cd / && su "$PG_OS_USER" -s /bin/sh -c "$cmd")
        fi
    else
        "$@"
    fi
}

# ------------------------------------------------------------- directories ---

# Can the cluster owner traverse into directory $1 (which must exist)?
owner_can_enter() {
    as_pg test -x "$1" 2>/dev/null
}

abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/$1" ;;
    esac
}

# Directories that may hold our cluster (for down/status/destroy).
candidate_dirs() {
    if [ -n "${KASAL_PG_DIR:-}" ]; then
        CANDIDATES=("$(abspath "$KASAL_PG_DIR")")
    else
        CANDIDATES=("$DEFAULT_DIR" "$FALLBACK_DIR")
    fi
}

# Chooses PG_DIR for 'up' and creates its parent directories.
choose_dir() {
    local parent
    if [ -n "${KASAL_PG_DIR:-}" ]; then
        PG_DIR="$(abspath "$KASAL_PG_DIR")"
        mkdir -p "$(dirname "$PG_DIR")"
        owner_can_enter "$(dirname "$PG_DIR")" ||
            die "user '${PG_OS_USER:-$(id -un)}' cannot traverse to KASAL_PG_DIR=$PG_DIR"
        return 0
    fi
    parent="$(dirname "$DEFAULT_DIR")" # <repo>/.services, ours: make it traversable
    mkdir -p "$parent" && chmod 755 "$parent" 2>/dev/null || true
    if [ -d "$parent" ] && owner_can_enter "$parent"; then
        PG_DIR="$DEFAULT_DIR"
    else
        PG_DIR="$FALLBACK_DIR"
        log "NOTE: user '${PG_OS_USER:-$(id -un)}' cannot traverse to $DEFAULT_DIR;"
        log "      using $PG_DIR for the cluster instead (set KASAL_PG_DIR to override)"
        if [ -e "$PG_DIR" ] && [ ! -O "$PG_DIR" ] &&
            [ "$(stat -c %U "$PG_DIR")" != "${PG_OS_USER:-$(id -un)}" ]; then
            die "$PG_DIR exists but belongs to someone else; remove it or set KASAL_PG_DIR"
        fi
    fi
}

set_paths() {
    PG_DATA="$PG_DIR/data"
    PG_LOG="$PG_DIR/postgres.log"
    PG_SOCK="$PG_DIR/run"
    # Unix socket paths are limited to ~107 bytes.
    if [ "$(printf '%s' "$PG_SOCK/.s.PGSQL.$PORT.lock" | wc -c)" -gt 100 ]; then
        PG_SOCK="/tmp/kasal-pg-sock-${UID}-${PORT}"
    fi
}

prepare_dir() {
    mkdir -p "$PG_DIR"
    if [ -n "$PG_OS_USER" ]; then
        chown "$PG_OS_USER": "$PG_DIR"
    fi
    chmod 700 "$PG_DIR"
    as_pg mkdir -p "$PG_SOCK"
    as_pg chmod 755 "$PG_SOCK" 2>/dev/null || true
}

# ------------------------------------------------------------------ status ---

is_running() { # $1 = data dir
    [ -f "$1/PG_VERSION" ] || return 1
    local ver
    ver="$(cat "$1/PG_VERSION" 2>/dev/null || true)"
    find_pg_bin "$ver" || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

psql_admin() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U postgres -d postgres "$@"
}

wait_ready() {
    for _ in $(seq 1 30); do
        if "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PORT" -d postgres -U postgres; then
            return 0
        fi
        sleep 1
    done
    return 1
}

ensure_db() {
    local has
    has="$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '${DB_USER}'")"
    if [ "$has" != "1" ]; then
        log "creating role ${DB_USER}"
        psql_admin -c "CREATE ROLE ${DB_USER} LOGIN SUPERUSER PASSWORD '${DB_PASS}'"
    fi
    has="$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}'")"
    if [ "$has" != "1" ]; then
        log "creating database ${DB_NAME}"
        psql_admin -c "CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}"
    fi
}

# ---------------------------------------------------------------- commands ---

cmd_up() {
    setup_os_user
    if ! find_pg_bin; then
        install_postgres
        setup_os_user
        find_pg_bin || die "PostgreSQL server binaries still not found after installing 'postgresql'"
    fi
    choose_dir
    set_paths

    if [ -f "$PG_DATA/PG_VERSION" ]; then
        local ver
        ver="$(cat "$PG_DATA/PG_VERSION")"
        find_pg_bin "$ver" || die "cluster in $PG_DATA needs PostgreSQL $ver binaries; run
'bash scripts/postgres.sh destroy' to recreate it"
        case "$PG_BIN" in
            /usr/lib/postgresql/*) [ "$PG_BIN" = "/usr/lib/postgresql/$ver/bin" ] ||
                die "cluster in $PG_DATA was created by PostgreSQL $ver, which is not installed; run
'bash scripts/postgres.sh destroy' to recreate it" ;;
        esac
    fi

    if is_running "$PG_DATA"; then
        log "already running ($PG_DATA, port $PORT)"
    else
        prepare_dir
        if [ ! -f "$PG_DATA/PG_VERSION" ]; then
            log "initialising cluster in $PG_DATA ($("$PG_BIN/postgres" --version))"
            as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C \
                --auth-local=trust --auth-host=trust >"$PG_DIR/initdb.log" 2>&1 ||
                { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
        fi
        # Settings are (re)written on every start so port/socket changes apply.
        as_pg sh -c "cat > '$PG_DATA/kasal.conf'" <<EOF
# written by scripts/postgres.sh -- private cluster for Kasal tests
listen_addresses = '${HOST}'
port = ${PORT}
unix_socket_directories = '${PG_SOCK}'
max_connections = 200
# throwaway test data: trade durability for speed
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
        if ! grep -q "^include_if_exists = 'kasal.conf'" "$PG_DATA/postgresql.conf"; then
            as_pg sh -c "echo \"include_if_exists = 'kasal.conf'\" >> '$PG_DATA/postgresql.conf'"
        fi
        log "starting cluster on ${HOST}:${PORT} (log: $PG_LOG)"
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 30 start >&2; then
            tail -n 30 "$PG_LOG" >&2 || true
            die "could not start PostgreSQL (is port $PORT already in use?)"
        fi
    fi

    wait_ready || { tail -n 30 "$PG_LOG" >&2 || true; die "PostgreSQL did not become ready within 30 s"; }
    ensure_db
    echo "$URL"
}

cmd_down() {
    setup_os_user
    local d stopped=0
    candidate_dirs
    for d in "${CANDIDATES[@]}"; do
        if is_running "$d/data"; then
            log "stopping cluster in $d/data"
            as_pg "$PG_BIN/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >&2
            stopped=1
        fi
    done
    [ "$stopped" -eq 1 ] || log "not running"
}

cmd_status() {
    setup_os_user
    local d found=0
    candidate_dirs
    for d in "${CANDIDATES[@]}"; do
        if is_running "$d/data"; then
            log "running: $d/data (port $PORT)"
            found=1
        elif [ -f "$d/data/PG_VERSION" ]; then
            log "stopped: $d/data"
        fi
    done
    [ "$found" -eq 1 ]
}

cmd_destroy() {
    cmd_down
    local d
    candidate_dirs
    for d in "${CANDIDATES[@]}"; do
        # only delete directories that look like ours
        if [ -f "$d/data/PG_VERSION" ] || [ -f "$d/initdb.log" ]; then
            log "removing $d"
            rm -rf -- "$d"
        fi
    done
    rmdir "/tmp/kasal-pg-sock-${UID}-${PORT}" 2>/dev/null || true
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    url) echo "$URL" ;;
    status) cmd_status ;;
    destroy) cmd_destroy ;;
    *)
        echo "usage: $0 {up|down|url|status|destroy}" >&2
        exit 2
        ;;
esac
