#!/usr/bin/env bash
# Do the FER+ crowd votes make a better FER2013 model when they act as a teacher? Fine-tunes the
# shipped FER2013 model for 8 epochs (lr 2e-4, the shipped recipe otherwise) three ways, on the
# same validation split the shipped model held out (seed 0): on its FER2013 labels alone (the
# control: fine-tuning itself may move the scores), with alpha 0.2 of the vote distribution mixed
# into every target, and with alpha 0.5 only where the votes' majority is the FER2013 label. Each
# run is then compared with the control by a paired bootstrap on validation, and scored on the
# FER2013 and FER+ test labels.
#   bash benchmarks/ferplus_teacher.sh [DATA] [VOTES] [OUT]
set -euo pipefail
DATA="${1:-${FER_KERAS_DATA:-data/fer2013}}"
VOTES="${2:-$(dirname "$DATA")/ferplus/fer2013_votes.csv}"
OUT="${3:-runs/ferplus-teacher}"
COMMON=(--model mobilenetv2 --data "$DATA" --weights saved_models/mobilenetv2.keras --input-size 72
        --fused-stages 3 --augment light --balance sqrt-weights --batch-size 128 --lr 2e-4
        --warmup-epochs 0 --epochs 8 --seed 0 --no-export)
run() { [ -f "$OUT/$1/state.json" ] && grep -q '"finished": true' "$OUT/$1/state.json" && return 0
        local resume=(); [ -f "$OUT/$1/last.keras" ] && resume=(--resume)
        python -m fer_keras.train "${COMMON[@]}" "${@:2}" --out "$OUT/$1" "${resume[@]}"; }
run control
run alpha0.2 --ferplus "$VOTES" --ferplus-alpha 0.2
run agree-alpha0.5 --ferplus "$VOTES" --ferplus-alpha 0.5 --ferplus-agree
echo "== control against the shipped model, validation"
python -m fer_keras.significance saved_models/mobilenetv2.keras "$OUT/control/best.keras" --data "$DATA" --split val
for name in alpha0.2 agree-alpha0.5; do
  echo "== $name against the control, validation"
  python -m fer_keras.significance "$OUT/control/best.keras" "$OUT/$name/best.keras" --data "$DATA" --split val
done
for name in control alpha0.2 agree-alpha0.5; do
  echo "== $name: FER2013 test, then FER+ test (7 classes, contempt left out)"
  python -m fer_keras.evaluate --model "$OUT/$name/best.keras" --data "$DATA/test" --no-explain --out "$OUT/$name/eval" | tail -1
  python -m fer_keras.evaluate --model "$OUT/$name/best.keras" --data "$DATA/test" --ferplus "$VOTES" --no-explain --out "$OUT/$name/eval-ferplus" | tail -1
done
