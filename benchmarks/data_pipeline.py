"""Input pipeline cost: decode vs cache load, and augmented tf.data throughput next to a compact
model's train step (the pipeline must be >= 5x faster so it never starves training).

    python benchmarks/data_pipeline.py --data ../shared/data/fer2013 [--augment standard]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import keras
import tensorflow as tf

from fer_keras.data.augment import augment_config
from fer_keras.data.loading import LoadReport, load_faces, load_splits
from fer_keras.data.pipeline import train_dataset
from fer_keras.models import build
from fer_keras.training.config import TrainConfig
from fer_keras.training.loop import compile_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--augment", default="standard")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args()

    os.environ["FER_KERAS_CACHE"] = tempfile.mkdtemp()
    cold, warm = LoadReport(), LoadReport()
    load_faces(args.data, report=cold)
    load_faces(args.data, report=warm)
    print(
        json.dumps(
            {
                "first_load_s": {k: round(v, 2) for k, v in cold.seconds.items()},
                "cached_load_s": {k: round(v, 2) for k, v in warm.seconds.items()},
            }
        )
    )

    splits = load_splits(args.data)
    ds, _ = train_dataset(splits.train, args.batch, seed=0, augment=augment_config(args.augment), epochs=3)
    it = iter(ds)
    for _ in range(5):
        next(it)
    start = time.perf_counter()
    for _ in range(args.steps):
        next(it)
    pipeline_ips = args.steps * args.batch / (time.perf_counter() - start)

    keras.utils.set_random_seed(0)
    model = build("mobilenetv2")
    compile_model(model, TrainConfig(), steps_per_epoch=100)
    x, y = next(it)
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(20):
        model.train_on_batch(x, y)
    train_ips = 20 * args.batch / (time.perf_counter() - start)
    print(
        json.dumps(
            {
                "augment": args.augment,
                "pipeline_img_s": round(pipeline_ips),
                "mobilenetv2_train_img_s": round(train_ips),
                "ratio": round(pipeline_ips / train_ips, 1),
            }
        )
    )


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
