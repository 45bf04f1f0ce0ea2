#!/bin/sh
# Fuzz the cookie opener for N seconds (default 60): ./fuzz/run.sh 300
# Extra arguments go to libFuzzer, e.g. ./fuzz/run.sh 60 -jobs=2
set -eu
cd "$(dirname "$0")/.."
seconds="${1:-60}"
[ $# -gt 0 ] && shift
exec "${PYTHON:-.venv/bin/python}" fuzz/fuzz_cookie.py -max_total_time="$seconds" "$@"
