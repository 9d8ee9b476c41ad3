# shellcheck shell=bash
# Shared helpers for scripts/start.sh and scripts/test.sh.  Source it, don't run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Sourcing cds to the repository root and sets REPO_ROOT.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
cd "$REPO_ROOT" || exit 1

UV_VERSION="0.13.9"

# No network for litellm's model price map: use the copy bundled in the package.
export LITELLM_LOCAL_MODEL_COST_MAP=True
export DEBIAN_FRONTEND=noninteractive

if [[ -t 2 ]]; then
    _c_blue=$'\033[1;34m' _c_yellow=$'\033[1;33m' _c_red=$'\033[1;31m' _c_green=$'\033[1;32m' _c_off=$'\033[0m'
else
    _c_blue="" _c_yellow="" _c_red="" _c_green="" _c_off=""
fi

log()  { printf '%s==>%s %s\n' "$_c_blue" "$_c_off" "$*" >&2; }
ok()   { printf '%s==>%s %s\n' "$_c_green" "$_c_off" "$*" >&2; }
warn() { printf '%sWARNING:%s %s\n' "$_c_yellow" "$_c_off" "$*" >&2; }
err()  { printf '%sERROR:%s %s\n' "$_c_red" "$_c_off" "$*" >&2; }
die()  { err "$*"; exit 1; }

is_ci() { [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; }

# ensure_venv [dev]
# Creates .venv if needed, pins uv inside it, installs the locked dependencies
# (requirements-dev.lock with "dev", else requirements.lock) and the project itself (editable).
ensure_venv() {
    local lock="requirements.lock"
    if [[ "${1:-}" == "dev" ]]; then
        lock="requirements-dev.lock"
    fi
    (
        set -euo pipefail
        cd "$REPO_ROOT"
        [[ -f "$lock" ]] || { err "$lock is missing"; exit 1; }
        if [[ ! -x .venv/bin/python ]]; then
            log "creating .venv"
            python3 -m venv .venv
        fi
        local have=""
        if [[ -x .venv/bin/uv ]]; then
            have="$(.venv/bin/uv --version 2>/dev/null | awk '{print $2}')" || have=""
        fi
        if [[ "$have" != "$UV_VERSION" ]]; then
            log "installing uv==$UV_VERSION into .venv"
            if [[ ! -x .venv/bin/pip ]]; then # e.g. a venv made by `uv venv`
                .venv/bin/python -m ensurepip -q
            fi
            .venv/bin/pip install -q "uv==$UV_VERSION"
        fi
        log "installing $lock into .venv"
        .venv/bin/uv pip install -q --python .venv/bin/python -r "$lock"
        .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
    ) || die "could not set up .venv (see the messages above)"
}

# free_port: prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# port_in_use HOST PORT: true if something accepts connections there.
port_in_use() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
if host in ("0.0.0.0", "", "::"):
    host = "127.0.0.1"
try:
    socket.create_connection((host, port), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

# apt_install PKG...: apt-get update (once per process) + install, without starting
# the packages' own services.  Output goes to $APT_LOG (default: a temp file);
# its tail is shown on failure.
_apt_updated=""
apt_install() {
    command -v apt-get >/dev/null 2>&1 || { err "apt-get not available"; return 1; }
    local apt_log="${APT_LOG:-${TMPDIR:-/tmp}/chatver-apt.$$.log}"
    local made_policy="" rc=0
    # Keep postinst scripts from starting system-wide services (e.g. redis on 6379).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d 2>/dev/null \
            && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    if [[ -z "$_apt_updated" ]]; then
        log "apt-get update"
        if apt-get -o DPkg::Lock::Timeout=300 update >>"$apt_log" 2>&1; then
            _apt_updated=1
        else
            rc=$?
        fi
    fi
    if [[ $rc -eq 0 ]]; then
        log "apt-get install -y $*"
        apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "$@" </dev/null >>"$apt_log" 2>&1 || rc=$?
    fi
    if [[ -n "$made_policy" ]]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    if [[ $rc -ne 0 ]]; then
        err "apt-get failed for: $* (last lines of $apt_log follow)"
        tail -n 20 "$apt_log" >&2 || true
    fi
    return "$rc"
}

# ensure_postgres_user: the PostgreSQL binaries refuse to run as root.
ensure_postgres_user() {
    if ! id -u postgres >/dev/null 2>&1; then
        log "creating system user postgres"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin postgres
    fi
}

# find_pg_bin: prints the directory holding initdb/pg_ctl/postgres, or fails.
find_pg_bin() {
    local p d
    if p="$(command -v initdb 2>/dev/null)" && [[ -n "$p" ]]; then
        p="$(readlink -f "$p")"
        d="$(dirname "$p")"
        if [[ -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
            echo "$d"
            return 0
        fi
    fi
    # Debian keeps the server binaries off PATH.
    while IFS= read -r d; do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
            echo "$d"
            return 0
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
    return 1
}
