#!/usr/bin/env bash
# Lint, type-check and test chatver against throwaway services.
#
#   bash scripts/test.sh [PYTEST ARGS...]      e.g.  bash scripts/test.sh -k versions -x
#   CHATVER_SKIP_LINT=1 bash scripts/test.sh   skip ruff/mypy (ignored when CI=true)
#
# Starts PostgreSQL and Redis on free loopback ports (data in a temp dir, removed on
# exit) and exports to the tests:
#   CHATVER_TEST_POSTGRES_URL  postgresql://postgres@127.0.0.1:PORT/postgres
#   CHATVER_TEST_REDIS_URL     redis://127.0.0.1:PORT/0
#   CHATVER_TEST_CHROMIUM      /usr/bin/chromium (when installed)
# With CI=true a service that cannot be installed or started is a hard failure;
# otherwise it is a warning and the tests that need it skip.
# Pytest paths are relative to the repository root (the script cds there).
# Functions below are called from traps, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T_START=$SECONDS
TIMINGS=()
timing() { TIMINGS+=("$(printf '  %-16s %5ss' "$1" "$2")"); }

SKIP_LINT=""
if [[ "${CHATVER_SKIP_LINT:-}" == "1" ]]; then
    if is_ci; then
        warn "CHATVER_SKIP_LINT is ignored when CI=true"
    else
        SKIP_LINT=1
    fi
fi

# Keep the suite hermetic: settings from a developer's shell (database, redis, keys...)
# must not leak into the tests. CHATVER_TEST_* are set below.
for _v in $(compgen -e | grep '^CHATVER_' || true); do
    case "$_v" in
        CHATVER_SKIP_LINT) ;;
        *) unset "$_v" ;;
    esac
done
unset _v

# ---------------------------------------------------------------- 1. virtualenv
t=$SECONDS
ensure_venv dev
timing "venv" $((SECONDS - t))

# ---------------------------------------------------------------- 2. services
WORK="$(mktemp -d "${TMPDIR:-/tmp}/chatver-test.XXXXXX")"
chmod 755 "$WORK" # the postgres user must be able to reach its data dir inside
export APT_LOG="$WORK/apt.log"
PG_BIN=""
PG_DATA=""
REDIS_PID=""

stop_services() {
    if [[ -n "$REDIS_PID" ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    REDIS_PID=""
    if [[ -n "$PG_DATA" && -f "$PG_DATA/postmaster.pid" ]]; then
        local pid
        pid="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
        (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop) \
            >/dev/null 2>&1 || true
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    PG_DATA=""
}

print_summary() {
    local rc=$1
    {
        echo
        echo "Timing summary:"
        if ((${#TIMINGS[@]})); then
            printf '%s\n' "${TIMINGS[@]}"
        fi
        printf '  %-16s %5ss  (exit %s)\n' "total" $((SECONDS - T_START)) "$rc"
    } >&2
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    local t=$SECONDS
    stop_services
    rm -rf "$WORK"
    timing "teardown" $((SECONDS - t))
    print_summary "$rc"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# service_failed NAME MESSAGE: hard failure in CI, warning locally.
service_failed() {
    if is_ci; then
        die "$1: $2 (CI=true: every test service is required)"
    fi
    warn "$1: $2 -- continuing without it; tests that need $1 will skip"
}

start_postgres() {
    if ! PG_BIN="$(find_pg_bin)"; then
        log "PostgreSQL binaries not found; installing"
        apt_install postgresql || return 1
        PG_BIN="$(find_pg_bin)" || { err "initdb still not found after installing postgresql"; return 1; }
    fi
    ensure_postgres_user || return 1
    local dir="$WORK/pg"
    mkdir -p "$dir/sock" || return 1
    chown -R postgres:postgres "$dir" || return 1
    if ! (cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust \
        -E UTF8 --locale=C --no-sync) >"$WORK/initdb.log" 2>&1; then
        err "initdb failed:"
        tail -n 20 "$WORK/initdb.log" >&2
        return 1
    fi
    PG_DATA="$dir/data"
    local port attempt
    for attempt in 1 2 3; do
        port="$(free_port)" || return 1
        if (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$dir/postgres.log" -w -t 60 \
            -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            start) >>"$WORK/pg_ctl.log" 2>&1; then
            break
        fi
        warn "postgres did not start on port $port (attempt $attempt)"
        port=""
    done
    if [[ -z "$port" ]]; then
        err "could not start postgres; last lines of its log:"
        tail -n 20 "$dir/postgres.log" >&2 || true
        return 1
    fi
    local ready=""
    for _ in $(seq 1 60); do
        if [[ -x "$PG_BIN/pg_isready" ]]; then
            "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres && ready=1 && break
        else
            .venv/bin/python -c 'import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=2).close()' \
                "postgresql://postgres@127.0.0.1:$port/postgres" 2>/dev/null && ready=1 && break
        fi
        sleep 0.5
    done
    [[ -n "$ready" ]] || { err "postgres on port $port is not accepting connections"; return 1; }
    export CHATVER_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
}

redis_ping() {
    if command -v redis-cli >/dev/null 2>&1; then
        [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == "PONG" ]]
    else
        python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(64).startswith(b"+PONG") else 1)
PY
    fi
}

start_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        log "redis-server not found; installing"
        apt_install redis-server || return 1
        command -v redis-server >/dev/null 2>&1 || { err "redis-server still missing after install"; return 1; }
    fi
    mkdir -p "$WORK/redis" || return 1
    local port attempt ready=""
    for attempt in 1 2 3; do
        port="$(free_port)" || return 1
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
            --dir "$WORK/redis" </dev/null >"$WORK/redis.log" 2>&1 &
        REDIS_PID=$!
        for _ in $(seq 1 100); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            if redis_ping "$port"; then
                ready=1
                break
            fi
            sleep 0.1
        done
        [[ -n "$ready" ]] && break
        warn "redis did not start on port $port (attempt $attempt)"
        stop_redis_only
    done
    if [[ -z "$ready" ]]; then
        err "could not start redis-server; last lines of its log:"
        tail -n 20 "$WORK/redis.log" >&2 || true
        return 1
    fi
    export CHATVER_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
}

stop_redis_only() {
    if [[ -n "$REDIS_PID" ]]; then
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=""
    fi
}

setup_chromium() {
    local chromium=/usr/bin/chromium
    if [[ ! -x "$chromium" ]]; then
        log "chromium not found; installing"
        apt_install chromium fonts-liberation || return 1
    fi
    [[ -x "$chromium" ]] || { err "$chromium missing after install"; return 1; }
    if ! timeout 60 "$chromium" --headless --no-sandbox --version >/dev/null 2>&1; then
        err "$chromium is installed but does not run"
        return 1
    fi
    export CHATVER_TEST_CHROMIUM="$chromium"
}

# curl and jq: the README walkthrough is run as a test (tests/test_readme.py).
setup_cli_tools() {
    local missing=()
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v jq >/dev/null 2>&1 || missing+=(jq)
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}" || return 1
    export CHATVER_TEST_SHELL_TOOLS=1
}

t=$SECONDS
setup_cli_tools || service_failed curl/jq "curl and jq are not available"
timing "curl+jq" $((SECONDS - t))
t=$SECONDS
start_postgres || service_failed postgres "could not start PostgreSQL"
timing "postgres" $((SECONDS - t))
t=$SECONDS
start_redis || service_failed redis "could not start Redis"
timing "redis" $((SECONDS - t))
t=$SECONDS
setup_chromium || service_failed chromium "Chromium is not available"
timing "chromium" $((SECONDS - t))

ok "services: postgres=${CHATVER_TEST_POSTGRES_URL:-none} redis=${CHATVER_TEST_REDIS_URL:-none} chromium=${CHATVER_TEST_CHROMIUM:-none}"

# ---------------------------------------------------------------- 3. checks
# step NAME CMD...: runs CMD, records its time, exits with its status on failure.
step() {
    local name=$1 t=$SECONDS rc=0
    shift
    log "$name"
    "$@" || rc=$?
    timing "$name" $((SECONDS - t))
    if ((rc != 0)); then
        err "$name failed (exit $rc)"
        exit "$rc"
    fi
}

lint_paths=()
for p in app tests; do
    [[ -d "$p" ]] && lint_paths+=("$p")
done

if [[ -n "$SKIP_LINT" ]]; then
    warn "CHATVER_SKIP_LINT=1: skipping ruff and mypy"
elif ((${#lint_paths[@]})); then
    step "ruff check" .venv/bin/ruff check "${lint_paths[@]}"
    step "ruff format" .venv/bin/ruff format --check "${lint_paths[@]}"
    if [[ -d app ]] && [[ -n "$(find app -name '*.py' -print -quit)" ]]; then
        step "mypy" .venv/bin/mypy
    fi
fi

t=$SECONDS
log "pytest $*"
rc=0
.venv/bin/pytest -p no:cacheprovider "$@" || rc=$?
timing "pytest" $((SECONDS - t))
if ((rc == 5)); then
    err "pytest collected no tests (exit 5): treated as a failure"
elif ((rc != 0)); then
    err "pytest failed (exit $rc)"
fi
exit "$rc"
