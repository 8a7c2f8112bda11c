#!/usr/bin/env bash
# SillyTavern's own card reader and writer (src/character-card-parser.js and src/png from the npm
# package, with the modules they import), for the test that reads our exported cards with it. Prints the
# folder on its last line. The package is 38 MB and only these files are kept, so nothing else of
# SillyTavern is installed.
set -euo pipefail
VERSION="${SILLYTAVERN_VERSION:-1.19.0}"
DIR="${1:-${TMPDIR:-/tmp}/persona-proxy-sillytavern-$VERSION}"
command -v npm >/dev/null || { echo "npm is not installed"; exit 1; }
if [ ! -f "$DIR/src/character-card-parser.js" ] || [ ! -d "$DIR/node_modules/crc" ]; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  cd "$DIR"
  timeout 300 npm pack --silent "sillytavern@$VERSION" >/dev/null
  tar -xzf "sillytavern-$VERSION.tgz" package/src/character-card-parser.js package/src/png package/package.json
  mv package/src . && mv package/package.json sillytavern-package.json && rm -rf package "sillytavern-$VERSION.tgz"
  # Only the parser's own imports, at the versions SillyTavern's package.json asks for.
  extract=$(node -e 'console.log(require("./sillytavern-package.json").dependencies["png-chunks-extract"])')
  text=$(node -e 'console.log(require("./sillytavern-package.json").dependencies["png-chunk-text"])')
  crc=$(node -e 'console.log(require("./sillytavern-package.json").dependencies["crc"])')
  echo '{"type": "module", "private": true}' > package.json
  timeout 300 npm install --silent --no-save --no-package-lock --ignore-scripts \
    "png-chunks-extract@$extract" "png-chunk-text@$text" "crc@$crc" >/dev/null
fi
echo "$DIR"
