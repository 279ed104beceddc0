"""Does a shipped model's recipe reproduce? Re-train it from its card, then compare the two.

    python benchmarks/reproduce.py [--name mobilenetv2] [--data ../shared/data/fer2013] [--out runs/reproduce-NAME]

Runs the ``train_command`` recorded in ``saved_models/NAME.json`` (on ``--data``) into ``--out``:
a fresh run, ``--resume`` of an interrupted one, or nothing if ``--out`` already holds the finished
run. Then prints the training minutes next to the card's and the paired bootstrap of
``fer_keras.significance`` (A = the shipped ``.keras``, B = the reproduction) on the validation
split both were selected on and on the test split: "within noise" means each interval holds 0.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from fer_keras.cli import cli_main
from fer_keras.data.loading import default_data_path
from fer_keras.errors import FerKerasError
from fer_keras.reporting.model_card import train_argv
from fer_keras.reporting.significance import compare_models, format_result


def train_step(card: dict, data: str, out: Path) -> list[str] | None:
    """The command that brings ``out`` to a finished run of the card's recipe (None: it is one)."""
    state = out / "state.json"
    if state.exists() and json.loads(state.read_text()).get("finished"):
        return None
    if (out / "config.json").exists():
        return [sys.executable, "-m", "fer_keras.train", "--resume", "--out", str(out)]
    return [sys.executable, "-m", "fer_keras.train", *train_argv(card["train_command"], data, out)]


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", default="mobilenetv2", help="shipped model (its card: saved_models/NAME.json)")
    p.add_argument("--models", default="saved_models", type=Path)
    p.add_argument("--data", default=None, help="dataset root (default: $FER_KERAS_DATA or data/fer2013)")
    p.add_argument("--out", default=None, type=Path, help="run directory (default: runs/reproduce-NAME)")
    args = p.parse_args(argv)
    card_path = args.models / f"{args.name}.json"
    if not card_path.exists():
        raise FerKerasError(f"no model card {card_path}")
    card = json.loads(card_path.read_text())
    data = str(args.data or default_data_path())
    out = args.out or Path("runs") / f"reproduce-{args.name}"
    step = train_step(card, data, out)
    if step is not None:
        print("$", shlex.join(step), flush=True)
        if subprocess.run(step).returncode:
            raise FerKerasError(f"training stopped; the same command resumes {out}")
    seconds = json.loads((out / "metrics.json").read_text()).get("train_seconds")
    here = f"{seconds / 60:.1f} min" if seconds is not None else "not recorded"
    print(f"training: {here} here, {card.get('train_minutes_2core_cpu', '?')} min in the card")
    for split in ("val", "test"):
        result = compare_models(args.models / f"{args.name}.keras", out, data, split)
        print(f"{split} (A = shipped, B = reproduction)\n{format_result(result)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
