#!/usr/bin/env bash
# The full test suite: dependencies, formatting, lints, unit, integration and
# end-to-end tests. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh --test
# Whatever a test starts without --state keeps its store here, never in the
# user's own state directory.
XDG_STATE_HOME="$(mktemp -d)"
export XDG_STATE_HOME
trap 'rm -rf "$XDG_STATE_HOME"' EXIT
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
