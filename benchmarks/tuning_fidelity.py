"""Do short trials rank configurations as longer ones do? The evidence behind a search's budget.

Draws N configurations that span a search space (a Latin hypercube: each searched setting's range
cut into N strata, one configuration per stratum, choices dealt out evenly), trains each at every
budget (epochs) with the same code path as a search trial, and reports each configuration's best
validation macro-F1 per budget and the Spearman rank correlation between every pair of budgets.
Never reads the test split for any choice; every run resumes (rerun the same command).

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
        f"{results['machine']}.",
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
        "budgets": sorted(args.budgets),
        "searched": list(space["hyperparameters"]),
        "configs": [{"settings": c, "scores": {}} for c in configs],
    }
    out, report = Path(args.out), Path(args.results)
    report.parent.mkdir(parents=True, exist_ok=True)
    for budget in sorted(args.budgets):  # every configuration at the short budget first: partial results rank
        for i, config in enumerate(configs):
            print(f"config {i} at {budget} epochs: {config}", flush=True)
            results["configs"][i]["scores"][str(budget)] = run_budget(
                base, {**fixed, **config}, budget, out / f"c{i}-e{budget}"
            )
            results["machine"] = (
                f"{machine_description()}; matmul peak {matmul_peak_gflops():.0f} GFLOP/s measured at the last run's end"
            )
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
