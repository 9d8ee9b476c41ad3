#!/usr/bin/env bash
# Run chatver locally: sets up .venv, migrates the database, starts the server,
# loads prompts/ into it and stays in the foreground (Ctrl-C stops the server).
#
#   bash scripts/start.sh
#
# Environment (all optional):
#   CHATVER_HOST, CHATVER_PORT   listen address (default 127.0.0.1:8000)
#   CHATVER_DATABASE_URL         default sqlite:///./chatver.db (in the repo root)
#   CHATVER_ADMIN_KEY            default: read from .env, generated and saved there on first run
# Other KEY=VALUE lines in .env (e.g. provider API keys) are exported unless already set.
# Redis is not used by this script (CHATVER_REDIS_URL is unset): single process.

# Functions below are called from traps, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOST="${CHATVER_HOST:-127.0.0.1}"
PORT="${CHATVER_PORT:-8000}"
case "$HOST" in
    0.0.0.0 | "::" | "") CLIENT_HOST=127.0.0.1 ;;
    *:*) CLIENT_HOST="[$HOST]" ;;
    *) CLIENT_HOST="$HOST" ;;
esac
BASE_URL="http://$CLIENT_HOST:$PORT"

# ---------------------------------------------------------------- .env and admin key
ENV_FILE="$REPO_ROOT/.env"

# load_env_file: export KEY=VALUE lines from .env that are not already set.
# Parsed, not sourced: no shell code in .env is executed.
load_env_file() {
    [[ -f "$ENV_FILE" ]] || return 0
    local line key value
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line%$'\r'}"
        [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
        key="${BASH_REMATCH[2]}"
        value="${BASH_REMATCH[3]}"
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then
            value="${BASH_REMATCH[1]}"
        fi
        if [[ -z "${!key+x}" ]]; then
            export "$key=$value"
        fi
    done <"$ENV_FILE"
}

if [[ -z "${CHATVER_ADMIN_KEY:-}" ]] && ! grep -qE '^[[:space:]]*(export[[:space:]]+)?CHATVER_ADMIN_KEY=.' "$ENV_FILE" 2>/dev/null; then
    log "generating an admin key into .env"
    new_key="$(python3 -c 'import secrets; print("cv_admin_"+secrets.token_urlsafe(32))')"
    # Make sure we append on a fresh line.
    if [[ -s "$ENV_FILE" && -n "$(tail -c 1 "$ENV_FILE")" ]]; then
        echo >>"$ENV_FILE"
    fi
    (umask 077 && echo "CHATVER_ADMIN_KEY=$new_key" >>"$ENV_FILE")
    unset new_key
fi
[[ -f "$ENV_FILE" ]] && chmod 600 "$ENV_FILE"
load_env_file
[[ -n "${CHATVER_ADMIN_KEY:-}" ]] || die "CHATVER_ADMIN_KEY is empty (check $ENV_FILE)"

export CHATVER_ADMIN_KEY
export CHATVER_API_KEY="$CHATVER_ADMIN_KEY"
export CHATVER_URL="$BASE_URL"
export CHATVER_DATABASE_URL="${CHATVER_DATABASE_URL:-sqlite:///./chatver.db}"
unset CHATVER_REDIS_URL

# ---------------------------------------------------------------- venv + migrations
ensure_venv
[[ -x .venv/bin/chatver ]] || die ".venv/bin/chatver is missing (is [project.scripts] in pyproject.toml?)"

if port_in_use "$HOST" "$PORT"; then
    die "something is already listening on $HOST:$PORT (another chatver?). Stop it or set CHATVER_PORT."
fi

log "applying migrations ($CHATVER_DATABASE_URL)"
.venv/bin/chatver db upgrade

# ---------------------------------------------------------------- server
SERVER_LOG="$(mktemp "${TMPDIR:-/tmp}/chatver-server.XXXXXX.log")"
SERVER_PID=""

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            warn "server did not stop within 10s; killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
on_signal() {
    echo >&2
    log "stopping chatver (pid $SERVER_PID)"
    stop_server
    exit "$1"
}
on_exit() {
    local rc=$?
    stop_server
    rm -f "$SERVER_LOG"
    exit "$rc"
}
trap on_exit EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

log "starting chatver serve on $HOST:$PORT (log: $SERVER_LOG)"
# The server runs in its own session (setsid) so a Ctrl-C reaches only this script, which
# forwards it as one SIGTERM (graceful shutdown). Its output goes to the terminal and to
# $SERVER_LOG (shown again if startup fails); tee ignores INT/TERM so it outlives the server.
setsid .venv/bin/chatver serve --host "$HOST" --port "$PORT" \
    > >(trap '' INT TERM; exec tee -a "$SERVER_LOG") 2>&1 </dev/null &
SERVER_PID=$!

show_log_and_die() {
    err "$1"
    echo "----- server log ($SERVER_LOG, last 60 lines) -----" >&2
    tail -n 60 "$SERVER_LOG" >&2 || true
    echo "-----" >&2
    exit 1
}

ready=""
for _ in $(seq 1 120); do # 120 x 0.5 s = 60 s
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        rc=0
        wait "$SERVER_PID" 2>/dev/null || rc=$?
        SERVER_PID=""
        show_log_and_die "chatver serve exited during startup (exit $rc)"
    fi
    if curl -fsS -o /dev/null --max-time 2 "$BASE_URL/readyz" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.5
done
[[ -n "$ready" ]] || show_log_and_die "chatver did not become ready at $BASE_URL/readyz within 60 s"

# ---------------------------------------------------------------- prompts
if [[ -d prompts ]] && [[ -n "$(find prompts -mindepth 1 -not -name '.*' -print -quit)" ]]; then
    log "loading prompts/ into the server"
    if ! .venv/bin/chatver push prompts/; then
        show_log_and_die "chatver push prompts/ failed (see the messages above)"
    fi
else
    log "prompts/ is empty; nothing to load"
fi

cat >&2 <<EOF

${_c_green}==================================================================${_c_off}
  chatver is running at   $BASE_URL
    console               $BASE_URL/ui   (sign in with the admin key below)
    API docs              $BASE_URL/docs (after signing in, or with the key)
  admin key               $CHATVER_ADMIN_KEY
                          (kept in .env; also the API key for the chatver CLI)
  database                $CHATVER_DATABASE_URL
  Press Ctrl-C to stop.
${_c_green}==================================================================${_c_off}

EOF

rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
log "chatver serve exited (status $rc)"
exit "$rc"
