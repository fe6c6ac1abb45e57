#!/usr/bin/env bash
# Runs the wavesmith test suite on a fresh machine: installs what it needs, then pytest.
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Debian tools some tests use: ffmpeg (codec attacks, m4a decoding), espeak-ng (phonemes
# for speech), chromium and chromium-driver (pages opened in a headless browser). Installed
# when we are root and they are missing; otherwise those tests skip and say why.
need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "wavesmith: installing ${need[*]}" >&2
  log=$(mktemp)
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >"$log" 2>&1; then
    echo "wavesmith: could not install ${need[*]}; tests that need them will skip. apt said:" >&2
    tail -n 5 "$log" >&2
  fi
  rm -f "$log"
fi
exec .venv/bin/python -m pytest -q "$@"
