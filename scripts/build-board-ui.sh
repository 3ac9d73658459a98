#!/usr/bin/env bash
# Rebuilds api/board-ui/ — the apalis-board web app compiled to be served under /board with
# its API under /board/api/v1 — from the published apalis-board-web crate. The result is
# committed, so neither building nor testing the product needs this script; run it to move to
# another apalis-board version.
#
# Needs: the wasm32-unknown-unknown target (`rustup target add wasm32-unknown-unknown`) and
# wasm-bindgen-cli of the crate's own wasm-bindgen version
# (`cargo install wasm-bindgen-cli --version 0.2.129 --locked`); crates.io access.
set -euo pipefail

VERSION=1.0.0
WASM_BINDGEN=0.2.129
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/api/board-ui"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN" ]]; then
    echo "build-board-ui: needs wasm-bindgen $WASM_BINDGEN (cargo install wasm-bindgen-cli --version $WASM_BINDGEN --locked)" >&2
    exit 1
fi

# Fetch the sources of the web app and of apalis-board-api, whose dist holds the app's
# stylesheet (Tailwind output for the same version), through a scratch manifest.
mkdir -p "$work/fetch/src"
cat > "$work/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-board"
version = "0.0.0"
edition = "2024"
[dependencies]
apalis-board-web = "=$VERSION"
apalis-board-api = { version = "=$VERSION", default-features = false }
TOML
touch "$work/fetch/src/lib.rs"
(cd "$work/fetch" && cargo fetch -q)
source_of() {
    (cd "$work/fetch" && cargo metadata --format-version 1) |
        python3 -c "import json,sys,os; m=json.load(sys.stdin); print(next(os.path.dirname(p['manifest_path']) for p in m['packages'] if p['name']==sys.argv[1]))" "$1"
}
web=$(source_of apalis-board-web)
board_api=$(source_of apalis-board-api)

# Build the app as its own package, with its lock file, for the /board prefix; its in-app
# links are absolute paths, pointed under /board first.
cp -r "$web" "$work/web"
chmod -R u+w "$work/web"
python3 "$root/scripts/board-ui-links.py" "$work/web" /board
(
    cd "$work/web"
    export APALIS_BOARD_API_PATH=/board/api/v1 TRUNK_BUILD_PUBLIC_URL=/board/
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true
    export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort
    export CARGO_TARGET_DIR="$work/target"
    cargo build --release --locked --target wasm32-unknown-unknown --bin apalis-board-web
)
wasm-bindgen --target web --no-typescript --out-dir "$work/out" --out-name board \
    "$work/target/wasm32-unknown-unknown/release/apalis-board-web.wasm"

install -m 0644 "$work/out/board.js" "$out/board.js"
install -m 0644 "$work/out/board_bg.wasm" "$out/board_bg.wasm"
install -m 0644 "$board_api"/dist/input-*.css "$out/board.css"
ls -l "$out"
