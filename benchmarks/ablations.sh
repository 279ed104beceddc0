#!/usr/bin/env bash
# The HKUST seed's ablations on the compact MobileNetV2, as reproducible commands: augmentation on
# vs off, and input resolution 48 vs 96 (upsampled in-graph). A stratified 8,000-image training
# subset and 15 epochs keep them within a CPU budget; the table is `python -m fer_keras.compare`.
#   bash benchmarks/ablations.sh [DATA] [OUT]
set -euo pipefail
DATA="${1:-${FER_KERAS_DATA:-data/fer2013}}"
OUT="${2:-runs/ablations}"
COMMON=(--model mobilenetv2 --data "$DATA" --limit 8000 --epochs 15 --batch-size 128 --seed 0 --quiet)
python -m fer_keras.train "${COMMON[@]}" --augment standard --out "$OUT/aug-standard-48"
python -m fer_keras.train "${COMMON[@]}" --augment none --out "$OUT/aug-none-48"
python -m fer_keras.train "${COMMON[@]}" --augment standard --input-size 96 --out "$OUT/aug-standard-96"
python -m fer_keras.compare "$OUT"/*
