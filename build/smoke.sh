#!/usr/bin/env bash
# Check a built tillgate bundle does the real work, away from the source tree: each verb
# runs from a scratch folder, and (as root, where mount namespaces work) with the source
# tree and its venv hidden under an empty tmpfs, so nothing can come from there.
#
#   build/smoke.sh EXE [--work DIR] [--skip STEP]...
#
#   EXE          the built executable (the last line build/build.sh prints)
#   --work DIR   scratch folder (default: a new temporary one, removed when all passed)
#   --skip STEP  leave out a step: version, decode, check-program, run, hq, hq-postgres, demo
#
# Steps, each timed: --version; decode of every golden ESC/POS sample compared with its
# .txt (and one --png); check-program on the sample program; `run` on a copy of
# config.example.toml with a file:// printer, a loop:// scanner and pty interception,
# answering /v1/status and stopping on SIGTERM; `hq serve` answering /healthz (and on
# PostgreSQL when TILLGATE_TEST_PG is set and psql is at hand); `demo`, which must leave
# receipts (*.txt, *.png) and summary.txt. Exit 1 at the first failure, with its log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
fail() { echo "smoke.sh: FAIL: $1" >&2; exit 1; }

[ $# -ge 1 ] || fail "usage: build/smoke.sh EXE [--work DIR] [--skip STEP]..."
case "$1" in -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
exe=$1
shift
work=""
skip=" "
while [ $# -gt 0 ]; do
    case "$1" in
        --work) work=$2; shift 2 ;;
        --skip) skip="$skip$2 "; shift 2 ;;
        *) fail "unknown option '$1'" ;;
    esac
done
[ -x "$exe" ] || fail "$exe: not an executable (build it with build/build.sh)"
exe=$(cd "$(dirname "$exe")" && pwd -P)/$(basename "$exe")
case "$exe" in "$root"/*) fail "$exe is inside the source tree: build with build/build.sh --out DIR" ;; esac
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/tillgate-smoke.XXXXXX")
    own_work=1
else
    mkdir -p "$work"
    own_work=0
fi
work=$(cd "$work" && pwd -P)
case "$work/" in "$root"/*) fail "--work $work is inside the source tree" ;; esac

# Inputs come from the tree now; the bundle runs without it.
mkdir -p "$work/in"
cp "$root"/config.example.toml "$root"/program.example.toml "$root"/cards.example.csv "$work/in/"
cp "$root"/tests/drivers/escpos/golden/*.bin "$root"/tests/drivers/escpos/golden/*.txt "$work/in/"
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/core/__init__.py")
cd "$work"
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP VIRTUAL_ENV

# Hide the tree where we can: a private mount namespace with an empty tmpfs over it.
isolate=()
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 \
    && unshare -m -- sh -c 'mount -t tmpfs -o size=1m tmpfs "$0" && ! test -e "$0/agent"' "$root" 2>/dev/null; then
    isolate=(unshare -m -- sh -c 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@"' "$root")
    echo "smoke.sh: running $exe in $work, with $root hidden"
else
    echo "smoke.sh: running $exe in $work (cannot hide $root here: needs root and unshare)"
fi
bundle() { ${isolate[@]+"${isolate[@]}"} "$exe" "$@"; }
# For background processes: `(exec_bundle ARGS) &` leaves $! the bundle's own pid (unshare,
# sh and the subshell all exec), so SIGTERM reaches it.
exec_bundle() { exec ${isolate[@]+"${isolate[@]}"} "$exe" "$@"; }

# Whatever a failed step leaves running or created is removed on the way out.
pids=()
pg_schema=""
cleanup() {
    local pid
    for pid in ${pids[@]+"${pids[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
    if [ -n "$pg_schema" ]; then
        psql -q "$TILLGATE_TEST_PG" -c "DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else date +%s; fi; }
step_name="" step_start=""
step() {
    step_name=$1
    step_start=$(now)
    echo "-- $step_name"
}
done_step() {
    echo "ok $step_name ($(awk -v a="$step_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s)"
}
wanted() { case "$skip" in *" $1 "*) echo "-- $1: skipped"; return 1 ;; esac; }

# Waits for "http://host:port" in a log, then for PATH there to answer; prints the base URL.
wait_http() {
    local log=$1 path=$2 pid=$3 url="" i
    for i in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "the process exited early"; }
        url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -n 1 || true)
        if [ -n "$url" ] && curl -sf -o /dev/null "$url$path"; then
            echo "$url"
            return 0
        fi
        sleep 0.1
    done
    cat "$log" >&2
    fail "nothing answered $path within 30 s"
}
stop() {
    local pid=$1 log=$2 status=0 i
    kill -TERM "$pid"
    for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        cat "$log" >&2
        fail "still running 15 s after SIGTERM"
    fi
    wait "$pid" || status=$?
    [ "$status" = 0 ] || { cat "$log" >&2; fail "exit $status after SIGTERM (want 0)"; }
}

if wanted version; then
    step version
    got=$(bundle --version)
    [ "$got" = "tillgate $version" ] || fail "--version said '$got', want 'tillgate $version'"
    done_step
fi

if wanted decode; then
    step decode
    n=0
    for bin in in/*.bin; do
        txt=${bin%.bin}.txt
        [ -f "$txt" ] || continue
        bundle decode "$bin" >"$work/decoded.txt" || fail "decode $bin failed"
        cmp -s "$work/decoded.txt" "$txt" \
            || { diff -u "$txt" "$work/decoded.txt" >&2 || true; fail "decode $(basename "$bin") differs from its golden .txt"; }
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || fail "no golden samples found"
    bundle decode in/cp866.bin --png "$work/cp866.png" >/dev/null 2>&1 || fail "decode --png failed"
    [ "$(head -c 4 "$work/cp866.png" | od -An -c | tr -d ' ')" = '211PNG' ] || fail "cp866.png is not a PNG"
    echo "$n samples decoded as their golden text; cp866.png drawn"
    done_step
fi

if wanted check-program; then
    step check-program
    bundle check-program in/program.example.toml
    done_step
fi

if wanted run; then
    step run
    mkdir -p till
    cp in/config.example.toml in/program.example.toml in/cards.example.csv till/
    # Devices without hardware: a file printer, pyserial's loop:// (a URL handler pyserial
    # imports by name) as the scanner, and interception on a pty (Linux, macOS).
    sed -i.orig \
        -e "/^\[devices.printer\]/,/^\[/ s|^url = \"none\"|url = \"file://$work/till/printer.bin\"|" \
        -e "/^\[devices.scanner\]/,/^\[/ s|^url = \"none\"|url = \"loop://\"|" \
        -e "/^\[intercept\]/,/^\[/ s|^enabled = false|enabled = true|" \
        -e "s|pty:/run/tillgate/pos-printer|pty:$work/till/pos-printer|" \
        till/config.example.toml
    (exec_bundle run --config till/config.example.toml --port 0) >till/run.log 2>&1 &
    pid=$!
    pids+=("$pid")
    url=$(wait_http till/run.log /v1/status "$pid")
    # Devices open on threads of their own: give them a few seconds to come online.
    for i in $(seq 100); do
        curl -sf "$url/v1/status" >till/status.json
        online=0
        for device in printer scanner intercept; do
            if grep -q "\"$device\":{\"status\":\"online\"" till/status.json; then
                online=$((online + 1))
            fi
        done
        [ "$online" = 3 ] && break
        sleep 0.1
    done
    grep -q '"till":"till-1"' till/status.json || fail "unexpected /v1/status: $(cat till/status.json)"
    [ "$online" = 3 ] || { cat till/status.json till/run.log >&2; fail "printer, scanner and intercept are not all online"; }
    [ -L till/pos-printer ] || fail "no pty link at till/pos-printer"
    # The hint panel's page is package data (agent/api/static/panel.html): it must be in the bundle.
    curl -sf "$url/" | grep -q 'data-testid="customer-name"' || fail "the hint panel page is not served"
    stop "$pid" till/run.log
    grep -q "tillgate stopped" till/run.log || { cat till/run.log >&2; fail "no clean stop in the log"; }
    echo "answered $url/v1/status and the panel at $url/; printer, scanner, intercept online; stopped cleanly on SIGTERM"
    done_step
fi

if wanted hq; then
    step "hq serve"
    mkdir -p hq
    (exec_bundle hq serve --data-dir hq --port 0) >hq/serve.log 2>&1 &
    pid=$!
    pids+=("$pid")
    url=$(wait_http hq/serve.log /healthz "$pid")
    [ -s hq/hq-admin.token ] || fail "no hq/hq-admin.token"
    stop "$pid" hq/serve.log
    echo "answered $url/healthz; stopped cleanly on SIGTERM"
    done_step
fi

if [ -n "${TILLGATE_TEST_PG:-}" ] && command -v psql >/dev/null 2>&1 && wanted hq-postgres; then
    step "hq serve on PostgreSQL"
    pg_schema="smoke_$$"
    psql -q "$TILLGATE_TEST_PG" -c "CREATE SCHEMA $pg_schema" >/dev/null
    case "$TILLGATE_TEST_PG" in *\?*) sep="&" ;; *) sep="?" ;; esac
    mkdir -p hq-pg
    db="$TILLGATE_TEST_PG${sep}options=-csearch_path%3D$pg_schema"  # a schema of its own
    # PSYCOPG_IMPL=binary: fail rather than fall back to a libpq the system may happen to have.
    (export PSYCOPG_IMPL=binary && exec_bundle hq serve --db "$db" --data-dir hq-pg --port 0) \
        >hq-pg/serve.log 2>&1 &
    pid=$!
    pids+=("$pid")
    url=$(wait_http hq-pg/serve.log /healthz "$pid")
    stop "$pid" hq-pg/serve.log
    psql -q "$TILLGATE_TEST_PG" -c "SET client_min_messages = warning" \
        -c "DROP SCHEMA $pg_schema CASCADE" >/dev/null
    pg_schema=""
    echo "answered $url/healthz with psycopg from the bundle"
    done_step
fi

if wanted demo; then
    step demo
    bundle demo --out "$work/demo" >demo.log 2>&1 || { cat demo.log >&2; fail "demo failed"; }
    [ -s demo/summary.txt ] || { cat demo.log >&2; fail "the demo wrote no demo/summary.txt"; }
    txt=$(find demo -name '*.txt' ! -name summary.txt | wc -l)
    png=$(find demo -name '*.png' | wc -l)
    [ "$txt" -gt 0 ] && [ "$png" -gt 0 ] || fail "the demo left $txt receipt texts and $png pictures"
    echo "$txt receipt texts, $png pictures and summary.txt in $work/demo"
    done_step
fi

cd /
if [ "$own_work" = 1 ]; then rm -rf "$work"; fi
echo "smoke.sh: all steps passed"
