#!/usr/bin/env bash
# HTTP hello benchmark: whirl's hello_httpserver against hyper (current_thread)
# and a bare mio responder (the floor), in one run, with the same client.
#
#   bench/http.sh
#   WHIRL_BENCH_DURATION=30s WHIRL_BENCH_CONNECTIONS=128 bench/http.sh
#
# Each server runs alone, pinned to one core (`taskset -c 1`), and wrk to
# another (`taskset -c 0 wrk -t1 -c64 -d10s`). On a small machine wrk saturates
# its core first, so req/s mostly measures wrk; the figure that counts is the
# server's CPU time per request: utime + stime from /proc/PID/stat over the
# measured run, divided by the requests wrk counted. Ratios are of that
# figure: 1.05 under "vs mio" means 5% more CPU per request than the floor.
#
# Linux only (/proc, taskset). Needs wrk (`apt-get install -y wrk`); installs
# nothing itself. Settings, from the environment:
#   WHIRL_BENCH_DURATION     measured wrk run per server and round (10s)
#   WHIRL_BENCH_CONNECTIONS  wrk connections (64)
#   WHIRL_BENCH_WARMUP       unmeasured wrk run before each measured one (2s; 0 skips)
#   WHIRL_BENCH_ROUNDS       rounds over all servers; figures add up (1)
#   WHIRL_BENCH_SERVERS      which servers, in order ("whirl hyper mio")
#   WHIRL_BENCH_SERVER_CPU   core for the server (1)
#   WHIRL_BENCH_CLIENT_CPU   core for wrk (0)
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${WHIRL_BENCH_DURATION:-10s}
connections=${WHIRL_BENCH_CONNECTIONS:-64}
warmup=${WHIRL_BENCH_WARMUP:-2s}
rounds=${WHIRL_BENCH_ROUNDS:-1}
servers=${WHIRL_BENCH_SERVERS:-whirl hyper mio}
server_cpu=${WHIRL_BENCH_SERVER_CPU:-1}
client_cpu=${WHIRL_BENCH_CLIENT_CPU:-0}

# The bytes every server sends (whirl's hello_httpserver), checked once each:
# this head, a 29-byte IMF-fixdate, this tail.
expected_head=$'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nDate: '
expected_tail=$'\r\n\r\nHello, world'
expected_len=$((${#expected_head} + 29 + ${#expected_tail}))

die() { echo "http.sh: $*" >&2; exit 1; }

# Step 1: tools.
command -v wrk >/dev/null || die "wrk is not installed; on Debian/Ubuntu: apt-get install -y wrk"
command -v taskset >/dev/null || die "taskset is not installed (util-linux)"
[[ -r /proc/self/stat ]] || die "needs Linux /proc"
cpus=$(getconf _NPROCESSORS_ONLN)
((cpus >= 2)) || echo "http.sh: warning: $cpus CPU; server and wrk share it" >&2
hz=$(getconf CLK_TCK)

# Step 2: release binaries.
cargo build --release --quiet -p whirl --example hello_httpserver
cargo build --release --quiet -p whirl-bench --bin hyper_hello --bin mio_hello
target=${CARGO_TARGET_DIR:-target}/release

command_for() {
    case $1 in
        whirl) echo "$target/examples/hello_httpserver --threads 1" ;;
        hyper) echo "$target/hyper_hello" ;;
        mio) echo "$target/mio_hello" ;;
        *) die "unknown server '$1' (whirl, hyper, mio)" ;;
    esac
}

server_pid=
log=$(mktemp)
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -f "$log"
}
trap cleanup EXIT

# CPU ticks (utime + stime, all threads) of process $1. Fields 14 and 15 of
# /proc/PID/stat; counted after the ")" that closes the command name.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# Starts server $1 pinned to its core; sets server_pid and port.
start_server() {
    local cmd
    cmd=$(command_for "$1")
    # Empty the log here: the child truncates it only once it runs, and the
    # previous server's line must not be read meanwhile.
    : >"$log"
    # shellcheck disable=SC2086 # $cmd is a binary and its flags
    env -u RUST_LOG taskset -c "$server_cpu" $cmd --port 0 2>"$log" &
    server_pid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's#.*listening on http://[^ ]*:\([0-9][0-9]*\).*#\1#p' "$log" | head -n1)
        [[ -n $port ]] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$log" >&2
    die "$1 did not log 'listening on http://ADDR:PORT'"
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# Sends one request on a fresh connection; warns if the answer differs.
check_response() {
    local response=
    if ! { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
        kill -0 "$server_pid" 2>/dev/null || echo "http.sh: $1 exited" >&2
        cat "$log" >&2
        die "$1 refused a connection on port $port"
    fi
    printf 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n' >&3
    IFS= read -r -t 2 -N "$expected_len" response <&3 || true
    exec 3>&-
    if [[ ${#response} -ne $expected_len || ${response:0:${#expected_head}} != "$expected_head" ||
        ${response: -${#expected_tail}} != "$expected_tail" || ${response:${#expected_head}:29} != *" GMT" ]]; then
        echo "http.sh: warning: $1 does not send the bytes of whirl's hello:" >&2
        printf '%q\n' "$response" >&2
    fi
}

run_wrk() {
    taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"$1" "http://127.0.0.1:$port/"
}

declare -A requests=() ticks=() rates=()
for s in $servers; do requests[$s]=0 ticks[$s]=0 rates[$s]=0; done

echo "server on CPU $server_cpu, wrk -t1 -c$connections -d$duration on CPU $client_cpu, $rounds round(s)"
for ((round = 1; round <= rounds; round++)); do
    for s in $servers; do
        start_server "$s"
        check_response "$s"
        if [[ $warmup != 0 && $warmup != 0s ]]; then run_wrk "$warmup" >/dev/null; fi
        before=$(cpu_ticks "$server_pid")
        out=$(run_wrk "$duration")
        after=$(cpu_ticks "$server_pid")
        stop_server
        # "  123456 requests in 10.00s, 11.30MB read" and "Requests/sec:  12345.67"
        n=$(awk '/ requests in / { print $1 }' <<<"$out")
        rate=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
        [[ -n ${n:-} && $n -gt 0 ]] || { echo "$out" >&2; die "$s: wrk counted no requests"; }
        if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
            echo "http.sh: warning: $s:" >&2
            grep -E 'Non-2xx|Socket errors' <<<"$out" >&2
        fi
        requests[$s]=$((requests[$s] + n))
        ticks[$s]=$((ticks[$s] + after - before))
        rates[$s]=$(awk -v a="${rates[$s]}" -v b="$rate" 'BEGIN { print a + b }')
        echo "  round $round $s: $n requests, $((after - before)) ticks"
    done
done

# Step 3: the table (req/s: wrk's, averaged over rounds). µs per request = ticks / CLK_TCK / requests.
us_per_request() { awk -v t="${ticks[$1]}" -v hz="$hz" -v n="${requests[$1]}" 'BEGIN { printf "%.3f", t / hz / n * 1e6 }'; }
ratio() {
    [[ -n ${requests[$2]:-} ]] || { echo "-"; return; }
    awk -v a="$(us_per_request "$1")" -v b="$(us_per_request "$2")" 'BEGIN { printf "%.3f", a / b }'
}

echo
printf '%-8s %12s %12s %12s %10s %10s\n' server req/s requests "cpu us/req" "vs mio" "vs hyper"
for s in $servers; do
    rps=$(awk -v r="${rates[$s]}" -v k="$rounds" 'BEGIN { printf "%.0f", r / k }')
    printf '%-8s %12s %12s %12s %10s %10s\n' "$s" "$rps" "${requests[$s]}" \
        "$(us_per_request "$s")" "$(ratio "$s" mio)" "$(ratio "$s" hyper)"
done
