#!/usr/bin/env bash
# The seed's patterns under load: the same routes on whirl's async_patterns
# example (release) and on the Tornado 6 app in bench/tornado_async_patterns.py,
# each driven by `wrk -t1 -c50 -d10s` with a 100 ms task, req/s side by side.
#
#   bench/async_patterns.sh
#   WHIRL_BENCH_ROUTES="/sync /client/sync" WHIRL_BENCH_DURATION=5s bench/async_patterns.sh
#
# The slow task is `sleep 0.1` (`--task`); the client routes fetch the
# httpbin example's /delay/0.1 (a whirl server on its own core, never the
# bottleneck). Both apps keep the seed's sizes: a 10-thread pool and
# AsyncHTTPClient's max_clients of 10. wrk's --timeout is 30 s so the
# blocking routes are measured rather than timed out. Before each run the
# script waits until the server answers quickly again (a blocked server
# still works through the requests queued by the previous run).
#
# Not run in CI. Linux; needs wrk (apt-get install -y wrk), python3 with
# Tornado 6 (pip install tornado), curl; taskset if present (server on core
# 1, wrk and the upstream on core 0). Settings, from the environment:
#   WHIRL_BENCH_DURATION     wrk run per route and server (10s)
#   WHIRL_BENCH_CONNECTIONS  wrk connections (50)
#   WHIRL_BENCH_TASK         the slow task (sleep 0.1)
#   WHIRL_BENCH_DELAY        the upstream's delay in seconds (0.1)
#   WHIRL_BENCH_ROUTES       routes, in order ("/sync /async_task /future_response /client/response")
#   WHIRL_BENCH_SERVERS      which apps ("whirl tornado")
#   WHIRL_BENCH_EXTRA_ARGS   more flags for both apps (e.g. "--max-clients 50")
#   WHIRL_BENCH_PORT         first of three ports used (18887)
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${WHIRL_BENCH_DURATION:-10s}
connections=${WHIRL_BENCH_CONNECTIONS:-50}
task=${WHIRL_BENCH_TASK:-sleep 0.1}
delay=${WHIRL_BENCH_DELAY:-0.1}
routes=${WHIRL_BENCH_ROUTES:-/sync /async_task /future_response /client/response}
servers=${WHIRL_BENCH_SERVERS:-whirl tornado}
extra=${WHIRL_BENCH_EXTRA_ARGS:-}
port=${WHIRL_BENCH_PORT:-18887}
upstream_port=$((port + 1))
target=${CARGO_TARGET_DIR:-target}/release

die() { echo "async_patterns.sh: $*" >&2; exit 1; }

# Step 1: tools.
command -v wrk >/dev/null || die "wrk is not installed; on Debian/Ubuntu: apt-get install -y wrk"
command -v curl >/dev/null || die "curl is not installed"
python3 -c 'import tornado, sys; sys.exit(tornado.version_info[0] != 6)' 2>/dev/null \
    || die "needs Python Tornado 6: pip install tornado"
# Runs a command on core $1. It execs, so call it only in a subshell (`&` or
# `$( )`): then $! is the server's own pid, which `kill` reaches.
pin() {
    if command -v taskset >/dev/null && (($(getconf _NPROCESSORS_ONLN) >= 2)); then
        exec taskset -c "$1" "${@:2}"
    fi
    exec "${@:2}"
}

# Step 2: release binaries.
cargo build --release --quiet -p whirl --example async_patterns --example httpbin

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# Waits until http://127.0.0.1:$1/$2 answers within a second (60 s at most).
settle() {
    for _ in $(seq 120); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1$2" && return 0
        sleep 0.5
    done
    die "the server on port $1 does not answer"
}

# Step 3: the upstream.
RUST_LOG=warn pin 0 "$target/examples/httpbin" --port "$upstream_port" >/dev/null 2>&1 &
pids+=($!)
settle "$upstream_port" /get
upstream="http://127.0.0.1:$upstream_port/delay/$delay"

declare -A result
uploads=$(mktemp -d)
for server in $servers; do
    # Step 4: one app at a time, on its own core.
    ! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" || die "port $port is taken"
    # shellcheck disable=SC2086 # $extra is a list of flags
    case $server in
        whirl) RUST_LOG=error pin 1 "$target/examples/async_patterns" --port "$port" \
                   --task "$task" --upstream "$upstream" --upload-dir "$uploads" $extra >/dev/null 2>&1 & ;;
        tornado) pin 1 python3 bench/tornado_async_patterns.py --port "$port" \
                     --task "$task" --upstream "$upstream" --upload-dir "$uploads" $extra >/dev/null 2>&1 & ;;
        *) die "unknown server $server" ;;
    esac
    app=$!
    pids+=("$app")
    settle "$port" /nowhere
    for route in $routes; do
        # Step 5: wrk, once the previous run's backlog is gone.
        settle "$port" /nowhere
        out=$(pin 0 wrk -t1 -c"$connections" -d"$duration" --timeout 30s "http://127.0.0.1:$port$route")
        rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
        bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
        errors=$(awk -F'[ ,]+' '/Socket errors:/ { print $5 + $7 + $9 + $11 }' <<<"$out")
        latency=$(awk '/^ +Latency / { print $2 }' <<<"$out")
        result[$server,$route]="$rps"
        printf '%-8s %-18s %10s req/s  avg latency %-9s non-2xx %-5s socket errors %s\n' \
            "$server" "$route" "$rps" "$latency" "${bad:-0}" "${errors:-0}" >&2
    done
    kill "$app" 2>/dev/null || die "$server died during the run"
    wait "$app" 2>/dev/null || true
done
rm -rf "$uploads"

# Step 6: the table.
echo
printf '| route | %s |\n' "$(sed 's/ / req\/s | /g' <<<"$servers") req/s"
printf '|---|%s\n' "$(for _ in $servers; do printf -- '---:|'; done)"
for route in $routes; do
    row="| \`$route\` |"
    for server in $servers; do row+=" ${result[$server,$route]:-} |"; done
    echo "$row"
done
echo
echo "wrk -t1 -c$connections -d$duration --timeout 30s; task '$task'; upstream /delay/$delay; $(nproc) CPUs"
