"""Per model: parameters, FLOPs per image, train and inference images/s on this CPU, and the
fraction of the machine's float32 matmul peak that reaches (peak measured in the same run).

    python benchmarks/models.py [--models mobilenetv2 resnet18 vgg16] [--batch 64] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np
import tensorflow as tf

from fer_keras.models import available_models, build
from fer_keras.models.flops import macs_per_image
from fer_keras.training.config import TrainConfig
from fer_keras.training.loop import compile_model


def matmul_peak_gflops(n: int = 2048, repeats: int = 20) -> float:
    """Sustained float32 GFLOP/s of a large matmul: the machine's practical peak for TF."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    mm = tf.function(lambda: tf.matmul(a, b))
    mm().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        out = mm()
    out.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def images_per_second(step, batch: int, seconds: float) -> float:
    step()  # trace and warm up
    step()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        done += batch
    return done / (time.perf_counter() - start)


def bench(name: str, options: dict, batch: int, seconds: float, peak: float) -> dict:
    keras.utils.set_random_seed(0)
    model = build(name, **options)
    compile_model(model, TrainConfig(), steps_per_epoch=100)
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (batch, 48, 48, 1)).astype(np.float32))
    y = tf.one_hot(np.arange(batch) % 7, 7)
    train_ips = images_per_second(lambda: model.train_on_batch(x, y), batch, seconds)
    infer = tf.function(lambda v: model(v, training=False))
    infer_ips = images_per_second(lambda: infer(x).numpy(), batch, seconds)
    one = x[:1]
    single = tf.function(lambda v: model(v, training=False))
    single(one).numpy()
    start = time.perf_counter()
    for _ in range(200):
        single(one).numpy()
    latency_ms = (time.perf_counter() - start) / 200 * 1000
    macs = macs_per_image(model)
    # training costs about 3x the forward FLOPs (forward + two backward matmuls)
    return {
        "model": name + (f" {options}" if options else ""),
        "params": model.count_params(),
        "gflops_per_image": round(2 * macs / 1e9, 4),
        "train_img_s": round(train_ips, 1),
        "infer_img_s": round(infer_ips, 1),
        "batch1_latency_ms": round(latency_ms, 2),
        "train_peak_fraction": round(3 * 2 * macs * train_ips / 1e9 / peak, 3),
        "infer_peak_fraction": round(2 * macs * infer_ips / 1e9 / peak, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=available_models())
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=15.0)
    args = p.parse_args()
    peak = matmul_peak_gflops()
    print(
        json.dumps(
            {"matmul_peak_gflops": round(peak, 1), "threads": tf.config.threading.get_intra_op_parallelism_threads()}
        )
    )
    variants = {
        "mobilenetv2": [
            {},
            {"stem_stride": 1},
            {"input_size": 72},  # the shipped recipe's input
            {"input_size": 72, "fused_stages": 3},  # Fused-MBConv in the first three stages
        ],
        "resnet18": [{}],
        "vgg16": [{}],
    }
    rows = []
    for name in args.models:
        for options in variants.get(name, [{}]):
            rows.append(bench(name, options, args.batch, args.seconds, peak))
            print(json.dumps(rows[-1]), flush=True)
    header = [
        "model",
        "params",
        "GFLOPs/img",
        "train img/s",
        "infer img/s",
        "batch-1 ms",
        "train % peak",
        "infer % peak",
    ]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(
            f"| {r['model']} | {r['params']:,} | {r['gflops_per_image']} | {r['train_img_s']} | {r['infer_img_s']} | "
            f"{r['batch1_latency_ms']} | {100 * r['train_peak_fraction']:.1f} | {100 * r['infer_peak_fraction']:.1f} |"
        )


if __name__ == "__main__":
    main()
