#!/usr/bin/env bash
# Does a moving average of the weights (--ema) help the shipped recipe (72x72, Fused-MBConv in the
# first three stages, sqrt class weights, light augmentation)? With and without it, on a stratified
# 8,000-image training subset for 15 epochs so it fits a CPU budget. 0.99 averages over about 100
# steps, two of this subset's 56-step epochs. The table is `python -m fer_keras.compare`.
#   bash benchmarks/ema.sh [DATA] [OUT] [MOMENTUM]
set -euo pipefail
DATA="${1:-${FER_KERAS_DATA:-data/fer2013}}"
OUT="${2:-runs/ema}"
MOMENTUM="${3:-0.99}"
COMMON=(--model mobilenetv2 --data "$DATA" --limit 8000 --epochs 15 --batch-size 128 --seed 0
        --input-size 72 --fused-stages 3 --balance sqrt-weights --augment light --no-export --quiet)
python -m fer_keras.train "${COMMON[@]}" --out "$OUT/baseline"
python -m fer_keras.train "${COMMON[@]}" --ema "$MOMENTUM" --out "$OUT/ema-$MOMENTUM"
python -m fer_keras.compare "$OUT"/*
