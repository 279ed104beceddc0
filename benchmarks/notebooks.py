"""Re-execute the notebooks in full mode on the real data and commit-ready: outputs kept, PNGs
shrunk, each notebook's runtime (quick and full mode, on this machine) written into it.

    FER_KERAS_DATA=../shared/data/fer2013 python benchmarks/notebooks.py            # all of them
    FER_KERAS_DATA=../shared/data/fer2013 python benchmarks/notebooks.py 06_seeds   # one

Each notebook runs twice in a fresh kernel from ``notebooks/``: once in quick mode
(``FER_KERAS_QUICK=1``, what CI runs; outputs discarded) to time it, then in full mode
(``FER_KERAS_QUICK=0``), whose outputs are saved. The cell tagged ``runtime`` gets both times,
the date, the CPU and its float32 matmul peak measured in the same run. A notebook that fails
is left as it was and the script exits non-zero.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import io
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from fer_keras.logs import NATIVE_LOG_LINE

# TensorFlow's native start-up lines, SavedModel export's "Assets written" line and Keras'
# retracing notice (a short run predicts on a few differently sized batches)
NOISE = re.compile(
    NATIVE_LOG_LINE.pattern
    + rb"|^INFO:tensorflow:Assets written to: |^WARNING:tensorflow:.*triggered tf.function retracing"
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MAX_PNG_WIDTH = 900  # pixels: readable on GitHub
MAX_PNG_BYTES = 120_000  # past this a photo-like figure is stored as a JPEG
TIMEOUT = 3600  # seconds per cell


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def matmul_peak() -> float:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from models import matmul_peak_gflops

    return matmul_peak_gflops()


def execute(path: Path, quick: bool) -> tuple[nbformat.NotebookNode, float]:
    nb = nbformat.read(path, as_version=4)
    os.environ["FER_KERAS_QUICK"] = "1" if quick else "0"
    client = NotebookClient(
        nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.record_timing = False  # no per-cell timestamps: they would change every re-run
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def shrink_image(data: str) -> tuple[str, str]:
    """A base64 PNG as (mime type, base64), no wider than MAX_PNG_WIDTH: 8-bit gray when it is
    gray (face grids), else a 256-colour palette (plots); a photo-like figure (faces, heat maps)
    still over MAX_PNG_BYTES becomes a JPEG. The original is kept when nothing is smaller."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    if image.width > MAX_PNG_WIDTH:
        height = round(image.height * MAX_PNG_WIDTH / image.width)
        image = image.resize((MAX_PNG_WIDTH, height), Image.LANCZOS)
    r, g, b = image.split()
    gray = r.tobytes() == g.tobytes() == b.tobytes()
    out = io.BytesIO()
    (image.convert("L") if gray else image.quantize(colors=256, method=Image.MEDIANCUT)).save(
        out, format="PNG", optimize=True
    )
    mime, encoded = "image/png", out.getvalue()
    if len(encoded) > MAX_PNG_BYTES:
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85, optimize=True)
        if len(out.getvalue()) < len(encoded):
            mime, encoded = "image/jpeg", out.getvalue()
    smaller = base64.b64encode(encoded).decode()
    return (mime, smaller) if len(smaller) < len(data) else ("image/png", data)


def clean_outputs(nb: nbformat.NotebookNode) -> None:
    """Shrink every figure; drop TensorFlow's native start-up lines (written to the kernel's
    stderr before its logging reads TF_CPP_MIN_LOG_LEVEL) and the stream outputs they leave empty."""
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                mime, encoded = shrink_image(data.pop("image/png"))
                data[mime] = encoded
            if output.get("output_type") == "stream":
                lines = output["text"].splitlines(keepends=True)
                output["text"] = "".join(x for x in lines if not NOISE.match(x.encode()))
                if not output["text"].strip():
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept


def stamp_runtime(nb: nbformat.NotebookNode, quick_s: float, full_s: float, machine: str) -> None:
    cells = [c for c in nb.cells if "runtime" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise SystemExit("each notebook needs exactly one markdown cell tagged 'runtime'")
    cells[0].source = (
        f"**Runtime** on {machine}: quick mode (`FER_KERAS_QUICK=1`, what CI runs) {quick_s / 60:.1f} min, "
        f"full mode (the outputs shown here) {full_s / 60:.1f} min. Executed {datetime.date.today()} "
        "by `python benchmarks/notebooks.py`."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run, e.g. 06_seeds (default: all)")
    args = parser.parse_args(argv)
    if not os.environ.get("FER_KERAS_DATA"):
        parser.error("set FER_KERAS_DATA to the FER2013 folder: full mode runs on the real data")
    os.environ["FER_KERAS_DATA"] = str(Path(os.environ["FER_KERAS_DATA"]).resolve())
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures into the outputs
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names or p.name in args.names]
        if len(paths) != len(args.names):
            parser.error(f"unknown notebook among {args.names}; have {[p.stem for p in NOTEBOOKS.glob('*.ipynb')]}")
    failed = 0
    for path in paths:
        try:
            _, quick_s = execute(path, quick=True)
            nb, full_s = execute(path, quick=False)
        except CellExecutionError as err:
            print(f"{path.name}: FAILED\n{str(err)[-3000:]}", file=sys.stderr)
            failed += 1
            continue
        machine = f"a {os.cpu_count()}-core {cpu_name()} (float32 matmul peak {matmul_peak():.0f} GFLOP/s)"
        clean_outputs(nb)
        stamp_runtime(nb, quick_s, full_s, machine)
        nbformat.write(nb, path)
        size = path.stat().st_size / 1024
        print(f"{path.name}: quick {quick_s:.0f} s, full {full_s:.0f} s, {size:.0f} kB", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
