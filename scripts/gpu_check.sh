#!/bin/bash
# The GPU checks, in one invocation on a CUDA machine (needs torch, transformers, pyarrow, tokenizers, scipy,
# pytest, pytest-timeout; no Ray): the GPU-marked tests, the demo end to end on the GPU, the trainer's
# throughput on the paper's model and batch (ours vs a plain PyTorch loop), and Aioli's overhead at the
# paper's model, context and round length.  Each step is time-boxed; logs go to $OUT (default /tmp/gpu-check).
#   bash scripts/gpu_check.sh                 # every step; shards are built under $WORK or reused from there
#   ONLY='demo|micro' SEEDS=1 bash scripts/gpu_check.sh   # the steps whose names match, overhead runs on seed 1
# Building shards needs Ray: on a machine without it, build them here first (see benchmarks/bench_aioli_overhead.py
# and raymix.demo.demo_shards) into $WORK and carry them.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-/tmp/gpu-check}; WORK=${WORK:-/tmp/gpu-check-work}; mkdir -p "$OUT" "$WORK"
PY=${PY:-python3}
step() { local name=$1 limit=$2; shift 2; [[ -z ${ONLY:-} || $name =~ $ONLY ]] || return 0
  echo "=== $(date +%T) $name"; local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  tail -n "${TAIL:-25}" "$OUT/$name.log"; echo "=== $name rc=$rc in $((SECONDS - t0)) s"; }
$PY - <<'PY' | tee "$OUT/env.log"
import torch, transformers
from raymix.model.gpt import flash_attention_available, resolve_attention
print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)
print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
print("flash_attn installed:", flash_attention_available(), "-> attention on cuda:", resolve_attention("auto", "cuda"))
PY
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,temperature.gpu --format=csv | tee -a "$OUT/env.log"
step pytest-gpu 90 $PY -m pytest -p no:cacheprovider -q -m gpu tests/model
step demo-quick 130 $PY -m raymix.cli demo --quick --executor local --out "$WORK/demo"
step trainer-160m 100 $PY benchmarks/bench_trainer.py --preset pythia-160m --vocab 50304 --batch-size 8 --device cuda \
    --steps 20 --repeats 4 --proxy "${PROXY:-10}"
step aioli-micro-160m 70 $PY benchmarks/bench_aioli_overhead.py --micro 15 --groups 2,3 --eval-examples "${MICRO_EVAL:-8,32}" \
    --model pythia-160m --seq-len 2049 --device cuda --threads 0 --work "$WORK"
step aioli-overhead-160m 220 $PY benchmarks/bench_aioli_overhead.py --schedule paper --rounds 2 --groups 2,3 \
    --eval-examples 8 --model pythia-160m --seq-len 2049 --device cuda --threads 0 --work "$WORK" --seeds "${SEEDS:-0}"
echo "=== $(date +%T) done"
