#!/usr/bin/env bash
# `just bench`: installs what the benchmark needs (wrk, the PostgreSQL server and pgbench),
# builds the release binaries, and runs the driver (bench/src), which writes
# bench/out/<time>.{json,md} and the latest figures into docs/benchmarks.md.
#
# Settings are environment variables (defaults in brackets); see docs/benchmarks.md:
#   BENCH_CONCURRENCY [64]  BENCH_THREADS [2]  BENCH_DURATION [15]  BENCH_WARMUP [3]
#   BENCH_ORGS [100000]  BENCH_REPLAY [10000]  BENCH_RECONCILE [10000]  BENCH_QUOTA [6000]
#   BENCH_FIRST_TIME [30000]  BENCH_PROBE [2000]  BENCH_PROBE_DURATION [5]  BENCH_STARTUP_RUNS [7]
#   BENCH_DB_POOL [16]  BENCH_WEBHOOK_EVENTS [120000]  BENCH_SYNC_RATE [50]
#   BENCH_SYNC_DURATION [25]  BENCH_SYNC_SUBSCRIPTIONS [250]
#   BENCH_RECONCILE_CONCURRENCY [4]  BENCH_SHARED_RECONCILE [3000]
#   BENCH_SCENARIOS [startup,a,b,c,d,f,g,e,h]
#   BENCH_DATABASE_URL (a server where the role may CREATE DATABASE, instead of a throwaway
#   cluster)  BENCH_WRITE_DOCS [1]  BENCH_SKIP_INSTALL [0]  BENCH_SKIP_BUILD [0]
#   BENCH_PROFILE [0]  BENCH_SERVICE_ENV (extra service settings, "NAME=value ...")
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "bench: $*" >&2; }

as_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
    if ! command -v apt-get >/dev/null; then
        say "please install: $* (no apt-get here)"
        exit 1
    fi
    local sudo=()
    as_root || sudo=(sudo)
    say "installing $* (Debian packages)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

pg_bin_with() {
    # The newest /usr/lib/postgresql/*/bin that has every program named.
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        local ok=1
        for program in "$@"; do [ -x "$dir/$program" ] || ok=0; done
        if [ "$ok" = 1 ]; then echo "$dir"; return 0; fi
    done
    return 1
}

if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
    needed=()
    command -v wrk >/dev/null || needed+=(wrk)
    if [ -n "${BENCH_DATABASE_URL:-}" ]; then
        pg_bin_with pgbench psql >/dev/null || needed+=(postgresql-client)
    else
        pg_bin_with initdb postgres pgbench psql >/dev/null || needed+=(postgresql postgresql-contrib)
    fi
    if [ "${#needed[@]}" -gt 0 ]; then
        apt_install "${needed[@]}"
    fi
    if [ -z "${BENCH_DATABASE_URL:-}" ]; then
        bin=$(pg_bin_with initdb postgres pgbench psql) || { say "no PostgreSQL server binaries after installing"; exit 1; }
        lib=$("$bin/pg_config" --pkglibdir 2>/dev/null || echo "$bin/../lib")
        if [ ! -e "$lib/pg_stat_statements.so" ]; then
            apt_install postgresql-contrib
        fi
    fi
fi

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    say "building the release binaries"
    # Two builds: the driver enables adapters-db's test-support (its throwaway cluster), and
    # built together cargo would enable it in the measured service too.
    cargo build --release --locked -p onboarding-app -p stigg-emulator -p stripe-emulator
    cargo build --release --locked -p onboarding-bench
fi

# Cargo's target directory, wherever CARGO_TARGET_DIR or a config file puts it.
target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export BENCH_BIN_DIR=${BENCH_BIN_DIR:-$target/release}
exec "$target/release/onboarding-bench"
