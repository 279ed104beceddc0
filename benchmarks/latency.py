"""Batch-1 latency of every shipped artefact: one 48x48 crop in, 7 probabilities out.

    python benchmarks/latency.py [--name mobilenetv2] [--threads 1] [--data ../shared/data/fer2013]

``--threads`` sets TensorFlow's per-op thread pool (the live app's ``--threads``, default 1): for
one crop of a small net, thread hand-offs cost more than the arithmetic. Prints median ms as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fer_keras.inference.predictor import limit_tf_threads
from fer_keras.reporting.model_card import batch1_latency_ms


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", default="mobilenetv2")
    p.add_argument("--models", default="saved_models", type=Path)
    p.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads (0 = TF's default pool)")
    p.add_argument("--data", default=None, help="take the crop from this dataset's test split (default: random)")
    p.add_argument("--repeats", type=int, default=500)
    args = p.parse_args()
    if args.threads:
        limit_tf_threads(args.threads, 1)
    if args.data:
        from fer_keras.runs import select_split

        crop = select_split(args.data, "test").images[:1].astype(np.float32)
    else:
        crop = np.random.default_rng(0).uniform(0, 255, (1, 48, 48, 1)).astype(np.float32)
    files = {
        "savedmodel": args.models / args.name,
        "keras": args.models / f"{args.name}.keras",
        "tflite": args.models / f"{args.name}.tflite",
        "onnx": args.models / f"{args.name}.onnx",
    }
    result = {"threads": args.threads or "default"}
    for fmt, path in files.items():
        if path.exists():
            result[fmt] = round(batch1_latency_ms(path, crop, args.repeats), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
