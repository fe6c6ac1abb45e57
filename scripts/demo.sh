#!/usr/bin/env bash
# The main job on a fresh machine: installs wavesmith, then runs 'wavesmith demo'
# (database from the bundled clips, a short CPU training, generated files).
#   bash scripts/demo.sh [demo args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/wavesmith demo "$@"
