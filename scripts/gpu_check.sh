#!/usr/bin/env bash
# gpu_check.sh: everything a CPU machine cannot check, on one CUDA GPU, in at most ~8 minutes.
#
#   bash scripts/gpu_check.sh [OUTDIR]      (default: $OUT if set, else output/gpu_check)
#
# Run from the project root with the packages installed (a normal install, or the offline bundle
# of ../shared/offline-gpu: `source .offline-gpu/bin/env.sh && cd $PROJ` first). Four parts, each
# under its own time limit so one slow part cannot eat the others' time:
#   1. the CUDA tests (pytest -m cuda: models on the GPU in bf16, sampler guarantees, GRPO steps)
#   2. benchmarks/bench_generate.py on cuda: the own loop vs transformers generate() (ratio)
#   3. benchmarks/bench_grpo_step.py on cuda: our trainer and fast rollouts vs plain TRL (ratios)
#   4. a reduced GPU evidence pipeline (evidence-gpu.yaml: synthetic data, 1 seed, few steps)
# Writes OUTDIR/summary.md (the lines that matter from each part) and OUTDIR/*.log (everything).
set -uo pipefail
OUTDIR=${1:-${OUT:-output/gpu_check}}
PY=${PY:-python3}
mkdir -p "$OUTDIR"
SUMMARY=$OUTDIR/summary.md
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
START=$(date +%s)

say() { echo "$*" | tee -a "$SUMMARY"; }
# part NAME LIMIT_S CMD...: run CMD with a time limit, log it, note status and seconds
part() {
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$OUTDIR/$name.log" 2>&1
  local rc=$?
  local status="ok"; [ $rc -eq 124 ] && status="TIMED OUT after ${limit}s"; [ $rc -ne 0 ] && [ $rc -ne 124 ] && status="FAILED (exit $rc)"
  say ""; say "## $name: $status, $(( $(date +%s) - t0 )) s"
}

: > "$SUMMARY"
say "# gpu_check $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || cat .payload 2>/dev/null || echo unknown)"
say '```'
$PY - <<'PY' 2>&1 | tee -a "$SUMMARY"
import torch, transformers, trl
print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}")
ok = torch.cuda.is_available()
print("cuda:", ok, torch.cuda.get_device_name(0) if ok else "", "bf16:", ok and torch.cuda.is_bf16_supported())
try:
    import vllm; print("vllm", vllm.__version__)
except ImportError:
    print("vllm: not installed (grpo.use_vllm and sampling.backend=vllm are not checked)")
PY
say '```'
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
  say "no CUDA GPU visible: nothing to check"; exit 1; }

# 1. CUDA tests
if $PY -m pytest --version > /dev/null 2>&1; then
  part cuda_tests 100 $PY -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py
  { echo '```'; tail -n 5 "$OUTDIR/cuda_tests.log"; echo '```'; } | tee -a "$SUMMARY"
else
  say ""; say "## cuda_tests: SKIPPED (pytest is not installed here; add it to the wheel list)"
fi

# 2. sampler: own loop vs generate() on the GPU (decides sampling.backend=auto on a GPU)
part bench_generate 70 $PY benchmarks/bench_generate.py --device cuda --tweets 32 --n 8 \
  --max-new-tokens 48 --repeats 2
{ echo '```'; grep -E "replies/s|median seconds|identical|batched /|plain KV" "$OUTDIR/bench_generate.log"; echo '```'; } | tee -a "$SUMMARY"

# 3. GRPO step: ours and fast rollouts vs plain TRL (whether grpo.rollout_backend=fast pays on a GPU)
part bench_grpo_step 130 $PY benchmarks/bench_grpo_step.py --device cuda --rounds 3 --warmup 1 \
  --k 8 --prompts 8 --tokens 48 --threads 4
{ echo '```'; grep -E "^(variant|trl|grpo|hybrid|fast) |/trl =|peak RSS" "$OUTDIR/bench_grpo_step.log"; echo '```'; } | tee -a "$SUMMARY"

# 4. reduced evidence pipeline: configs/pipeline/evidence-gpu.yaml (the ladder: oracle -> learned
# -> hybrid) cut to one seed and fewer steps so that it fits the budget of this script.
part pipeline 190 $PY -m replyrl pipeline -c configs/pipeline/evidence-gpu.yaml --out "$OUTDIR/runs" \
  --set name=evidence-gpu-reduced --set 'seeds=[0]' \
  --set 'recipe_set={sft: [optim.max_steps=30, optim.batch_size=16], grpo: [optim.max_steps=12], hybrid: [optim.max_steps=12]}' \
  --set 'eval_set=[device=cuda, sampling.n=8, sampling.max_new_tokens=48, "ks=[1,4,8]", max_tweets=32, bootstrap=500]'
{ echo '```'; grep -E "Wall time|Ran:|seconds" "$OUTDIR/pipeline.log" | tail -n 4
  for f in "$OUTDIR"/runs/evidence-gpu-reduced/stages/*.json; do
    [ -f "$f" ] && echo "$(basename "$f" .json): $($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds'], 's')" "$f")"
  done; echo '```'; } | tee -a "$SUMMARY"

say ""; say "total: $(( $(date +%s) - START )) s; logs in $OUTDIR"
