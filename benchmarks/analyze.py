"""Throughput of ``python -m fer_keras.analyze``: frames/s and files/s with 1 and 2 worker
processes and with Ray on this machine, on labelled test videos, next to the float32 matmul peak.

    python benchmarks/analyze.py --data ../shared/data/fer2013 [--videos 6 --frames 300]

The videos are made once (``make_test_video``: one scene each, in turn) in a temporary folder;
each mode analyzes all of them into a fresh output folder with the shipped model and the default
detector. Ray starts a local instance with as many CPUs as the machine has; its start-up is timed
apart from the run, and what Ray adds per file is its run time minus the process pool's, per file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import matmul_peak_gflops  # noqa: E402

from fer_keras import make_test_video  # noqa: E402
from fer_keras.app.analyze import AnalyzeOptions, analyze_files  # noqa: E402
from fer_keras.app.synthetic import SCENES  # noqa: E402


def timed(inputs: list[Path], out: Path, **mode) -> dict:
    started = time.perf_counter()
    summary = analyze_files(inputs, out, AnalyzeOptions(), progress=False, **mode)
    seconds = time.perf_counter() - started
    counts = summary.counts()
    assert counts["analyzed"] == len(inputs) and not counts["failed"], counts
    return {
        "seconds": round(seconds, 1),
        "frames": counts["frames"],
        "frames_per_s": round(counts["frames"] / seconds, 1),
        "files_per_s": round(len(inputs) / seconds, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="FER2013, whose test crops the videos show")
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=300, help="frames per video (30 fps)")
    p.add_argument("--no-ray", action="store_true")
    args = p.parse_args()

    peak = matmul_peak_gflops()
    print(json.dumps({"matmul_peak_gflops": round(peak, 1), "cores": os.cpu_count()}), flush=True)
    with tempfile.TemporaryDirectory(prefix="fer_keras-analyze-bench-") as work:
        work = Path(work)
        scenes = list(SCENES)
        videos = []
        for i in range(args.videos):
            video = work / f"clip{i}-{scenes[i % len(scenes)]}.mp4"
            make_test_video(
                video, work / f"truth{i}.csv", args.data, scene=scenes[i % len(scenes)], frames=args.frames, seed=i
            )
            videos.append(video)
        rows = {}
        rows["1 worker"] = timed(videos, work / "out1")
        print(json.dumps({"mode": "1 worker", **rows["1 worker"]}), flush=True)
        rows["2 workers"] = timed(videos, work / "out2", workers=2)
        print(json.dumps({"mode": "2 workers", **rows["2 workers"]}), flush=True)
        if not args.no_ray:
            import ray

            from fer_keras.app.analyze import NICENESS

            os.environ[NICENESS] = "0"  # as analyze's own local instance runs its actors
            started = time.perf_counter()
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
            init_seconds = time.perf_counter() - started
            try:
                rows["Ray, 2 actors"] = timed(videos, work / "out-ray", workers=2, ray=True)
            finally:
                ray.shutdown()
            per_file = (rows["Ray, 2 actors"]["seconds"] - rows["2 workers"]["seconds"]) / len(videos)
            rows["Ray, 2 actors"]["ray_start_s"] = round(init_seconds, 1)
            rows["Ray, 2 actors"]["overhead_per_file_s"] = round(per_file, 2)
            print(json.dumps({"mode": "Ray, 2 actors", **rows["Ray, 2 actors"]}), flush=True)
    print(f"\n{args.videos} videos of {args.frames} frames; matmul peak {peak:.0f} GFLOP/s\n")
    print("| mode | seconds | frames/s | files/s | Ray start (s) | Ray's cost per file (s) |")
    print("|---|---|---|---|---|---|")
    for mode, r in rows.items():
        print(
            f"| {mode} | {r['seconds']} | {r['frames_per_s']} | {r['files_per_s']} | "
            f"{r.get('ray_start_s', '')} | {r.get('overhead_per_file_s', '')} |"
        )


if __name__ == "__main__":
    main()
