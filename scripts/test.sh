#!/usr/bin/env bash
# The full test suite: dependencies, formatting, lints, unit, integration and
# end-to-end tests. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
