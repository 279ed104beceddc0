"""Where the web service's CPU goes: CPU time per request by thread under load, and how face
detection scales from one core to all of them.

    python benchmarks/serve_profile.py [--seconds 10] [--clients 16] [--endpoint /v1/analyze]

Starts ``python -m fer_keras.serve`` (micro-batching on) like ``benchmarks/serve.py``, loads it from
``--clients`` clients, and reads each server thread's CPU time from ``/proc`` (Linux) before and
after: the event loop (the process's main thread), TensorFlow's compute threads (the model), and
the other threads (the decoding and detection pool, where ONNX Runtime or TFLite runs BlazeFace
inline). The load generator's own CPU time is reported too: it shares the cores. Then BlazeFace
alone, on the benchmark's 640x480 frame, in one thread and in one thread per core at once.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import resource
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve as load_test  # noqa: E402
from models import matmul_peak_gflops  # noqa: E402


def thread_cpu(pid: int) -> collections.Counter:
    """CPU seconds (user + system) of a process's threads, grouped: main, tf_* threads, the rest."""
    tick = os.sysconf("SC_CLK_TCK")
    groups: collections.Counter = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended between listing and reading
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if task.name == str(pid):
            groups["event loop (main thread)"] += seconds
        elif name.startswith("tf_"):
            groups["model (TensorFlow threads)"] += seconds
        else:
            groups["decode + detect pool, other threads"] += seconds
    return groups


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def detection_scaling(frame: np.ndarray, repeats: int = 60, rounds: int = 2) -> list[tuple[int, float]]:
    """(detectors at once, ms of CPU per detection): one alone, then one per core, alternating for
    ``rounds`` rounds (this machine's speed drifts within minutes)."""
    from fer_keras.app.detect import make_detector
    from fer_keras.app.recognizer import DNN_SIZE

    cores = os.cpu_count() or 1
    detectors = [make_detector("dnn", threads=1, short_side=DNN_SIZE) for _ in range(cores)]  # as the service
    for detector in detectors:
        detector(frame)
    rows = []
    for count in sorted({1, cores}) * rounds:
        spent: list[float] = []

        def work(detector, spent: list[float]) -> None:
            start = time.thread_time()
            for _ in range(repeats):
                detector(frame)
            spent.append((time.thread_time() - start) / repeats)

        threads = [threading.Thread(target=work, args=(d, spent)) for d in detectors[:count]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows.append((count, 1000 * float(np.mean(spent))))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--endpoint", choices=("/v1/analyze", "/v1/classify"), default="/v1/analyze")
    parser.add_argument("--data", default=None, help="FER2013, for real test crops in /v1/classify")
    parser.add_argument("--model", default=None, help="the server's --model (default: the shipped SavedModel)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(f"float32 matmul peak: {matmul_peak_gflops():.0f} GFLOP/s; {os.cpu_count()} cores", flush=True)
    image = load_test.face_jpeg()
    if args.endpoint == "/v1/analyze":
        body, kind = image, "image/jpeg"
    else:
        body, kind = load_test.crops_array(args.data).tobytes(), "application/octet-stream"
    server = load_test.Server(32, args.model)
    try:
        asyncio.run(load_test.load(server.url, args.endpoint, body, kind, 2, 2.0))  # warm-up
        before, client_before = thread_cpu(server.process.pid), own_cpu()
        result = asyncio.run(load_test.load(server.url, args.endpoint, body, kind, args.clients, args.seconds))
        after, client_after = thread_cpu(server.process.pid), own_cpu()
    finally:
        server.stop()
    n = max(result["requests"], 1)
    print(
        f"{args.endpoint}, {args.clients} clients, {args.seconds:.0f} s: {result['requests']} requests, "
        f"{result['req_s']:.1f} req/s, p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms"
    )
    print("\n| where | CPU ms a request |\n|---|---|")
    total = 0.0
    for group in sorted(after, key=lambda g: -(after[g] - before[g])):
        ms = 1000 * (after[group] - before[group]) / n
        total += ms
        print(f"| server: {group} | {ms:.1f} |")
    client = 1000 * (client_after - client_before) / n
    print(f"| load generator (httpx, same cores) | {client:.1f} |\n| all | {total + client:.1f} |")

    frame = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    print("\n| BlazeFace detectors running at once (one thread each, alternating rounds) | CPU ms a detection |")
    print("|---|---|")
    for count, ms in detection_scaling(frame):
        print(f"| {count} | {ms:.1f} |")
    print(f"\nfloat32 matmul peak at the end: {matmul_peak_gflops():.0f} GFLOP/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
