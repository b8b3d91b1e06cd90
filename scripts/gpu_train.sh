#!/usr/bin/env bash
# Train study runs on a GPU box that has torch (no GNU Radio, no install), stop at a time
# limit, and pack the runs for the trip back (scripts/pack_runs.py).
#
#   scripts/gpu_train.sh SECONDS OUTDIR COMMAND...
#   scripts/gpu_train.sh 540 "$OUT" apps/distillation_study --device cuda --jobs 8 --stage train --only 'cnn3-*'
#
# Every study app resumes what is unfinished, so the same line continues after a limit. Runs
# on one GPU time-slice it unless CUDA MPS is on (measured on an H100 with 8 runs: each ran at
# about 1/5 of its solo speed), so MPS is started when the driver ships its control daemon.
set -u
limit=$1 out=$2
shift 2
shim=$(mktemp -d)
mkdir -p "$shim/gnuradio" "$out"
ln -s "$PWD/python/modrec" "$shim/gnuradio/modrec"
export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d 2>/dev/null; then
  echo "gpu_train: CUDA MPS daemon started"
fi
# the shared dataset, built once before parallel runs could race to build it
python3 -m gnuradio.modrec.training data --out "${MODREC_CACHE:-$HOME/.cache/gr-modrec}/datasets/rml2016-synth" \
  --seed 2016 --workers "$(nproc)" --no-progress
timeout --signal=INT "$limit" python3 "$@" 2>&1 | tee "$out/train.log"
pkill -INT -f "modrec.training train" && sleep 10
python3 scripts/pack_runs.py --runs runs --out "$out" 2>&1 | tee -a "$out/train.log"
