#!/usr/bin/env bash
# `make demo`: the whole pipeline on the synthetic sample, offline, on a CPU.
# Completed stages are skipped on a rerun (delete output/pipeline/cpu-demo to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)
.venv/bin/replyrl pipeline --config configs/pipeline/cpu-demo.yaml "$@"
echo "make demo: $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"
