#!/usr/bin/env bash
# Builds the example guests from source, each with its own toolchain, into components of our
# world (wit/switchyard.wit):
#
#   guest     source             toolchain                                      output
#   c-nolibc  transform.c        clang-19, no libc; `switchyard component new`  OUT/transform.wasm
#   c         c/ingest.c         wit-bindgen (C bindings of wit/), clang-19 +   OUT/c/ingest.wasm
#                                wasi-libc; `switchyard component new` (adds
#                                the WASI preview1 adapter)
#   js        js/transform.js    componentize-js 0.23.0                         OUT/js/transform.wasm
#   python    python/store.py    componentize-py 0.25.1                         OUT/python/store.wasm
#   rust      rust/greeter,      cargo with the wasm32-wasip2 target            OUT/rust/greeter.wasm,
#             rust/inventory     (switchyard-guest: no WIT to copy)             OUT/rust/inventory.wasm
#
#   examples/guests/build.sh [--check] [-o OUT] [GUEST...]
#
# GUEST: any of c-nolibc, c, js, python, rust (default: all). OUT defaults to examples/guests/build,
# where the manifests beside this script look for the components. With --check nothing is
# built: it reports the missing tools of the chosen guests (exit 1 if any is missing).
#
# Installs nothing. A missing tool is an error that names it and how to install it:
#   c-nolibc, c  clang-19 and lld-19; c also the wasm32 builtins and wasi-libc:
#                apt-get install clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc
#                and wit-bindgen's command 0.46.0 (on PATH, at $WIT_BINDGEN, or in
#                ~/.cache/switchyard/tools/wit-bindgen/bin, where .ci/run installs it):
#                cargo install wit-bindgen-cli --version 0.46.0 --locked
#   js           node and componentize-js: npm install --prefix ~/.cache/switchyard/tools/componentize-js
#                @bytecodealliance/componentize-js@0.23.0 (found there, on PATH, or at $COMPONENTIZE_JS)
#   python       componentize-py: pip install componentize-py==0.25.1 (on PATH, in the virtual
#                environment ~/.cache/switchyard/tools/py that .ci/run makes, or $COMPONENTIZE_PY)
#   rust         cargo and the wasm32-wasip2 target: rustup target add wasm32-wasip2
#                (built into $RUST_GUEST_TARGET_DIR, default $CARGO_TARGET_DIR/wasm-guests, else
#                target/wasm-guests)
# Set SWITCHYARD to a built `switchyard` binary to skip `cargo run`. Each build prints its
# time. .ci/run installs the tools and runs `build.sh --check` before the tests (the tests
# build the guests they run themselves: c, js and python into a directory of their own,
# c-nolibc into examples/guests/build), then the full build in its examples step, after them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

check_only=0
out="$here/build"
guests=()
while [ $# -gt 0 ]; do
    case "$1" in
        --check) check_only=1 ;;
        -o) out="$2"; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        c-nolibc | c | js | python | rust) guests+=("$1") ;;
        *) echo "build.sh: unknown argument '$1' (guests: c-nolibc, c, js, python, rust)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#guests[@]} -gt 0 ] || guests=(c-nolibc c js python rust)

CLANG="${CLANG:-clang-19}"
if [ -z "${WIT_BINDGEN:-}" ]; then
    if command -v wit-bindgen >/dev/null 2>&1; then
        WIT_BINDGEN=wit-bindgen
    else
        WIT_BINDGEN="$HOME/.cache/switchyard/tools/wit-bindgen/bin/wit-bindgen"
    fi
fi
WASI_SYSROOT="${WASI_SYSROOT:-/usr}"
if [ -z "${COMPONENTIZE_PY:-}" ]; then
    if command -v componentize-py >/dev/null 2>&1; then
        COMPONENTIZE_PY=componentize-py
    else
        COMPONENTIZE_PY="$HOME/.cache/switchyard/tools/py/bin/componentize-py"
    fi
fi
if [ -z "${COMPONENTIZE_JS:-}" ]; then
    if command -v componentize-js >/dev/null 2>&1; then
        COMPONENTIZE_JS=componentize-js
    else
        COMPONENTIZE_JS="$HOME/.cache/switchyard/tools/componentize-js/node_modules/.bin/componentize-js"
    fi
fi

# The tools each guest needs: prints one line per missing tool, with how to install it.
missing_for() {
    case "$1" in
        c-nolibc | c)
            command -v "$CLANG" >/dev/null 2>&1 || echo "$1: $CLANG is missing (apt-get install clang-19)"
            command -v wasm-ld-19 >/dev/null 2>&1 || echo "$1: wasm-ld-19 is missing (apt-get install lld-19)"
            ;;
    esac
    case "$1" in
        c)
            if command -v "$CLANG" >/dev/null 2>&1; then
                local builtins
                builtins="$("$CLANG" --target=wasm32-wasi -print-libgcc-file-name)"
                [ -f "$builtins" ] || echo "c: the wasm32 builtins ($builtins) are missing (apt-get install libclang-rt-19-dev-wasm32)"
            fi
            [ -f "$WASI_SYSROOT/include/wasm32-wasi/stdio.h" ] && [ -f "$WASI_SYSROOT/lib/wasm32-wasi/libc.a" ] \
                || echo "c: wasi-libc is missing from $WASI_SYSROOT (apt-get install wasi-libc)"
            "$WIT_BINDGEN" --version 2>/dev/null | grep -q "0.46.0" \
                || echo "c: wit-bindgen 0.46.0 is missing (cargo install wit-bindgen-cli --version 0.46.0 --locked)"
            ;;
        js)
            command -v node >/dev/null 2>&1 || echo "js: node is missing (apt-get install nodejs npm)"
            command -v "$COMPONENTIZE_JS" >/dev/null 2>&1 \
                || echo "js: componentize-js is missing (npm install --prefix ~/.cache/switchyard/tools/componentize-js @bytecodealliance/componentize-js@0.23.0)"
            ;;
        python)
            command -v "$COMPONENTIZE_PY" >/dev/null 2>&1 \
                || echo "python: componentize-py is missing (pip install componentize-py==0.25.1)"
            ;;
        rust)
            command -v cargo >/dev/null 2>&1 || echo "rust: cargo is missing (https://rustup.rs)"
            rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 \
                || echo "rust: the wasm32-wasip2 target is missing (rustup target add wasm32-wasip2)"
            ;;
    esac
}

missing=""
for g in "${guests[@]}"; do
    missing+="$(missing_for "$g")"$'\n'
done
missing="$(printf '%s' "$missing" | sed '/^$/d')"
if [ -n "$missing" ]; then
    echo "build.sh: missing tools:" >&2
    printf '  %s\n' "$missing" >&2
    exit 1
fi
[ "$check_only" = 1 ] && { echo "build.sh: every tool for ${guests[*]} is installed"; exit 0; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if [ -n "${SWITCHYARD:-}" ]; then
    switchyard=("$SWITCHYARD")
else
    switchyard=(cargo run --quiet --release --manifest-path "$repo/Cargo.toml" -p switchyard-cli --)
fi

# Runs a build step and prints how long it took.
timed() {
    local what="$1" start end
    shift
    start="$(date +%s%N)"
    "$@"
    end="$(date +%s%N)"
    echo "build.sh: $what built in $(((end - start) / 1000000)) ms"
}

build_c_nolibc() {
    "$CLANG" --target=wasm32-unknown-unknown -O2 -mbulk-memory -nostdlib -Wall -Wextra -Werror \
        -Wl,--no-entry -o "$out/transform.core.wasm" "$here/transform.c"
    "${switchyard[@]}" component new "$out/transform.core.wasm" -o "$out/transform.wasm"
}

build_c() {
    mkdir -p "$out/c/bindings"
    # The C bindings of our world: guest.h, guest.c (the canonical ABI, cabi_realloc) and
    # guest_component_type.o (the world, embedded in the module for `component new`).
    "$WIT_BINDGEN" c "$repo/wit" --world guest --out-dir "$out/c/bindings" > /dev/null
    # A reactor: no main; libc is initialised by _initialize, which the component runs at start.
    "$CLANG" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -mexec-model=reactor -O2 -Wall -Wextra -Werror \
        -I "$out/c/bindings" -o "$out/c/ingest.core.wasm" "$here/c/ingest.c" "$out/c/bindings/guest.c" \
        "$out/c/bindings/guest_component_type.o"
    "${switchyard[@]}" component new "$out/c/ingest.core.wasm" -o "$out/c/ingest.wasm"
}

build_js() {
    mkdir -p "$out/js"
    "$COMPONENTIZE_JS" --wit "$repo/wit" --world-name guest -o "$out/js/transform.wasm" "$here/js/transform.js"
}

build_python() {
    mkdir -p "$out/python"
    # componentize-py writes its bindings (the `wit_world` package) into a scratch directory.
    (cd "$here/python" && "$COMPONENTIZE_PY" -d "$repo/wit" -w guest componentize store -o "$out/python/store.wasm")
}

build_rust() {
    mkdir -p "$out/rust"
    local target_dir="${RUST_GUEST_TARGET_DIR:-${CARGO_TARGET_DIR:-$repo/target}/wasm-guests}"
    CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-wasip2 \
        --manifest-path "$repo/Cargo.toml" -p greeter -p inventory
    cp "$target_dir/wasm32-wasip2/release/greeter.wasm" "$target_dir/wasm32-wasip2/release/inventory.wasm" "$out/rust/"
}

for g in "${guests[@]}"; do
    case "$g" in
        c-nolibc) timed "c-nolibc (transform.wasm)" build_c_nolibc ;;
        c) timed "c (c/ingest.wasm)" build_c ;;
        js) timed "js (js/transform.wasm)" build_js ;;
        python) timed "python (python/store.wasm)" build_python ;;
        rust) timed "rust (rust/greeter.wasm, rust/inventory.wasm)" build_rust ;;
    esac
done
