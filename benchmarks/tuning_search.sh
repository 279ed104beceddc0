#!/usr/bin/env bash
# The committed MobileNetV2 search (tuning/results/): first the rank-fidelity study that justifies
# its budgets (6 configurations spanning tuning/mobilenetv2.json at 2, 6 and 27 epochs), then
# KerasTuner's Hyperband over the same space on all of FER2013 (38 trials of 4, 12 and 36 epochs), the
# best configuration retrained for the shipped recipe's 70 epochs and compared with the shipped
# model on validation. Every step resumes: run the same command again after an interruption. The
# study's finished cells and the search's state (after every trial) live under tuning/results/, so
# a fresh checkout that has them continues too; only the runs in progress start again.
#   bash benchmarks/tuning_search.sh [DATA] [OUT]
set -euo pipefail
DATA="${1:-${FER_KERAS_DATA:-data/fer2013}}"
OUT="${2:-runs/tune-mnv2-e36}"
RESULTS=tuning/results/mobilenetv2-hyperband-e36
python benchmarks/tuning_fidelity.py --data "$DATA" --space tuning/mobilenetv2.json --configs 6 \
    --budgets 2 6 27 --out runs/fidelity --results tuning/results/fidelity
python -m fer_keras.tune --data "$DATA" --space tuning/mobilenetv2.json --out "$OUT" \
    --epochs 36 --min-epochs 4 --factor 3 --mirror "$RESULTS/state" --train-best --best-epochs 70
mkdir -p "$RESULTS"
cp "$OUT"/{trials.csv,trials.md,best_hyperparameters.json,hyperparameters.png,search.json} "$RESULTS"/
rm -rf "$RESULTS/hparams" && cp -r "$OUT/hparams" "$RESULTS/hparams"
{
    echo "# A = saved_models/mobilenetv2.keras (shipped), B = the best trial retrained for 70 epochs" \
        "($OUT/best_run/best.keras), validation split"
    python -m fer_keras.significance saved_models/mobilenetv2.keras "$OUT/best_run/best.keras" --data "$DATA" \
        --split val
} | tee "$RESULTS/significance_val.txt"
