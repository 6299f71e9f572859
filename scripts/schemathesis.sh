#!/usr/bin/env bash
# Schemathesis against the real service: it reads GET /openapi.json and sends generated valid
# and invalid requests, checking every answer against the document (status, content type,
# headers, response schema, 400 for invalid data, 405 for other methods, ...). Any failure fails
# the script. Needs python3 (3.11+, for Schemathesis 4), curl and cargo; the service runs on a
# temporary SQLite database with the bundled Stigg emulator, on 127.0.0.1 only.
#
# Environment: SCHEMATHESIS_EXAMPLES (per operation, default 300), SCHEMATHESIS_SEED (default
# fixed, so CI is reproducible; set another to explore), SCHEMATHESIS_VENV (default
# <cargo target directory>/schemathesis/venv).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Pinned: a new release may add checks; upgrade on purpose, then fix what it finds.
version=4.32.5
examples=${SCHEMATHESIS_EXAMPLES:-300}
seed=${SCHEMATHESIS_SEED:-20261124}
# Cargo's target directory, wherever CARGO_TARGET_DIR or a config file puts it.
target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
venv=${SCHEMATHESIS_VENV:-$target/schemathesis/venv}
reports=$target/schemathesis/reports

if [[ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $version" ]]; then
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "schemathesis $version needs python3 3.11 or newer (found $(python3 --version 2>&1))" >&2
        exit 1
    fi
    echo "-- installing schemathesis $version into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

echo "-- building the service"
cargo build --quiet --bin onboarding
bin=$target/debug/onboarding

work=$(mktemp -d)
server=
cleanup() {
    local status=$?
    if [[ -n "$server" ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -f "$work/server.log" ]]; then
        echo "-- last lines of the service's log"
        tail -n 40 "$work/server.log"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The service reads a .env file from its working directory: run it from the temporary
# directory so that a developer's .env (a real Stigg key, say) cannot leak into the run. No
# Stigg settings: the bundled emulator starts in-process. No API_TOKEN: the bearer is optional.
unset STIGG_API_KEY STIGG_API_URL API_TOKEN APP_ENV DATABASE_MAX_CONNECTIONS
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DATABASE_URL="sqlite://$work/onboarding.db"
export BIND_ADDR="127.0.0.1:$port"
export PLAN_CATALOG="$root/config/plans.toml"
export RUST_LOG=${RUST_LOG:-warn}
base=http://127.0.0.1:$port
cd "$work"

sql() {
    python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()' \
        "$work/onboarding.db" "$1"
}
count() {
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' \
        "$work/onboarding.db" "$1"
}

echo "-- seeding: onboarding seed-demo, then the contract's seed SQL"
"$bin" seed-demo >"$work/seed.log" 2>&1
sql "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_1', 'Acme', NULL, 'cus_A1');
     INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
     VALUES ('s_1', 'org_1', 'sub_A1', 'plan_starter_m', 'trialing', '2030-01-15 00:00:00');"

echo "-- starting the service on $base"
"$bin" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 150); do
    if curl -fsS "$base/readyz" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        echo "the service exited before it was ready" >&2
        exit 1
    fi
    sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null

schemathesis() {
    local name=$1
    shift
    "$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run "$base/openapi.json" \
        --checks all --seed "$seed" --generation-database none --no-color \
        --request-timeout 20 --report junit --report-dir "$reports/$name" "$@"
}

# Run 1, every operation, every check, generated and boundary data (positive and negative).
# The contract's example body names no seeded organization here, so every schema-valid body is
# answered 404 or 200, never the data-dependent 400 of a plan other than the subscription's.
# `--include-path-regex` selects /openapi.json too, which Schemathesis leaves out by default
# (it is where the document was loaded from).
echo "-- schemathesis $version: coverage and fuzzing, $examples examples per operation"
schemathesis generated --phases coverage,fuzzing --max-examples "$examples" --include-path-regex '^/'

# Run 2, the schema's examples, once the organization of the contract's example body exists:
# the example is provisioned through the emulator, so the 200 answer is checked too.
echo "-- schemathesis $version: the document's examples, against a seeded example organization"
sql "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_8Yp2', 'Example', NULL, 'cus_Q1w2E3');
     INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
     VALUES ('s_example', 'org_8Yp2', 'sub_9Zx8Y7', 'plan_starter_m', 'trialing', '2030-01-15 00:00:00');"
schemathesis examples --phases examples

# Without this the second run could pass without ever reaching a 200.
provisioned=$(count "SELECT count(*) FROM stigg_subscription_provisions
                     WHERE stripe_subscription_id = 'sub_9Zx8Y7' AND provisioned_at IS NOT NULL")
if [[ "$provisioned" != 1 ]]; then
    echo "the example request was never provisioned: the 200 answer went unchecked" >&2
    exit 1
fi
echo "-- schemathesis: no failures ($(count "SELECT count(*) FROM debug_logs") requests in the debug log; reports in $reports)"
