#!/usr/bin/env bash
# whirl's benchmark harness (issue 8): whirl against hyper, actix-web, a raw
# mio responder, nginx and Tornado, on one 2-core Linux machine, in one run.
#
#   bench/run.sh            # the full run: ~11 min on 2 cores, plus builds
#   bench/run.sh --quick    # one round, short runs: ~2 min, a smoke test
#   bench/run.sh --only plaintext,pipelined --servers whirl-raw,mio,hyper
#
# Workloads: plaintext keep-alive, the same pipelined 16 deep, JSON, a 1 MiB
# static file (all with wrk), 10,000 idle keep-alive connections (RSS per
# connection), 100 concurrent 1 s async sleeps (wall time), the HTTP client
# bench (bench/client.sh), the ioloop and echo cargo benches. Each server is
# pinned to CPU 1 and the load generator to CPU 0; each measurement runs 3
# times interleaved; the tables show medians, server CPU µs per request
# (utime + stime from /proc/PID/stat over the run ÷ requests completed) and
# ratios. See bench/harness.py for the details and docs/PERFORMANCE.md for
# the last results.
#
# Output: target/bench/results.md (the tables and goals), results.json,
# performance.png (the chart; docs/performance.png is a copy) and logs/.
#
# Linux only (/proc, taskset). Installs what is missing: wrk, nginx and its
# echo module with apt-get (as root), tornado and matplotlib with pip.
# Settings, from the environment: WHIRL_BENCH_ROUNDS (3), WHIRL_BENCH_DURATION
# (wrk seconds, 5), WHIRL_BENCH_WARMUP (1), WHIRL_BENCH_IDLE (10000),
# WHIRL_BENCH_SERVER_CPU (1), WHIRL_BENCH_CLIENT_CPU (0), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
die() { echo "run.sh: $*" >&2; exit 1; }

# Step 1: tools.
[[ -r /proc/self/stat ]] || die "needs Linux /proc"
command -v taskset >/dev/null || die "taskset is not installed (util-linux)"
command -v "$python" >/dev/null || die "$python is not installed"
(($(getconf _NPROCESSORS_ONLN) >= 2)) ||
    echo "run.sh: warning: one CPU; servers and load generators share it" >&2
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
[[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ]] || missing+=(libnginx-mod-http-echo)
if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing ${missing[*]}: apt-get install -y ${missing[*]}"
    echo "run.sh: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
fi
for module in tornado matplotlib; do
    if ! "$python" -c "import $module" 2>/dev/null; then
        echo "run.sh: installing $module with pip" >&2
        "$python" -m pip install --quiet "$module" || die "pip install $module failed"
    fi
done

# Step 2: release binaries: whirl's in the workspace, the peers in their own
# workspace and target directory.
cargo build --release --quiet -p whirl-bench --bin whirl_raw --bin whirl_web --bin whirl_stream
peers_target=bench/peers/target
cargo build --release --quiet --manifest-path bench/peers/Cargo.toml --target-dir "$peers_target"
whirl_bin=${CARGO_TARGET_DIR:-target}/release

# Step 3: the measurements.
exec "$python" bench/harness.py --whirl-bin "$whirl_bin" --peers-bin "$peers_target/release" "$@"
