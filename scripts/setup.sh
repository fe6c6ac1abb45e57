#!/usr/bin/env bash
# Creates .venv (once) and installs wavesmith into it with its test and C2PA extras.
# Run by scripts/demo.sh and scripts/test.sh; safe to run again (a stamp skips pip when
# neither pyproject.toml nor this script has changed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "wavesmith: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.wavesmith-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "wavesmith: installing packages into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  # torch 2.13.0 is pinned first: on our machines it is a CPU build from a local file;
  # a bare 'torch' requirement would pull a multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
