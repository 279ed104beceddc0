#!/usr/bin/env bash
# Does distillation help the compact MobileNetV2? The shipped recipe (72x72, sqrt class weights,
# light augmentation) with and without the shipped model as teacher (crops TTA, alpha 0.5), on a
# stratified 8,000-image training subset for 15 epochs so it fits a CPU budget. The subset's
# validation images come from the same held-out split the teacher never trained on (--limit
# subsets each split after splitting). The table is `python -m fer_keras.compare`.
#   bash benchmarks/distillation.sh [DATA] [OUT] [TEACHER]
set -euo pipefail
DATA="${1:-${FER_KERAS_DATA:-data/fer2013}}"
OUT="${2:-runs/distillation}"
TEACHER="${3:-saved_models/mobilenetv2.keras}"
COMMON=(--model mobilenetv2 --data "$DATA" --limit 8000 --epochs 15 --batch-size 128 --seed 0
        --input-size 72 --balance sqrt-weights --augment light --no-export --quiet)
python -m fer_keras.train "${COMMON[@]}" --out "$OUT/baseline"
python -m fer_keras.train "${COMMON[@]}" --teacher "$TEACHER" --teacher-tta crops --distill-alpha 0.5 --out "$OUT/kd-crops-a0.5"
python -m fer_keras.compare "$OUT"/*
