# nginx settings shared by install.sh, start.sh and stop.sh (sourced, not run).
# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2034 # variables for the scripts that source this
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# The port clients post to, and the collectors behind it (host:port, space- or comma-separated).
NGINX_PORT="${SURVEY_NGINX_PORT:-8088}"
NGINX_UPSTREAMS="${SURVEY_NGINX_UPSTREAMS:-127.0.0.1:8080}"
NGINX_WORKERS="${SURVEY_NGINX_WORKERS:-auto}"
# The API processes the read routes go to (distributed: `survey-ingest api`); by default the
# same servers as the collectors (embedded `serve` answers both).
NGINX_API_UPSTREAMS="${SURVEY_NGINX_API_UPSTREAMS:-$NGINX_UPSTREAMS}"
# How long nginx keeps a public read or an answering page (the micro-cache), in seconds.
NGINX_MICROCACHE_S="${SURVEY_NGINX_MICROCACHE_S:-1}"
# The cache files: written by nginx's workers, which run as `nobody` when the master is root, so
# the directory must not sit under a private one (a test's 0700 tmp dir); one per port.
NGINX_CACHE_DIR="${SURVEY_NGINX_CACHE_DIR:-${TMPDIR:-/tmp}/survey-nginx-cache-$NGINX_PORT}"
# Everything of one balancer (config, pid, logs, temp files) lives under a prefix named after
# its port: nginx runs with `-p` this prefix and `-c` the generated config, never the
# distribution's root-owned /etc/nginx/nginx.conf, and never as the package's service.
NGINX_HOME="$SURVEY_INFRA_DATA/nginx-$NGINX_PORT"
NGINX_CONFIG="$NGINX_HOME/nginx.conf"
NGINX_PIDFILE="$NGINX_HOME/nginx.pid"
NGINX_LOG="$NGINX_HOME/logs/stdout.log"
