#!/usr/bin/env bash
# The resource-attack and load measurements of issue 9, reported in
# docs/RELIABILITY.md. Each script starts its own hello_httpserver on a free
# loopback port, talks only to 127.0.0.1, prints its measurements and a
# PASS/FAIL line, and is bounded in count and time (the longest, the 100,000
# connect/close cycles, takes a minute or two).
#
#   reliability/run.sh                  # all six, in order
#   reliability/run.sh slowloris emfile # some of them
#
# Scripts: keepalive_10k slowloris slow_body gzip_bomb connect_close emfile.
# Each also runs alone (python3 reliability/NAME.py --help for its knobs);
# they then use the server binary copied to reliability/target/ by this
# script, or the one WHIRL_SERVER names.
#
# Output: the console, and reliability/target/results.txt; server logs in
# reliability/target/logs/. Needs Linux (/proc), python3 (standard library
# only) and a hard fd limit of at least 10,100 for keepalive_10k.
set -euo pipefail
cd "$(dirname "$0")/.."

all=(keepalive_10k slowloris slow_body gzip_bomb connect_close emfile)
if [ $# -eq 0 ]; then scripts=("${all[@]}"); else scripts=("$@"); fi

# A release build of the example, copied so that builds running beside this
# one cannot replace it mid-run.
cargo build --release --quiet -p whirl --example hello_httpserver
mkdir -p reliability/target
cp "${CARGO_TARGET_DIR:-target}/release/examples/hello_httpserver" reliability/target/

status=0
: > reliability/target/results.txt
for name in "${scripts[@]}"; do
    python3 "reliability/$name.py" | tee -a reliability/target/results.txt || status=1
done
exit $status
