"""Load test of the web service on loopback: requests/s and p50/p99 latency at 1, 4 and 16 clients.

    python benchmarks/serve.py [--seconds 10] [--long-seconds 30] [--data ../shared/data/fer2013]

Starts ``python -m fer_keras.serve`` twice in a subprocess, with micro-batching on (``--max-batch
32``) and off (``--max-batch 1``), and sends it, from bounded async clients (httpx) in this
process: ``POST /v1/analyze`` with a 640x480 JPEG holding one face, and ``POST /v1/classify`` with
32 raw crops, then with one (FER2013 test crops with ``--data``, else crops of the sample photo's face). The last run
holds 16 clients for ``--long-seconds`` and reports lost requests and the server's memory (RSS)
before and after. Prints the float32 matmul peak measured in the same run, for comparing machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import matmul_peak_gflops  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "fer_keras" / "samples" / "astronaut.jpg"


def face_jpeg() -> bytes:
    """A 640x480 JPEG with one face (the sample photo, scaled into the frame)."""
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[40:440, 120:520] = cv2.resize(cv2.imread(str(SAMPLE)), (400, 400))
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def crops_array(data: str | None, count: int = 32) -> np.ndarray:
    if data:
        from fer_keras.runs import select_split

        crops = select_split(data, "test").images[:count]
    else:
        from fer_keras.app.detect import face_crop, make_detector

        image = cv2.imread(str(SAMPLE))
        box = make_detector("haar")(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))[0]
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        crops = np.stack([face_crop(gray, box, margin) for margin in np.linspace(-0.1, 0.2, count)])
    return crops


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """``python -m fer_keras.serve`` in a subprocess, ready once /healthz answers."""

    def __init__(self, max_batch: int, model: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "fer_keras.serve", "--port", str(self.port), "--max-batch", str(max_batch)]
        command += ["--model", model] if model else []
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit("the server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def load(url: str, path: str, body: bytes, content_type: str, clients: int, seconds: float) -> dict:
    """``clients`` loops each sending one request at a time for ``seconds``: throughput and latency."""
    latencies: list[float] = []
    failures: list[str] = []
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:

        async def client() -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    response = await http.post(path, content=body, headers={"Content-Type": content_type})
                    if response.status_code != 200:
                        failures.append(str(response.status_code))
                        continue
                except httpx.HTTPError as err:
                    failures.append(type(err).__name__)
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "requests": len(latencies),
        "failed": len(failures),
        "req_s": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    parser.add_argument("--long-seconds", type=float, default=30.0, help="the 16-client run that checks memory")
    parser.add_argument("--data", default=None, help="FER2013, for real test crops in /v1/classify")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(f"float32 matmul peak: {matmul_peak_gflops():.0f} GFLOP/s; {os.cpu_count()} cores")
    image, crops = face_jpeg(), crops_array(args.data)
    # (path, body, content type, crops per request); classify sends raw pixels (JSON parsing of
    # 32 nested 48x48 lists costs about 12 ms a request on its own)
    workloads = [
        ("/v1/analyze", image, "image/jpeg", 1),
        ("/v1/classify", crops.tobytes(), "application/octet-stream", len(crops)),
        ("/v1/classify", crops[:1].tobytes(), "application/octet-stream", 1),
    ]
    clients = [int(c) for c in args.clients.split(",")]
    rows = []
    for max_batch in (32, 1):
        server = Server(max_batch)
        try:
            for path, body, kind, per_request in workloads:
                asyncio.run(load(server.url, path, body, kind, 2, 2.0))  # warm-up: traces, pools, caches
                for c in clients:
                    result = asyncio.run(load(server.url, path, body, kind, c, args.seconds))
                    batching = "on" if max_batch > 1 else "off"
                    rows.append({"batching": batching, "endpoint": path, "crops": per_request, "clients": c, **result})
                    print(json.dumps(rows[-1]), flush=True)
            if max_batch > 1 and args.long_seconds:
                before = rss_mb(server.process.pid)
                result = asyncio.run(load(server.url, "/v1/analyze", image, "image/jpeg", 16, args.long_seconds))
                after = rss_mb(server.process.pid)
                print(
                    f"16 clients for {args.long_seconds:.0f} s on /v1/analyze: {result['requests']} requests, "
                    f"{result['failed']} failed, {result['req_s']:.1f} req/s, p99 {result['p99_ms']:.0f} ms; "
                    f"server RSS {before:.0f} MB -> {after:.0f} MB",
                    flush=True,
                )
        finally:
            server.stop()
    print("\n| batching | endpoint | faces or crops a request | clients | req/s | crops/s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['batching']} | `{r['endpoint']}` | {r['crops']} | {r['clients']} | {r['req_s']:.1f} | "
            f"{r['req_s'] * r['crops']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['failed']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
