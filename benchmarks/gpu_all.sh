#!/usr/bin/env bash
# Every GPU check of issue 16 in one run, for a CUDA machine (each stage time-limited, each log kept):
#   bash benchmarks/gpu_all.sh [OUTDIR]       # default OUTDIR: $OUT, else gpu-results
# tests/gpu (no doctests), then benchmarks/gpu.py: (b) heads at K = 1e6, 1e7, 2e7 (2e7: beyond
# dense ArcFace on a 141 GB H200), (a) the trainer (eager and compiled) vs the bare step.
set -u
out=${1:-${OUT:-gpu-results}}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
{ nvidia-smi -L; $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } 2>&1 | tee "$out/env.txt"
timeout "${TESTS_S:-150}" $py -m pytest -p no:cacheprovider -o addopts= -q -rfE --durations=8 tests/gpu \
  2>&1 | tee "$out/tests.log"
timeout "${HEADS_S:-110}" $py benchmarks/gpu.py --only heads --k 1e6 1e7 2e7 2>&1 | tee "$out/heads.md"
timeout "${TRAINER_S:-180}" $py benchmarks/gpu.py --only trainer --compile 2>&1 | tee "$out/trainer.md"
