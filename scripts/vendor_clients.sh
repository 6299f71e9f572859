#!/usr/bin/env bash
# The vendors' own Python clients against our emulators, so that the emulators answer what the
# real clients parse, not only what our Rust code reads (tests in scripts/vendor_clients/):
#
# - Stripe's official library (`stripe` on PyPI) against the stripe-emulator: subscription,
#   customer (a deleted one too), the status=all subscriptions list with auto-pagination,
#   events, and the library's InvalidRequestError (404 resource_missing) and AuthenticationError.
# - Webhook signatures both ways: the emulator delivers to a Python receiver that verifies with
#   stripe.Webhook.construct_event (accepted; refused under a wrong secret), and the
#   adapters-stripe example `verify_signature` (the crate's public `verify`) accepts what the
#   library signs and refuses a tampered body, a wrong secret and an old timestamp.
# - Stigg's official SDK (`stigg` on PyPI, generated from Stigg's OpenAPI document), with strict
#   response validation, against the stigg-emulator: every call crates/adapters-stigg makes, and
#   the error answers it reads, each parsed by the SDK's models and error types.
#
# Needs python3 (3.11+), cargo, curl, and network access to PyPI on the first run (or after
# scripts/vendor_clients/requirements.txt changed): the pinned packages are installed into a
# virtual environment under cargo's target directory and reused afterwards. Everything runs on
# 127.0.0.1 only.
#
# Environment: VENDOR_CLIENTS_VENV (default <cargo target directory>/vendor-clients/venv).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$(date +%s)

requirements=$root/scripts/vendor_clients/requirements.txt
# Cargo's target directory, wherever CARGO_TARGET_DIR or a config file puts it.
target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
venv=${VENDOR_CLIENTS_VENV:-$target/vendor-clients/venv}

# The venv keeps a copy of the requirements it was made from: another pin makes a new one.
if ! cmp -s "$requirements" "$venv/requirements.txt" || ! "$venv/bin/python" -c 'import stripe, stigg, pytest' 2>/dev/null; then
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "the vendor-client tests need python3 3.11 or newer (found $(python3 --version 2>&1))" >&2
        exit 1
    fi
    echo "-- installing the pinned vendor clients into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

echo "-- building the emulators and the verify_signature example"
cargo build --quiet -p stripe-emulator -p stigg-emulator --bins
cargo build --quiet -p onboarding-adapters-stripe --example verify_signature

work=$(mktemp -d)
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $status -ne 0 ]]; then
        for log in "$work"/*.log; do
            [[ -f "$log" ]] || continue
            echo "-- last lines of $(basename "$log")"
            tail -n 40 "$log"
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Three distinct free ports, held together while picked: the two emulators and the receiver.
read -r stripe_port stigg_port hook_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
for s in sockets:
    s.close()')

# Keys and secrets of this run only; the emulators' own variables are cleared so that a
# developer's shell cannot change what they accept.
unset STRIPE_EMULATOR_BIND STRIPE_EMULATOR_API_KEY STRIPE_EMULATOR_WEBHOOK_URL STRIPE_EMULATOR_WEBHOOK_SECRET
unset STIGG_EMULATOR_BIND STIGG_EMULATOR_API_KEY
stripe_key=sk_test_vendor_clients
stigg_key=vendor-clients-key
# Two secrets, as during a rotation: every delivery carries one v1 signature per secret.
secrets=whsec_vendor_clients_current,whsec_vendor_clients_previous
# info: the start-up lines and deliveries, shown with the last lines of the logs on a failure.
export RUST_LOG=${RUST_LOG:-info}

# One attempt per delivery: a delivery the receiver refuses must not come back as a retry.
"$target/debug/stripe-emulator" --bind "127.0.0.1:$stripe_port" --api-key "$stripe_key" \
    --webhook-url "http://127.0.0.1:$hook_port/webhook" --webhook-secret "$secrets" \
    --retry-max-attempts 1 >"$work/stripe-emulator.log" 2>&1 &
pids+=($!)
"$target/debug/stigg-emulator" --bind "127.0.0.1:$stigg_port" --api-key "$stigg_key" \
    >"$work/stigg-emulator.log" 2>&1 &
pids+=($!)

for port in "$stripe_port" "$stigg_port"; do
    for _ in $(seq 100); do
        if curl -fsS "http://127.0.0.1:$port/_emulator/health" >/dev/null 2>&1; then
            break
        fi
        for pid in "${pids[@]}"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "an emulator exited before it was ready" >&2
                exit 1
            fi
        done
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/_emulator/health" >/dev/null
done
echo "-- emulators ready: Stripe on $stripe_port, Stigg on $stigg_port; webhook receiver on $hook_port"

# No .pyc files or pytest cache in the work tree.
export PYTHONDONTWRITEBYTECODE=1
VC_STRIPE_URL=http://127.0.0.1:$stripe_port \
    VC_STRIPE_KEY=$stripe_key \
    VC_WEBHOOK_SECRETS=$secrets \
    VC_WEBHOOK_PORT=$hook_port \
    VC_STIGG_URL=http://127.0.0.1:$stigg_port \
    VC_STIGG_KEY=$stigg_key \
    VC_VERIFY_SIGNATURE=$target/debug/examples/verify_signature \
    "$venv/bin/python" -m pytest -p no:cacheprovider --rootdir "$root/scripts/vendor_clients" \
    -q "$root/scripts/vendor_clients"

echo "-- vendor clients: no failures ($(($(date +%s) - started)) s, the build included)"
