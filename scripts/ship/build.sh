#!/usr/bin/env bash
# Rebuild a shipped model from scratch: the recipe the models in src/wavesmith/data/models
# were made with (see each NAME.json card for the steps, time and figures it got).
#   bash scripts/ship/build.sh drums|notes|violin REAL_AUDIO_DIR WORK_DIR
#   bash scripts/ship/build.sh speech SPEECH_DIR WORK_DIR
# REAL_AUDIO_DIR is laid out by shared/tools/get-real-audio (its soundfont/ and drums/);
# SPEECH_DIR by shared/tools/get-speech (metadata.csv with path,label,speaker,text,language).
# Training runs on one CPU core (taskset -c 0): 12,000 steps of a 96-channel network
# (mults 1,1,2; 2.2-2.7 steps/s on the CPU of 2026-12-07, 75-93 minutes; at 64 channels, fewer than
# the 80 mel bins, samples are speckled: the drums shipped before 2026-12-07 were 64 channels); for
# notes then twice 8,000 more steps from the previous stage's best weights with a fresh cosine from
# half the learning rate: classifier accuracy on the test split 0.56, 0.71, 0.73 after stages 1-3,
# fd_classifier 50.0, 42.0, 39.3 (the shipped notes' stages 2 and 3 started from the previous stage as
# shipped, in float16). For drums a second stage of 6,000 steps gained nothing measurable, so drums
# ships stage 1 (its card).
# Then: python -c "from wavesmith import shipped; shipped.export('WORK/run-NAME[-3]', 'NAME', {...})"
set -euo pipefail
cd "$(dirname "$0")/../.."
name=$1 real=$2 work=$3
W=.venv/bin/wavesmith
mkdir -p "$work"
case "$name" in
  drums)
    # MIT (FluidR3's eight GM drum kits) and CC0 (the Audiophob kit) only: weights shippable as MIT.
    .venv/bin/python scripts/ship/render_soundfont.py drums "$real/soundfont/FluidR3_GM.sf2" "$work/gm-drums"
    .venv/bin/python scripts/ship/hydrogen_manifest.py "$real/drums" "$work/kits.csv" --kits Audiophob
    cut -d, -f1,2 "$work/kits.csv" > "$work/kits-labels.csv"
    manifests=("$work/gm-drums/metadata.csv" "$work/kits-labels.csv")
    ;;
  notes)
    .venv/bin/python scripts/ship/render_soundfont.py instruments "$real/soundfont/FluidR3_GM.sf2" "$work/gm-notes"
    manifests=("$work/gm-notes/metadata.csv")
    ;;
  speech)
    # The base voice model, in the two stages it was made in: (1) every clip of get-speech up to
    # 12 s at the vocoder's 22.05 kHz (8/16 kHz recordings upsampled; the tts loss ignores bands
    # above their Nyquist), 3,687 steps of a cosine planned for 7,000 (the run was stopped there
    # when the game dialogue below was ready);
    # (2) the same plus Flight of the Amazon Queen's English dialogue (30 voices), 4,000 steps
    # starting from stage 1's weights (new speakers start from the "unknown" row).
    $W db create "$work/db-speech" --sample-rate 22050
    $W db add "$work/db-speech" --manifest "$real/metadata.csv" --max-duration 12 --workers 1
    OMP_NUM_THREADS=1 taskset -c 0 $W train "$work/db-speech" --model tts --run "$work/run-speech" \
      --steps 3687 --set decay_steps=7000 --set workers=1 --set warmup_steps=300 --set valid_every=500 \
      --set checkpoint_every=500 --set preview_every=1000 --set preview_seconds=4
    .venv/bin/python scripts/speech/get_game_speech.py "$work/games"
    $W db add "$work/db-speech" --manifest "$work/games/metadata.csv" --max-duration 12 --workers 1
    OMP_NUM_THREADS=1 taskset -c 0 $W train "$work/db-speech" --model tts --run "$work/run-speech2" \
      --init "$work/run-speech" --steps 4000 --set workers=1 --set warmup_steps=200 --set valid_every=500 \
      --set checkpoint_every=500 --set preview_every=1000 --set preview_seconds=4
    exit 0
    ;;
  violin)
    # A DDSP timbre for `wavesmith transfer violin`: 12 minutes of random legato violin melodies
    # (General MIDI program 40, G3-E6, each 6 s file at its own velocity and level) rendered dry
    # from FluidR3 (MIT) at 16 kHz; f0 and loudness by harvest, once per clip.
    WAVESMITH_REAL_AUDIO="$real" .venv/bin/python scripts/ship/render_melodies.py "$work/violin" --program 40 --low 55 --high 88 --minutes 12
    $W db create "$work/db-violin" --sample-rate 16000 --channels 1
    $W db add "$work/db-violin" "$work/violin" --label-from none --workers 1
    OMP_NUM_THREADS=1 taskset -c 0 $W train "$work/db-violin" --model ddsp --run "$work/run-violin" --steps 4000 \
      --set workers=0 --set log_every=50 --set valid_every=500 --set checkpoint_every=500 --set preview_every=1000
    exit 0
    ;;
  *) echo "usage: build.sh drums|notes|violin REAL_AUDIO_DIR WORK_DIR, or build.sh speech SPEECH_DIR WORK_DIR" >&2
     exit 2 ;;
esac
$W db create "$work/db-$name" --sample-rate 22050
for m in "${manifests[@]}"; do $W db add "$work/db-$name" --manifest "$m" --workers 1; done
OMP_NUM_THREADS=1 taskset -c 0 $W train "$work/db-$name" --model mel-diffusion --run "$work/run-$name" \
  --set seconds=1.5 --set channels=96 --set mults=1,1,2 --set workers=0 --set batch_size=16 --set steps=12000 \
  --set valid_every=1000 --set checkpoint_every=1000 --set preview_every=4000 --set log_every=50
[ "$name" = notes ] || exit 0
for stage in 2 3; do
  previous="$work/run-$name-$((stage - 1))"
  [ "$stage" != 2 ] || previous="$work/run-$name"
  OMP_NUM_THREADS=1 taskset -c 0 $W train "$work/db-$name" --init "$previous" --run "$work/run-$name-$stage" \
    --set lr=1e-4 --set warmup_steps=200 --set workers=0 --set batch_size=16 --set steps=8000 \
    --set valid_every=1000 --set checkpoint_every=1000 --set preview_every=0 --set log_every=50
done
