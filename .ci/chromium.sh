#!/usr/bin/env bash
# Install Debian's Chromium (no browser download) for the tests that open the HTML reports.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root to install Chromium"; exit 1; }
command -v chromium >/dev/null && exit 0
timeout 300 apt-get update -qq
DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends chromium
command -v chromium
