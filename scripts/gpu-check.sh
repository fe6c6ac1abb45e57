#!/usr/bin/env bash
# Every GPU figure wavesmith owes, in one go, in under 8 minutes of a lent GPU machine.
#
#   bash scripts/gpu-check.sh --prepare   # here, before asking for a GPU: the tiny real-audio
#                                         # database (.gpu-check/) and the wheels the GPU image lacks (.whl/)
#   bash scripts/gpu-check.sh             # there: run(command="bash scripts/gpu-check.sh",
#                                         #              carry=[".gpu-check", ".whl"], timeout_s=540)
#   bash scripts/gpu-check.sh --dry-run   # on a CPU: the same steps with tiny settings (a test runs it)
#
# Steps, most wanted first (each has its own time limit; once 7.5 minutes have passed the
# rest are recorded as skipped): every speed benchmark that takes --device, with --device cuda
# (wavenet_speed, wavegan_speed, engine_overhead); a 2-process torchrun over NCCL; a short
# bf16 training of each model on real recordings, then generation from it (WaveNet's
# CUDA-graph path); a --compile training; ingest and dataset speed on that machine's CPUs.
# Everything is written to $OUT (the device tool's folder; a temporary folder when unset):
# gpu-check.json (every step: its command, exit status, seconds, its JSON or the tail of
# its output) and gpu-check.log. The device tool brings back 8 files at most, hence two.
# The exit status is 1 when a step failed (its files are written all the same).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=gpu
case "${1:-}" in
  --dry-run) MODE=dry ;;
  --prepare) MODE=prepare ;;
  "") ;;
  *) echo "usage: scripts/gpu-check.sh [--dry-run | --prepare]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
REAL=${WAVESMITH_REAL_AUDIO:-/work/real-audio}
CARRIED=$ROOT/.gpu-check/db

if [ "$MODE" = prepare ]; then
  # The carried database: every third drum recording, long ones cut at 2 s (under 20 MB).
  if [ -d "$REAL/drums" ]; then
    rm -rf "$ROOT/.gpu-check" && mkdir -p "$ROOT/.gpu-check"
    find "$REAL/drums" -type f \( -name '*.wav' -o -name '*.flac' -o -name '*.aiff' \) | LC_ALL=C sort \
      | awk 'NR % 3 == 1' | "$PY" -c 'import csv, sys; w = csv.writer(sys.stdout); w.writerow(["path"]); [w.writerow([l.strip()]) for l in sys.stdin]' \
      > "$ROOT/.gpu-check/manifest.csv"
    PYTHONPATH=$ROOT/src "$PY" -m wavesmith db create "$CARRIED" --sample-rate 16000 || exit 1
    PYTHONPATH=$ROOT/src "$PY" -m wavesmith db add "$CARRIED" --manifest "$ROOT/.gpu-check/manifest.csv" \
      --split-long 2 --min-duration 0.1 --no-progress || exit 1
    du -sh "$ROOT/.gpu-check"
  else
    echo "gpu-check: $REAL/drums not found: no carried database; the training steps will be skipped" >&2
  fi
  # What the GPU image (Python 3.12, torch, numpy, requests) lacks, as wheels (see the device README).
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_34_x86_64 --platform any -d .whl \
    soundfile==0.14.0 cffi==2.1.1 pycparser soxr==1.1.0 c2pa-python==0.38.1 cryptography==50.0.2 toml || exit 1
  ls .whl
  exit 0
fi

OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
WORK=$(mktemp -d)
LOG=$OUT/gpu-check.log
RESULTS=$WORK/results.jsonl
: > "$RESULTS"
START=$(date +%s)
BUDGET=450  # seconds after which the remaining steps are skipped

if [ "$MODE" = gpu ] && [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >> "$LOG" 2>&1 && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$ROOT/src:$ROOT/benchmarks${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 WAVESMITH_CONFIG_DIR=$WORK/config

# step NAME LIMIT_S COMMAND...: run it, keep its last stdout line if JSON, record the outcome.
step() {
  local name=$1 limit=$2 t0 rc
  shift 2
  t0=$(date +%s)
  if [ $((t0 - START)) -ge $BUDGET ]; then
    "$PY" -c 'import json, sys; print(json.dumps({"step": sys.argv[1], "skipped": "time budget spent"}))' \
      "$name" >> "$RESULTS"
    return
  fi
  echo "== $name: $*" >> "$LOG"
  timeout --kill-after=10 "$limit" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"
  rc=$?
  cat "$WORK/$name.out" "$WORK/$name.err" >> "$LOG"
  "$PY" - "$name" "$rc" "$(( $(date +%s) - t0 ))" "$WORK/$name.out" "$WORK/$name.err" "$*" >> "$RESULTS" <<'EOF'
import json, sys
name, rc, seconds, out, err, cmd = sys.argv[1:]
lines = [s for s in open(out, errors="replace").read().splitlines() if s.strip()]
try:
    result = json.loads(lines[-1])
except (IndexError, ValueError):
    result = None
rec = {"step": name, "rc": int(rc), "seconds": int(seconds), "command": cmd, "result": result}
if result is None or int(rc) != 0:
    rec["output_tail"] = (open(out, errors="replace").read()[-1500:], open(err, errors="replace").read()[-3000:])
print(json.dumps(rec))
EOF
}

skip() {
  "$PY" -c 'import json, sys; print(json.dumps({"step": sys.argv[1], "skipped": sys.argv[2]}))' "$1" "$2" >> "$RESULTS"
}

if [ "$MODE" = gpu ]; then
  DEV=cuda
  WAVENET_SPEED=(--seconds 1 --repeats 3)
  WAVEGAN_SPEED=()
  ENGINE=(--steps 30)
  INGEST=(--n 2000)
  DATASET=()
  TINY_WN=()
  TINY_WG=()
  TRAIN=(--time 40s --steps 1000000 --set batch_size=16 --set valid_every=200 --set preview_every=0)
  DDP=(--steps 20 --set model.model_dim=16)
  GEN=(-n 4 --batch-size 4 --seconds 1)
else
  DEV=cpu
  WAVENET_SPEED=(--tiny --seconds 0.02 --repeats 1 --reference-samples 2 --train-batch 1)
  WAVEGAN_SPEED=(--tiny --batch 2 --repeats 1 --train-batch 2 --train-steps 1)
  ENGINE=(--steps 2 --warmup 1 --set model.layers=2 --set model.stacks=1 --set model.residual_channels=4
          --set model.gate_channels=8 --set model.skip_channels=4 --set model.crop=512)
  INGEST=(--n 10)
  DATASET=(--clips 8 --crop 1600 --batch-size 4 --repeats 1)
  TINY_WN=(--set layers=2 --set stacks=1 --set residual_channels=4 --set gate_channels=8 --set skip_channels=4
           --set crop=512)
  TINY_WG=(--set window=4096 --set model_dim=4 --set n_critic=1)
  TRAIN=(--steps 2 --set batch_size=2 --set valid_every=0 --set preview_every=0)
  DDP=(--steps 2 --set model.model_dim=4 --set model.window=4096 --set model.n_critic=1)
  GEN=(-n 1 --seconds 0.1)
fi

step env 60 "$PY" -c '
import json, subprocess, torch
smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip() if torch.cuda.is_available() else ""
print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                  "gpus": torch.cuda.device_count(), "nvidia_smi": smi,
                  "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}))'
step wavenet_speed 120 "$PY" benchmarks/wavenet_speed.py --json --device $DEV "${WAVENET_SPEED[@]}"
step wavegan_speed 90 "$PY" benchmarks/wavegan_speed.py --json --device $DEV "${WAVEGAN_SPEED[@]}"

# The databases: the carried real recordings (--prepare), else for the dry run and the
# torchrun step the drum hits bundled with wavesmith.
DB=$WORK/bundled
"$PY" -m wavesmith db create "$DB" --sample-rate 16000 >> "$LOG" 2>&1
"$PY" -m wavesmith db add "$DB" "$ROOT/src/wavesmith/data/clips" --label-from parent --no-progress --workers 2 \
  >> "$LOG" 2>&1
REAL_DB=""
if [ -d "$CARRIED" ]; then REAL_DB=$CARRIED; elif [ "$MODE" = dry ]; then REAL_DB=$DB; fi

# Two processes over NCCL (gloo in the dry run). One GPU gives both ranks cuda:0, which
# NCCL refuses ("Duplicate GPU detected"); the record says which it was.
step torchrun_2proc 90 "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 -m wavesmith train "$DB" \
  --model wavegan --run-dir "$WORK/ddp" --device $DEV --no-progress --json --set workers=0 --set batch_size=2 \
  --set valid_every=0 --set preview_every=0 "${DDP[@]}"

for model in wavenet wavegan; do
  if [ -z "$REAL_DB" ]; then
    skip "train_${model}_bf16" "no carried database (.gpu-check/db): run scripts/gpu-check.sh --prepare where $REAL exists"
    continue
  fi
  if [ $model = wavenet ]; then tiny=("${TINY_WN[@]}"); else tiny=("${TINY_WG[@]}"); fi
  step "train_${model}_bf16" 90 "$PY" -m wavesmith train "$REAL_DB" --model $model --run "$WORK/$model" \
    --device $DEV --set precision=bf16 --set workers=2 --no-progress --json "${TRAIN[@]}" "${tiny[@]}"
  step "generate_${model}" 60 "$PY" -m wavesmith generate "$WORK/$model" --out "$WORK/$model-out" --device $DEV \
    --seed 1 --json "${GEN[@]}"
done

if [ "$MODE" = gpu ]; then
  step train_wavegan_compile 150 "$PY" -m wavesmith train "$DB" --model wavegan --run "$WORK/compiled" --device cuda \
    --compile --steps 20 --set precision=bf16 --set workers=0 --set valid_every=0 --set preview_every=0 --no-progress \
    --json
else
  skip train_wavegan_compile "not in --dry-run: compiling on a CPU takes minutes"
fi
step engine_overhead 90 "$PY" benchmarks/engine_overhead.py --json --device $DEV "${ENGINE[@]}"
step ingest_speed 60 "$PY" benchmarks/ingest_speed.py --json "${INGEST[@]}"
step dataset_speed 45 "$PY" benchmarks/dataset_speed.py --json "${DATASET[@]}"

"$PY" - "$RESULTS" "$OUT/gpu-check.json" "$MODE" "$(( $(date +%s) - START ))" <<'EOF'
import json, sys
results, out, mode, seconds = sys.argv[1:]
steps = [json.loads(s) for s in open(results)]
failed = [s["step"] for s in steps if s.get("rc", 0) != 0]
summary = {"mode": mode, "seconds": int(seconds), "failed": failed, "steps": steps}
json.dump(summary, open(out, "w"), indent=1)
print(json.dumps({"mode": mode, "seconds": int(seconds), "failed": failed,
                  "skipped": [s["step"] for s in steps if "skipped" in s]}))
sys.exit(1 if failed else 0)
EOF
rc=$?
rm -rf "$WORK"
exit $rc

