# Tasks for people who have `just`; each recipe is one plain cargo command you can also type.

# Run the service on the embedded defaults (SQLite file, bundled Stigg emulator).
run:
    cargo run

# Insert the demo organization and subscription used in the README's curl.
seed-demo:
    cargo run -- seed-demo

# Every test: unit, SQLite, PostgreSQL (throwaway cluster), HTTP black-box.
test:
    cargo test --workspace

# Rewrite docs/openapi.json from the code (a test fails while it differs).
openapi:
    UPDATE_OPENAPI=1 cargo test -p onboarding-app --lib openapi

fmt:
    cargo fmt --all

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# What CI runs.
ci:
    bash .ci/run

# Apply pending migrations to DATABASE_URL.
migrate:
    cargo run -- migrate

# The bundled Stigg emulator on its own.
emulator:
    cargo run -p stigg-emulator -- --bind 127.0.0.1:8787

# The property tests alone; PROPTEST_CASES=5000 for a longer run.
properties:
    cargo test -p onboarding-domain --test properties
    cargo test -p onboarding-app --test api properties

# Schemathesis against the running service (temporary SQLite, bundled Stigg emulator).
schemathesis:
    bash scripts/schemathesis.sh

# Stripe's and Stigg's own Python clients against our emulators (python3 3.11+).
vendor-clients:
    bash scripts/vendor_clients.sh

# Fuzz request parsing (nightly toolchain and `cargo install cargo-fuzz`; not in CI).
fuzz seconds="60":
    mkdir -p fuzz/corpus/parse_request
    cargo +nightly fuzz run parse_request fuzz/corpus/parse_request fuzz/seeds/parse_request -- -dict=fuzz/parse_request.dict -max_len=20000 -max_total_time={{seconds}}

# The benchmark (~5 minutes plus the release build; installs wrk and PostgreSQL if missing):
# writes bench/out/<time>.{json,md} and the latest figures into docs/benchmarks.md.
bench:
    bash bench/run.sh
