# Shared helpers for the infra/*/ scripts; source it, don't run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# The caller sets `set -euo pipefail` and LOG_TAG (the prefix of its log lines).
# shellcheck shell=bash disable=SC2034 # variables for the scripts that source this

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Downloads that outlive a data wipe (Kafka jars); data, configs, logs and pid files of running servers.
SURVEY_INFRA_HOME="${SURVEY_INFRA_HOME:-$HOME/.cache/survey-ingest}"
SURVEY_INFRA_DATA="${SURVEY_INFRA_DATA:-/tmp/survey-ingest-infra}"
# Upper bound, in seconds, of every wait for a server to come up or go down.
SURVEY_INFRA_TIMEOUT="${SURVEY_INFRA_TIMEOUT:-60}"
LOG_TAG="${LOG_TAG:-infra}"

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "$LOG_TAG" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# apt_install PKG... — non-interactive; refreshes the package lists only when the first try fails
# (a fresh image may have none, or stale ones).
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        have sudo || die "need root or sudo to apt-get install $*"
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get install $*"
    $sudo apt-get install -y -q --no-install-recommends "$@" >&2 \
        || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q --no-install-recommends "$@" >&2; }
}

# port_open PORT [HOST] — something accepts TCP connections there (bash's /dev/tcp: no nc needed).
port_open() {
    # shellcheck disable=SC2016 # $1/$2 are the inner shell's arguments
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${2:-127.0.0.1}" "$1" 2>/dev/null
}

# pid_running PIDFILE MARKER — the pid in PIDFILE is alive and its command line contains MARKER
# (guards against a stale pid file whose pid was reused by an unrelated process).
pid_running() {
    local pid
    [ -s "$1" ] || return 1
    pid="$(cat "$1")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# lock_or_wait LOCKFILE — holds an exclusive lock until the script exits, so two starts of the
# same server (parallel test workers) do not race; the second then finds it running.
lock_or_wait() {
    mkdir -p "$(dirname "$1")"
    exec 9>"$1"
    flock -w "$SURVEY_INFRA_TIMEOUT" 9 || die "another start/stop still holds $1 after ${SURVEY_INFRA_TIMEOUT} s"
}

# start_background PIDFILE LOGFILE CMD... — runs CMD detached (own session, no tty, stdin from
# /dev/null, output appended to LOGFILE) so it outlives the caller and does not hold the caller's
# pipes open (pytest's subprocess.run(capture_output=True) would otherwise never return).
start_background() {
    local pidfile="$1" logfile="$2"
    shift 2
    printf '\n===== %s starting: %s\n' "$(date '+%F %T')" "$*" >>"$logfile"
    # 9>&- : the server must not inherit lock_or_wait's lock, or it would hold it for its lifetime.
    setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
    echo $! >"$pidfile"
    disown  # no "Killed" job notice from bash if a timed-out start is killed
}

# wait_until DESCRIPTION PIDFILE MARKER LOGFILE CMD... — polls CMD every 0.5 s until it succeeds;
# fails at once if the process died, and after SURVEY_INFRA_TIMEOUT s otherwise, showing the log
# tail. A server still not ready by then is killed: the next start begins afresh instead of
# waiting on it again.
wait_until() {
    local what="$1" pidfile="$2" marker="$3" logfile="$4"
    shift 4
    local deadline=$((SECONDS + SURVEY_INFRA_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ! pid_running "$pidfile" "$marker"; then
            tail -n 30 "$logfile" >&2 || true
            die "$what: the process exited before it was ready (log: $logfile)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$logfile" >&2 || true
            kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
            die "$what: not ready within ${SURVEY_INFRA_TIMEOUT} s, killed it (log: $logfile)"
        fi
        sleep 0.5
    done
}

# stop_pidfile NAME PIDFILE MARKER — SIGTERM, then SIGKILL after SURVEY_INFRA_TIMEOUT s; a missing
# or stale pid file is fine (already stopped).
stop_pidfile() {
    local name="$1" pidfile="$2" marker="$3" pid deadline
    if ! pid_running "$pidfile" "$marker"; then
        log "$name is not running"
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + SURVEY_INFRA_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$name did not exit within ${SURVEY_INFRA_TIMEOUT} s of SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile"
    log "$name stopped"
}

# require_free_port NAME PORT — a clear error instead of a server failing to bind (or a readiness
# check passing against someone else's server).
require_free_port() {
    if port_open "$2"; then
        die "$1: port $2 on 127.0.0.1 is already taken by another process (not ours); pick another port"
    fi
}
