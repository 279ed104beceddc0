"""The web service: one shared model behind an HTTP API (FastAPI) and a browser demo page.

``POST /v1/analyze`` (an image) -> the faces, in the schema of ``Face.to_dict``; ``POST /v1/classify``
(48x48 crops as JSON) -> their emotions; ``GET /healthz``; ``GET /`` the demo page; ``/docs`` the
OpenAPI docs (served offline). Decoding and detection run on a thread pool sized to the cores, each thread with
its own detector; the crops of concurrent requests are micro-batched into one model call. Every
error is a JSON body ``{"error": "one line"}``; a full queue is refused with 503 rather than
letting memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from fer_keras.app.detect import make_detector
from fer_keras.app.page import PAGE
from fer_keras.app.recognizer import DNN_SIZE, Emotion, EmotionRecognizer, merge_views
from fer_keras.contract import CROP_SIZE
from fer_keras.errors import FerKerasError, first_line
from fer_keras.inference.predictor import EmotionPredictor, all_cores, load_predictor, runtime_model

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_CROPS = 1024  # crops in one /v1/classify request


@dataclass
class ServeOptions:
    """How the service runs; ``python -m fer_keras.serve`` sets these from its flags."""

    model: str | None = None  # default: the shipped model
    detector: str = "dnn"
    runtime: str = "auto"  # how a shipped model runs: tflite, tensorflow (a GPU), auto
    max_batch: int = 32  # crops per model call; 1 turns micro-batching off
    # How long a call waits for more crops to join it. 0: an idle model runs what is queued at once,
    # and only the requests that arrive while it is busy share its next call, so a lone client
    # never waits for company (p50 7.3 against 2.8 ms a crop with a 2 ms wait, on two cores).
    max_wait_ms: float = 0.0
    max_queue: int = 64  # requests being served at once; more are refused with 503
    max_upload_mb: float = 10.0
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)  # decoding and detection

    def validate(self) -> None:
        checks = [
            (self.max_batch >= 1, f"--max-batch must be at least 1, got {self.max_batch}"),
            (self.max_wait_ms >= 0, f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}"),
            (self.max_queue >= 1, f"--max-queue must be at least 1, got {self.max_queue}"),
            (self.max_upload_mb > 0, f"--max-upload-mb must be positive, got {self.max_upload_mb}"),
            (self.threads >= 1, f"--threads must be at least 1, got {self.threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise FerKerasError(message)


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound socket for the service, so that a bad or busy port is a one-line error before the
    model loads and before anything is announced (port 0: the system picks a free one)."""
    if not 0 <= port <= 65535:
        raise FerKerasError(f"--port must be between 0 and 65535, got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as err:
        raise FerKerasError(f"cannot listen on --host {host}: {err.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart while old connections linger
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise FerKerasError(
                f"port {port} on {host} is already in use; stop what uses it or pick another --port"
            ) from None
        raise FerKerasError(f"cannot listen on {host}:{port}: {err.strerror or first_line(err)}") from None
    return sock


class ServeError(Exception):
    """A request the service refuses: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class MicroBatcher:
    """Puts the crops of concurrent requests into one model call.

    A call takes what is queued (up to ``max_batch`` crops), and, only when ``max_wait`` is above 0,
    waits that many seconds for more; it runs the model once on a single model thread and hands
    each request its rows. What arrives while the model is busy piles up for the next call, so
    batches grow with the load by themselves. ``max_batch`` 1 calls the model once per request."""

    def __init__(self, predictor: EmotionPredictor, max_batch: int, max_wait: float):
        self.predictor, self.max_batch, self.max_wait = predictor, max_batch, max_wait
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.calls = 0  # model calls made, for the benchmark and the tests

    async def predict(self, crops: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self.max_batch <= 1:
            self.calls += 1
            return await loop.run_in_executor(self.model_thread, self.predictor, crops)
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.worker = asyncio.create_task(self._run())
        future = loop.create_future()
        self.queue.put_nowait((crops, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0][0])
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                try:
                    item = self.queue.get_nowait() if self.queue.qsize() else None
                    if item is None:
                        remaining = deadline - loop.time()
                        if remaining <= 0:  # always so with max_wait 0: an idle model does not wait
                            break
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
                batch.append(item)
                size += len(item[0])
            crops = np.concatenate([c for c, _ in batch])
            self.calls += 1
            try:
                probs = await loop.run_in_executor(self.model_thread, self.predictor, crops)
            except Exception as err:  # noqa: BLE001 - every waiting request gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            start = 0
            for part, future in batch:
                if not future.done():
                    future.set_result(probs[start : start + len(part)])
                start += len(part)

    def close(self) -> None:
        if self.worker:
            self.worker.cancel()
        self.model_thread.shutdown(wait=False)


class FaceLocator:
    """Decoding, detection and cropping on a thread pool, one detector per thread (a detector,
    BlazeFace's interpreter among them, must not be called from two threads at once)."""

    def __init__(self, options: ServeOptions, predictor: EmotionPredictor):
        self.options, self.predictor = options, predictor
        self.pool = ThreadPoolExecutor(max_workers=options.threads, thread_name_prefix="detect")
        self.local = threading.local()
        # a detector that cannot load fails at start, not on the first request
        self.views = self.recognizer(first=True).views

    def recognizer(self, first: bool = False) -> EmotionRecognizer:
        if first or not hasattr(self.local, "recognizer"):
            # the pool is the parallelism; the input size is the API's, so both find the same faces
            detector = make_detector(self.options.detector, threads=1, short_side=DNN_SIZE)
            self.local.recognizer = EmotionRecognizer(self.predictor, detector)
        return self.local.recognizer

    def _locate(self, data: bytes):
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise ServeError(400, "the body is not an image OpenCV can decode (send a JPEG, PNG or WebP)")
        boxes, crops = self.recognizer().locate(frame)
        return frame.shape, boxes, crops

    async def locate(self, data: bytes):
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._locate, data)

    def close(self) -> None:
        self.pool.shutdown(wait=False)


def parse_crops(payload: Any) -> np.ndarray:
    """(N, 48, 48) uint8 crops from ``{"crops": [...]}``: nested lists of 0..255 grayscale values."""
    crops = payload.get("crops") if isinstance(payload, dict) else None
    if not isinstance(crops, list) or not crops:
        raise ServeError(400, 'send JSON {"crops": [...]} with one or more 48x48 grayscale crops')
    if len(crops) > MAX_CROPS:
        raise ServeError(413, f"at most {MAX_CROPS} crops per request, got {len(crops)}")
    try:
        array = np.asarray(crops, dtype=np.float64)
    except (TypeError, ValueError):
        raise ServeError(400, "crops must be nested lists of numbers (48 rows of 48 values each)") from None
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.shape[1:] != (CROP_SIZE, CROP_SIZE):
        raise ServeError(400, f"crops must be {CROP_SIZE}x{CROP_SIZE} grayscale, got shape {tuple(array.shape[1:])}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise ServeError(400, "crop values must be between 0 and 255")
    return array.astype(np.uint8)


def parse_raw_crops(body: bytes) -> np.ndarray:
    """(N, 48, 48) uint8 crops from their raw pixels, 2,304 bytes a crop."""
    size = CROP_SIZE * CROP_SIZE
    if not body or len(body) % size:
        raise ServeError(
            400, f"raw crops must be a multiple of {size} bytes ({CROP_SIZE}x{CROP_SIZE} uint8 each), got {len(body)}"
        )
    if len(body) // size > MAX_CROPS:
        raise ServeError(413, f"at most {MAX_CROPS} crops per request, got {len(body) // size}")
    return np.frombuffer(body, np.uint8).reshape(-1, CROP_SIZE, CROP_SIZE)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading it when the size is declared)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ServeError(413, f"the upload is {int(declared):,} bytes; the limit is {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServeError(413, f"the upload is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Admission:
    """ASGI middleware: API requests beyond ``limit`` at once are refused at the door with 503, so
    memory stays bounded. (Plain ASGI: Starlette's ``BaseHTTPMiddleware`` would add a task group
    and a memory stream to every request.)"""

    def __init__(self, app, limit: int):
        self.app, self.limit, self.in_flight = app, limit, 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await JSONResponse({"error": "the server is busy; retry shortly"}, status_code=503)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def create_app(options: ServeOptions | None = None, predictor: EmotionPredictor | None = None) -> FastAPI:
    """The service with its model loaded once (``predictor``, else ``options.model``; the shipped
    model runs as TFLite, as in the Python API: 1.4x the crops a second of its SavedModel here)."""
    options = options or ServeOptions()
    options.validate()
    predictor = predictor or load_predictor(runtime_model(options.model, options.runtime), all_cores())
    locator = FaceLocator(options, predictor)
    batcher = MicroBatcher(predictor, options.max_batch, options.max_wait_ms / 1000)
    limit = int(options.max_upload_mb * 1024 * 1024)

    from fer_keras import __version__

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        batcher.close()
        locator.close()

    # /docs from Swagger UI files that ship in the fastapi-offline wheel: FastAPI's own page loads
    # them from a CDN, and is blank without internet
    app = FastAPIOffline(
        lifespan=lifespan,
        title="fer_keras",
        version=__version__,
        description="Facial emotion recognition: faces and their emotions in images, or emotions of 48x48 crops.",
    )
    app.state.batcher, app.state.locator, app.state.options = batcher, locator, options

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, err: ServeError):
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, err: HTTPException):
        return JSONResponse({"error": str(err.detail)}, status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError):
        return JSONResponse({"error": first_line(err)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception):
        return JSONResponse({"error": f"internal error: {first_line(err)}"}, status_code=500)

    app.add_middleware(Admission, limit=options.max_queue)

    @app.get("/healthz")
    def healthz() -> dict:
        """The model, its classes and the service's version."""
        return {
            "status": "ok",
            "model": str(getattr(predictor, "path", "")),
            "model_format": predictor.kind,
            "classes": list(predictor.classes),
            "detector": options.detector,
            "version": __version__,
        }

    @app.post("/v1/analyze")
    async def analyze(request: Request) -> dict:
        """Faces in one image: a JPEG, PNG or WebP body, or a multipart upload (field ``image``)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in (*IMAGE_TYPES, "multipart/form-data"):
            raise ServeError(
                415,
                f"content type {kind or 'none'!r} is not accepted: send {', '.join(IMAGE_TYPES)} or multipart/form-data",
            )
        body = await read_body(request, limit)
        if kind == "multipart/form-data":
            request._body = body  # the form parser reads the body already taken (and size-checked)
            form = await request.form()
            upload = form.get("image") or next((v for v in form.values() if hasattr(v, "read")), None)
            if upload is None or not hasattr(upload, "read"):
                raise ServeError(400, "the multipart form has no file (send it as the field 'image')")
            body = await upload.read()
        if not body:
            raise ServeError(400, "the body is empty: send an image")
        started = time.perf_counter()
        shape, boxes, crops = await locator.locate(body)
        probs = await batcher.predict(crops) if len(crops) else np.zeros((0, len(predictor.classes)), np.float32)
        probs = merge_views(probs, locator.views)
        faces = EmotionRecognizer.faces(boxes, probs)
        return {
            "width": shape[1],
            "height": shape[0],
            "faces": [face.to_dict() for face in faces],
            "ms": round(1000 * (time.perf_counter() - started), 1),
        }

    @app.post("/v1/classify")
    async def classify(request: Request) -> dict:
        """Emotions of ready 48x48 grayscale crops: JSON ``{"crops": [crop, ...]}`` (values 0..255),
        or ``application/octet-stream``: the crops' raw uint8 pixels, 2,304 bytes each, row by row."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("application/json", "application/octet-stream"):
            raise ServeError(
                415,
                f"content type {kind or 'none'!r} is not accepted: send application/json or application/octet-stream",
            )
        body = await read_body(request, limit)
        if kind == "application/octet-stream":
            crops = parse_raw_crops(body)
        else:
            try:
                payload = json.loads(body)
            except ValueError as err:
                raise ServeError(400, f"the body is not valid JSON: {first_line(err)}") from None
            crops = parse_crops(payload)
        probs = await batcher.predict(crops)
        results = []
        for p in probs:
            emotion = Emotion.from_probs(p)
            results.append(
                {
                    "label": emotion.label,
                    "confidence": round(emotion.confidence, 4),
                    "probs": {e: round(v, 4) for e, v in emotion.probs.items()},
                }
            )
        return {"results": results}

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        """The demo page: the webcam or a dropped image, with boxes, labels and per-class bars."""
        return PAGE

    return app
