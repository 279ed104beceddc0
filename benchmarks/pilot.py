"""Equal-budget pilot: which network promises the most accuracy for a given amount of CPU time.

Each candidate is a set of training flags. The pilot measures each one's training speed (images/s
at the run's batch size, next to the float32 matmul peak measured in the same run), turns the
budget into that many epochs on the full training split (so a cheaper network trains longer),
trains it with a cosine schedule that ends inside the budget, and reports its best validation
macro-F1. The test split is never scored. Runs are resumable: run the same command again after
an interruption and finished candidates are read back, an unfinished one resumes.

    python benchmarks/pilot.py --data ../shared/data/fer2013 --minutes 25 --out runs/pilot \\
        --candidate "full=--model resnet18 --stem small" \\
        --candidate "half=--model resnet18 --stem small --width 0.5" \\
        --recipe "--optimizer sgd --lr 0.05 --batch-size 128 --augment standard"
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from fer_keras.runs import RunDir
from fer_keras.train import build_parser
from fer_keras.training.config import config_from_args


def candidate_config(flags: str, recipe: str, data: str, out: Path, epochs: int | None = None):
    """A TrainConfig from a candidate's flags over the shared recipe."""
    argv = shlex.split(recipe) + shlex.split(flags) + ["--data", data, "--out", str(out), "--no-export"]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    return config_from_args(build_parser().parse_args(argv))


def train_images_per_second(config, seconds: float) -> tuple[float, int]:
    """Training images/s of the candidate's model at its batch size, on random crops; and its parameters."""
    import keras
    import numpy as np
    import tensorflow as tf
    from models import images_per_second

    from fer_keras.training.loop import build_model, compile_model

    keras.utils.set_random_seed(0)
    model = build_model(config)
    compile_model(model, config, steps_per_epoch=100)
    batch = config.batch_size
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (batch, 48, 48, 1)).astype(np.float32))
    y = tf.one_hot(np.arange(batch) % 7, 7)
    return images_per_second(lambda: model.train_on_batch(x, y), batch, seconds), model.count_params()


def measure_candidate(name: str, flags: str, args, n_train: int, peak: float) -> dict:
    """The candidate's speed and its epochs within the budget (measured once, then read back)."""
    out = Path(args.out) / name
    measured = out / "pilot.json"
    if measured.exists():
        return json.loads(measured.read_text())
    ips, params = train_images_per_second(candidate_config(flags, args.recipe, args.data, out), args.speed_seconds)
    row = {
        "candidate": name,
        "flags": flags,
        "params": params,
        "train_img_s": round(ips, 1),
        "matmul_peak_gflops": round(peak, 1),
        "epochs": max(1, round(args.minutes * 60 * ips / n_train)),
        "budget_minutes": args.minutes,
        "epoch_minutes": round(n_train / ips / 60, 2),
    }
    out.mkdir(parents=True, exist_ok=True)
    measured.write_text(json.dumps(row, indent=2))
    return row


def run_candidate(row: dict, args) -> dict:
    from fer_keras.training.loop import train

    name, flags = row["candidate"], row["flags"]
    out = Path(args.out) / name
    measured = out / "pilot.json"
    config = candidate_config(flags, args.recipe, args.data, out, row["epochs"])
    config.verbose = 2
    resume = RunDir(out).is_run
    if resume:
        state = RunDir(out).resume_state()
        if state.get("finished"):
            return {**row, **_scores(out)}
    started = time.perf_counter()
    train(config, resume=resume)
    row["wall_minutes_this_call"] = round((time.perf_counter() - started) / 60, 1)
    measured.write_text(json.dumps(row, indent=2))
    return {**row, **_scores(out)}


def _scores(run_dir: Path) -> dict:
    """The best epoch's validation figures (history.csv); the test split is left alone."""
    import pandas as pd

    history = pd.read_csv(run_dir / "history.csv")
    best = history.loc[history["val_f1"].idxmax()]
    return {
        "best_epoch": int(best["epoch"]) + 1,
        "val_f1": round(float(best["val_f1"]), 4),
        "val_accuracy": round(float(best["val_accuracy"]), 4),
        "train_accuracy": round(float(best["accuracy"]), 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", default="runs/pilot")
    p.add_argument("--minutes", type=float, default=25.0, help="training budget per candidate, at its measured speed")
    p.add_argument("--candidate", action="append", required=True, metavar="NAME=FLAGS")
    p.add_argument("--recipe", default="", help="training flags every candidate shares")
    p.add_argument("--speed-seconds", type=float, default=20.0)
    args = p.parse_args()

    from models import matmul_peak_gflops

    from fer_keras import runs

    splits = runs.load_config_splits(candidate_config("", args.recipe, args.data, Path(args.out) / "_"))
    n_train = len(splits.train)
    peak = matmul_peak_gflops()
    print(json.dumps({"matmul_peak_gflops": round(peak, 1), "train_images": n_train}), flush=True)
    # every speed first, back to back, so that they are measured under the same conditions
    measured = []
    for spec in args.candidate:
        name, _, flags = spec.partition("=")
        measured.append(measure_candidate(name.strip(), flags, args, n_train, peak))
        print(json.dumps(measured[-1]), flush=True)
    rows = []
    for row in measured:
        rows.append(run_candidate(row, args))
        print(json.dumps(rows[-1]), flush=True)
    header = ["candidate", "params", "train img/s", "peak GFLOP/s", "epochs", "min/epoch", "val macro-F1", "val acc"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(
            f"| {r['candidate']} | {r['params']:,} | {r['train_img_s']} | {r['matmul_peak_gflops']} | {r['epochs']} | "
            f"{r['epoch_minutes']} | {r['val_f1']:.4f} | {r['val_accuracy']:.4f} |"
        )


if __name__ == "__main__":
    main()
