"""Do short trials rank configurations as longer ones do? The evidence behind a search's budget.

Draws N configurations that span a search space (a Latin hypercube: each searched setting's range
cut into N strata, one configuration per stratum, choices dealt out evenly), trains each at every
budget (epochs) with the same code path as a search trial, and reports each configuration's best
validation macro-F1 per budget and the Spearman rank correlation between every pair of budgets.
Never reads the test split for any choice; every run resumes (rerun the same command), and a
cell already in the results JSON is kept when the data's content hash matches (wherever the
dataset lives), so a fresh checkout continues the study where the committed table stops instead
of retraining it.

    python benchmarks/tuning_fidelity.py --data ../shared/data/fer2013 --space tuning/mobilenetv2.json \\
        --configs 6 --budgets 2 6 18 --out runs/fidelity --results tuning/results/fidelity
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from fer_keras.data.loading import LoadReport, load_faces
from fer_keras.runs import RunDir
from fer_keras.training.config import TrainConfig
from fer_keras.training.loop import train
from fer_keras.training.space import check_space, load_space, trial_config


def spanning_configs(space: dict, count: int, seed: int) -> list[dict]:
    """``count`` settings of the searched options, each option's range covered stratum by stratum."""
    rng = np.random.default_rng(seed)
    configs: list[dict] = [{} for _ in range(count)]
    for name, spec in space["hyperparameters"].items():
        order = rng.permutation(count)
        for i, slot in enumerate(order):
            if spec["type"] == "choice":
                values = spec["values"]
                configs[slot][name] = values[i % len(values)]
                continue
            u = (i + rng.uniform()) / count  # a point inside stratum i
            low, high = spec["min"], spec["max"]
            if spec.get("sampling") == "log":
                value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
            else:
                value = low + u * (high - low)
            if spec.get("step"):
                value = low + round((value - low) / spec["step"]) * spec["step"]
            if spec["type"] == "int":
                value = int(round(value))
            configs[slot][name] = round(value, 6) if isinstance(value, float) else value
    return configs


def run_budget(base: TrainConfig, settings: dict, epochs: int, out: Path) -> dict:
    """Train (or resume, or just read) one configuration at one budget."""
    run = RunDir(out)
    state = run.resume_state() if run.is_run else {}
    if not state.get("finished"):
        config = trial_config(base, settings).replace(epochs=epochs, out=str(out))
        train(config, resume=bool(state))
        state = run.resume_state()
    return {"val_macro_f1": state["best_val_f1"], "seconds": state["train_seconds"]}


def same_data(previous: dict, results: dict) -> bool:
    """Whether two studies trained on the same images: by content hash (the same dataset given by
    another path, as on a fresh checkout elsewhere, is the same data), or, for results written
    before studies recorded the hash, by the `--data` text."""
    if "data_hash" in previous:
        return previous["data_hash"] == results["data_hash"] and previous.get("limit") == results["limit"]
    return previous.get("data") == results["data"]


def kept_scores(previous: dict, results: dict) -> int:
    """Copy into `results` every score of `previous` (an earlier results JSON) that was measured on
    the same configuration, data and seed; returns how many cells were kept."""
    same_study = all(previous.get(k) == results[k] for k in ("space", "seed", "searched"))
    if not same_study or not same_data(previous, results):
        return 0
    if len(previous.get("configs", [])) != len(results["configs"]):
        return 0
    kept = 0
    for old, new in zip(previous["configs"], results["configs"]):
        if old["settings"] != new["settings"]:
            continue
        for budget, score in old["scores"].items():
            if int(budget) in results["budgets"]:
                # runs from before per-run records ran on the study's machine of that time
                new["scores"][budget] = {"machine": previous.get("machine", ""), **score}
                kept += 1
    return kept


def data_hash(data: str) -> str:
    """The dataset's content hash as training prints it (``hash 315d100cda05``): file paths relative
    to the dataset's root and their bytes, so it does not depend on where the dataset lives."""
    report = LoadReport()
    load_faces(data, report=report)
    return report.key[:12]


def run_order(results: dict, budget: int) -> list[int]:
    """Configurations at `budget`, cheapest first by their time at the next shorter budget, so an
    interrupted study holds as many finished cells as its time allowed."""
    shorter = [b for b in results["budgets"] if b < budget]
    configs = results["configs"]
    if not shorter:
        return list(range(len(configs)))
    below = str(shorter[-1])
    return sorted(range(len(configs)), key=lambda i: configs[i]["scores"].get(below, {}).get("seconds", math.inf))


def correlations(scores: dict[int, list[float]]) -> list[dict]:
    rows = []
    for low, high in itertools.combinations(sorted(scores), 2):
        rho, p = spearmanr(scores[low], scores[high])
        rows.append({"short": low, "long": high, "spearman": round(float(rho), 3), "p": round(float(p), 4)})
    return rows


def write_report(results: dict, path: Path) -> None:
    budgets = results["budgets"]
    lines = [
        f"# Rank fidelity of short trials ({results['date']})",
        "",
        f"`{results['command']}`",
        "",
        f"{len(results['configs'])} configurations spanning `{results['space']}` (Latin hypercube, seed "
        f"{results['seed']}), each trained at {', '.join(map(str, budgets))} epochs on {results['data']}; "
        "best validation macro-F1 of each run. CPU: "
        f"{'; '.join(_machines(results))}.",
        "",
        "| config | " + " | ".join(results["searched"]) + " | " + " | ".join(f"{b} ep" for b in budgets) + " |",
        "|" + "---|" * (1 + len(results["searched"]) + len(budgets)),
    ]
    for i, config in enumerate(results["configs"]):
        cells = [_cell(config["settings"][n]) for n in results["searched"]]
        scores = [_cell(config["scores"].get(str(b), {}).get("val_macro_f1")) for b in budgets]
        lines.append(f"| {i} | " + " | ".join(cells + scores) + " |")
    lines += ["", "| short budget | long budget | Spearman rho | p |", "|---|---|---|---|"]
    for row in results["correlations"]:
        lines.append(f"| {row['short']} epochs | {row['long']} epochs | {row['spearman']:+.3f} | {row['p']:.4f} |")
    minutes = {
        b: sum(c["scores"][str(b)]["seconds"] for c in results["configs"] if str(b) in c["scores"]) / 60
        for b in budgets
    }
    lines += [
        "",
        "Training minutes per budget (all configurations): "
        + ", ".join(f"{b} epochs {m:.0f}" for b, m in minutes.items()),
    ]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


def _machines(results: dict) -> list[str]:
    """The CPUs the runs ran on."""
    runs = [score for config in results["configs"] for score in config["scores"].values()]
    return sorted({score.get("machine", "") for score in runs} - {""})


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="tuning/mobilenetv2.json")
    p.add_argument("--data", required=True)
    p.add_argument("--configs", type=int, default=6)
    p.add_argument("--budgets", type=int, nargs="+", default=[2, 6, 18])
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/fidelity")
    p.add_argument("--results", default="tuning/results/fidelity")
    args = p.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from models import matmul_peak_gflops

    from fer_keras.reporting.model_card import machine_description

    space = load_space(args.space)
    base = TrainConfig(
        model=space.get("model", "mobilenetv2"),
        data=args.data,
        limit=args.limit,
        seed=args.seed,
        export=False,
        verbose=2,
    )
    check_space(space, base)
    fixed = space.get("fixed", {})
    configs = spanning_configs(space, args.configs, args.seed)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/tuning_fidelity.py " + " ".join(sys.argv[1:]),
        "space": args.space,
        "seed": args.seed,
        "data": f"{args.data}"
        + (f" (--limit {args.limit})" if args.limit else " (all of train, 10 % held out for validation)"),
        "data_hash": data_hash(args.data),
        "limit": args.limit,
        "budgets": sorted(args.budgets),
        "searched": list(space["hyperparameters"]),
        "configs": [{"settings": c, "scores": {}} for c in configs],
    }
    out, report = Path(args.out), Path(args.results)
    report.parent.mkdir(parents=True, exist_ok=True)
    if report.with_suffix(".json").exists():
        previous = json.loads(report.with_suffix(".json").read_text())
        kept = kept_scores(previous, results)
        print(f"kept {kept} finished runs from {report.with_suffix('.json')}", flush=True)
        results["date"], results["machine"] = previous.get("date", results["date"]), previous.get("machine", "")
        if kept:
            # the record names the command and data as the study first ran them, wherever they are now
            results["command"], results["data"] = previous["command"], previous["data"]
            if "data_hash" not in previous:
                results["correlations"] = previous.get("correlations", [])
                report.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    for budget in sorted(args.budgets):  # every configuration at the short budget first: partial results rank
        for i in run_order(results, budget):
            if str(budget) in results["configs"][i]["scores"]:
                continue
            config = configs[i]
            print(f"config {i} at {budget} epochs: {config}", flush=True)
            score = run_budget(base, {**fixed, **config}, budget, out / f"c{i}-e{budget}")
            # studies span sessions on different CPUs: each run records the machine it ran on
            score["machine"] = f"{machine_description()}; matmul peak {matmul_peak_gflops():.0f} GFLOP/s at its end"
            results["configs"][i]["scores"][str(budget)] = score
            results["machine"] = score["machine"]
            results["date"] = time.strftime("%Y-%m-%d")
            scores = {
                b: [c["scores"][str(b)]["val_macro_f1"] for c in results["configs"]]
                for b in results["budgets"]
                if all(str(b) in c["scores"] for c in results["configs"])
            }
            results["correlations"] = correlations(scores)
            report.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
            write_report(results, report)
    print(report.with_suffix(".md").read_text())


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; the same command continues", file=sys.stderr)
        raise SystemExit(130) from None
