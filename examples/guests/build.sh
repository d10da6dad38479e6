#!/usr/bin/env bash
# Builds the C guests in this directory into components of our world:
#   clang-19 (wasm32, no libc) -> core module -> `switchyard component new` -> component.
#
#   examples/guests/build.sh [OUT_DIR]        (default: examples/guests/build)
#
# Needs clang-19 and lld-19 (Debian: apt-get install clang-19 lld-19). Set SWITCHYARD to a
# built `switchyard` binary to skip `cargo run`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build}"
mkdir -p "$out"
if [ -n "${SWITCHYARD:-}" ]; then
    switchyard=("$SWITCHYARD")
else
    switchyard=(cargo run --quiet --release --manifest-path "$here/../../Cargo.toml" -p switchyard-cli --)
fi
for src in "$here"/*.c; do
    name="$(basename "$src" .c)"
    clang-19 --target=wasm32-unknown-unknown -O2 -mbulk-memory -nostdlib -Wall -Wextra -Werror \
        -Wl,--no-entry -o "$out/$name.core.wasm" "$src"
    "${switchyard[@]}" component new "$out/$name.core.wasm" -o "$out/$name.wasm"
done
