#!/usr/bin/env bash
# HTTP client benchmark: 20,000 keep-alive GETs at concurrency 50 against one
# local server, by whirl's AsyncHttpClient, hyper's pooled client (hyper-util
# legacy Client, tokio current_thread) and Tornado's AsyncHTTPClient, side by
# side in one run.
#
#   bench/client.sh
#   WHIRL_BENCH_ROUNDS=5 WHIRL_BENCH_SERVER=whirl bench/client.sh
#
# One server runs for the whole run, pinned to one core (`taskset -c 1`); each
# client runs alone, pinned to another (`taskset -c 0`), the clients taking
# turns in each round. Every client checks every response (200, 12 bytes of
# body) and prints "requests=N seconds=S", its own wall time from the first
# request to the last response. The table adds the rounds up: req/s is all
# requests over all wall time; cpu us/req is the client's user + system time
# (bash's `time`, process start-up included) per request. Ratios are of req/s:
# 1.20 under "whirl/x" means whirl's client did 20% more requests per second.
#
# Tornado's simple_httpclient has no keep-alive (its issue #324): it opens a
# connection per request, as its users get it.
#
# Linux only (taskset). Needs python3; installs tornado with pip if it is
# missing. Settings, from the environment:
#   WHIRL_BENCH_REQUESTS     requests per client and round (20000)
#   WHIRL_BENCH_CONCURRENCY  requests in flight (50)
#   WHIRL_BENCH_ROUNDS       rounds over all clients (3)
#   WHIRL_BENCH_WARMUP       unmeasured requests per client before round 1 (2000; 0 skips)
#   WHIRL_BENCH_CLIENTS      which clients, in order ("whirl hyper tornado")
#   WHIRL_BENCH_SERVER       the server: mio (bench's mio_hello, the cheapest),
#                            whirl (hello_httpserver) or hyper (hyper_hello) (mio)
#   WHIRL_BENCH_SERVER_CPU   core for the server (1)
#   WHIRL_BENCH_CLIENT_CPU   core for the clients (0)
#   PYTHON                   the Python for Tornado (python3)
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${WHIRL_BENCH_REQUESTS:-20000}
concurrency=${WHIRL_BENCH_CONCURRENCY:-50}
rounds=${WHIRL_BENCH_ROUNDS:-3}
warmup=${WHIRL_BENCH_WARMUP:-2000}
clients=${WHIRL_BENCH_CLIENTS:-whirl hyper tornado}
server=${WHIRL_BENCH_SERVER:-mio}
server_cpu=${WHIRL_BENCH_SERVER_CPU:-1}
client_cpu=${WHIRL_BENCH_CLIENT_CPU:-0}
python=${PYTHON:-python3}

die() { echo "client.sh: $*" >&2; exit 1; }

# Step 1: tools.
command -v taskset >/dev/null || die "taskset is not installed (util-linux)"
cpus=$(getconf _NPROCESSORS_ONLN)
((cpus >= 2)) || echo "client.sh: warning: $cpus CPU; server and clients share it" >&2
if [[ " $clients " == *" tornado "* ]]; then
    command -v "$python" >/dev/null || die "$python is not installed"
    if ! "$python" -c 'import tornado' 2>/dev/null; then
        echo "client.sh: installing tornado with pip" >&2
        "$python" -m pip install --quiet tornado || die "pip install tornado failed"
    fi
fi

# Step 2: release binaries.
cargo build --release --quiet -p whirl-bench \
    --bin whirl_client --bin hyper_client --bin mio_hello --bin hyper_hello
cargo build --release --quiet -p whirl --example hello_httpserver
target=${CARGO_TARGET_DIR:-target}/release

case $server in
    mio) server_cmd="$target/mio_hello" ;;
    whirl) server_cmd="$target/examples/hello_httpserver --threads 1" ;;
    hyper) server_cmd="$target/hyper_hello" ;;
    *) die "unknown server '$server' (mio, whirl, hyper)" ;;
esac

client_cmd() {
    case $1 in
        whirl) echo "$target/whirl_client" ;;
        hyper) echo "$target/hyper_client" ;;
        tornado) echo "$python bench/tornado_client.py" ;;
        *) die "unknown client '$1' (whirl, hyper, tornado)" ;;
    esac
}

# Step 3: the server, for the whole run.
server_pid=
log=$(mktemp)
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -f "$log"
}
trap cleanup EXIT
# shellcheck disable=SC2086 # $server_cmd is a binary and its flags
env -u RUST_LOG taskset -c "$server_cpu" $server_cmd --port 0 2>"$log" &
server_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's#.*listening on http://[^ ]*:\([0-9][0-9]*\).*#\1#p' "$log" | head -n1)
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
done
[[ -n $port ]] || { cat "$log" >&2; die "$server did not log 'listening on http://ADDR:PORT'"; }
url="http://127.0.0.1:$port/"

# Runs client $1 for $2 requests; sets seconds and cpu (user + system).
run_client() {
    local cmd out times
    cmd=$(client_cmd "$1")
    times=$(mktemp)
    # shellcheck disable=SC2086 # $cmd is a program and its arguments
    out=$({ TIMEFORMAT='%U %S'; time taskset -c "$client_cpu" $cmd --url "$url" \
        --requests "$2" --concurrency "$concurrency"; } 2>"$times") ||
        { cat "$times" >&2; rm -f "$times"; die "$1 failed"; }
    cpu=$(tail -n1 "$times" | awk '{ print $1 + $2 }')
    rm -f "$times"
    [[ $out =~ requests=([0-9]+)\ seconds=([0-9.]+) ]] || die "$1 printed: $out"
    [[ ${BASH_REMATCH[1]} == "$2" ]] || die "$1 did ${BASH_REMATCH[1]} of $2 requests"
    seconds=${BASH_REMATCH[2]}
}

declare -A wall=() cputime=()
for c in $clients; do wall[$c]=0 cputime[$c]=0; done

echo "server: $server on CPU $server_cpu; clients on CPU $client_cpu;" \
    "$requests GETs at concurrency $concurrency, $rounds round(s)"
if ((warmup > 0)); then
    for c in $clients; do run_client "$c" "$warmup"; done
fi
for ((round = 1; round <= rounds; round++)); do
    for c in $clients; do
        run_client "$c" "$requests"
        wall[$c]=$(awk -v a="${wall[$c]}" -v b="$seconds" 'BEGIN { print a + b }')
        cputime[$c]=$(awk -v a="${cputime[$c]}" -v b="$cpu" 'BEGIN { print a + b }')
        printf '  round %d %-8s %8.3f s %10.0f req/s\n' "$round" "$c" "$seconds" \
            "$(awk -v n="$requests" -v s="$seconds" 'BEGIN { print n / s }')"
    done
done
kill -0 "$server_pid" 2>/dev/null || die "the server exited during the run"

# Step 4: the table.
total=$((requests * rounds))
rate() { awk -v n="$total" -v s="${wall[$1]}" 'BEGIN { printf "%.0f", n / s }'; }
ratio() {
    [[ -n ${wall[$2]:-} ]] || { echo "-"; return; }
    awk -v a="${wall[$1]}" -v b="${wall[$2]}" 'BEGIN { printf "%.2f", b / a }'
}
echo
printf '%-8s %10s %10s %12s %10s\n' client "wall s" req/s "cpu us/req" "whirl/x"
for c in $clients; do
    printf '%-8s %10.3f %10s %12.1f %10s\n' "$c" "${wall[$c]}" "$(rate "$c")" \
        "$(awk -v t="${cputime[$c]}" -v n="$total" 'BEGIN { print t / n * 1e6 }')" \
        "$(ratio whirl "$c")"
done
if [[ -n ${wall[whirl]:-} ]]; then
    echo
    if [[ -n ${wall[hyper]:-} ]]; then echo "whirl/hyper:   $(ratio whirl hyper)x (goal >= 1.0)"; fi
    if [[ -n ${wall[tornado]:-} ]]; then echo "whirl/tornado: $(ratio whirl tornado)x (goal >= 10)"; fi
fi
