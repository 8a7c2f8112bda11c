#!/usr/bin/env bash
# The benchmark in one command: installs nginx, wrk, persona-proxy and (unless
# BENCH_LITELLM=0) LiteLLM 1.108.7 in its own virtualenv, then runs
# `python -m bench` with any arguments given here (see --help).
# persona-proxy gets a virtualenv of its own with only what `pip install .`
# brings, so memory is measured as deployed (test tools such as pytest's
# pygments would otherwise be imported by httpx into every worker).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk
fi
python3 -m venv .bench-venv && .bench-venv/bin/pip install -q --force-reinstall --no-deps . && .bench-venv/bin/pip install -q .
if [ "${BENCH_LITELLM:-1}" = 1 ]; then
  if [ ! -x .bench-litellm/bin/litellm ]; then
    python3 -m venv .bench-litellm && .bench-litellm/bin/pip install -q 'litellm[proxy]==1.108.7'
  fi
  export LITELLM_BIN="$PWD/.bench-litellm/bin/litellm"
fi
exec .bench-venv/bin/python -m bench "$@"
