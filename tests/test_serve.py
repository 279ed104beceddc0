"""The web service through the ASGI test client: the sample photo, crops, and every refusal."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from fer_keras import EMOTIONS
from fer_keras.app.serve import ServeOptions, create_app
from fer_keras.inference.predictor import load_predictor

SAMPLE = Path(__file__).resolve().parents[1] / "fer_keras" / "samples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(ServeOptions(max_upload_mb=1.0))) as client:  # the shipped model, BlazeFace
        yield client


@pytest.mark.smoke
def test_the_sample_photo_gives_one_happy_face_in_the_api_schema(client):
    from fer_keras import EmotionRecognizer

    body = SAMPLE.read_bytes()
    response = client.post("/v1/analyze", content=body, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["width"], result["height"]) == (512, 512)
    assert [f["label"] for f in result["faces"]] == ["happy"]
    face = result["faces"][0]
    # the same schema and numbers as the Python API (and so the live app's JSON)
    assert face == EmotionRecognizer(detector="dnn").analyze(SAMPLE)[0].to_dict()
    # a multipart upload and a PNG give the same answer
    upload = client.post("/v1/analyze", files={"image": ("photo.jpg", body, "image/jpeg")})
    assert upload.json()["faces"] == result["faces"]
    png = cv2.imencode(".png", cv2.imread(str(SAMPLE)))[1].tobytes()
    again = client.post("/v1/analyze", content=png, headers={"Content-Type": "image/png"})
    assert [f["label"] for f in again.json()["faces"]] == ["happy"]


def test_classify_takes_crops_as_json(client, small_fer):
    from fer_keras.data.loading import load_faces

    faces = load_faces(small_fer / "test")
    crops = faces.images[:5]
    response = client.post("/v1/classify", json={"crops": crops.tolist()})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    expected = load_predictor()(crops)
    assert [r["label"] for r in results] == [EMOTIONS[i] for i in expected.argmax(1)]
    assert list(results[0]["probs"]) == list(EMOTIONS)
    raw = client.post("/v1/classify", content=crops.tobytes(), headers={"Content-Type": "application/octet-stream"})
    assert raw.json()["results"] == results  # the raw-pixel form gives the same answer


def test_healthz_and_docs(client):
    health = client.get("/healthz").json()
    assert (
        health["classes"] == list(EMOTIONS) and health["version"] and health["model_format"] == "tflite"
    )  # the shipped model as TFLite, as in the API
    assert "/v1/analyze" in client.get("/openapi.json").json()["paths"]


def test_the_api_docs_load_nothing_from_the_internet(client):
    """/docs works offline: every script and stylesheet it names is served by the service itself."""
    import re

    docs = client.get("/docs")
    assert docs.status_code == 200 and "SwaggerUIBundle" in docs.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text) + re.findall(r"url: '([^']+)'", docs.text)
    assert assets and not [a for a in assets if "://" in a or a.startswith("//")], assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    page = client.get("/")
    assert page.status_code == 200 and "getUserMedia" in page.text and "/v1/analyze" in page.text


@pytest.mark.parametrize(
    "path,body,content_type,status,message",
    [
        ("/v1/analyze", b"\xff\xd8 not really a jpeg", "image/jpeg", 400, "not an image OpenCV can decode"),
        ("/v1/analyze", b"", "image/png", 400, "the body is empty"),
        ("/v1/analyze", b"hello", "text/plain", 415, "'text/plain' is not accepted"),
        ("/v1/analyze", b"x" * (1024 * 1024 + 1), "image/jpeg", 413, "the limit is 1,048,576"),
        ("/v1/classify", b"{not json", "application/json", 400, "not valid JSON"),
        ("/v1/classify", json.dumps({"crops": [[[0] * 40] * 40]}).encode(), "application/json", 400, "48x48"),
        ("/v1/classify", json.dumps({"crops": [[[300] * 48] * 48]}).encode(), "application/json", 400, "0 and 255"),
        ("/v1/classify", json.dumps({"images": []}).encode(), "application/json", 400, '{"crops": [...]}'),
        ("/v1/classify", b"[]", "image/png", 415, "send application/json or application/octet-stream"),
        ("/v1/classify", b"x" * 100, "application/octet-stream", 400, "multiple of 2304 bytes"),
    ],
)
def test_bad_requests_get_a_status_and_a_one_line_json_error(client, path, body, content_type, status, message):
    response = client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error and "\n" not in error
    # the server keeps serving
    assert client.get("/healthz").status_code == 200


def test_multipart_without_a_file(client):
    response = client.post("/v1/analyze", data={"note": "no file"}, files={})
    assert response.status_code in (400, 415)
    assert "error" in response.json()


class GatedPredictor:
    """The shipped model behind a gate: a model call waits until the test opens it."""

    def __init__(self):
        self.inner = load_predictor()
        self.kind, self.path = self.inner.kind, self.inner.path
        self.gate = threading.Event()
        self.entered = threading.Event()  # a model call has started
        self.calls: list[int] = []

    def __call__(self, crops):
        self.entered.set()
        self.gate.wait(10)
        self.calls.append(len(crops))
        return self.inner(crops)


def test_an_idle_model_runs_a_lone_request_at_once_and_batches_what_piles_up_meanwhile():
    """The default waits for no company: the first request goes to the model alone; those that
    arrive while it is busy share the next call."""
    predictor = GatedPredictor()
    app = create_app(ServeOptions(max_batch=64), predictor=predictor)
    assert app.state.batcher.max_wait == 0.0
    crop = {"crops": np.full((1, 48, 48), 128, np.uint8).tolist()}

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = asyncio.create_task(http.post("/v1/classify", json=crop))
            while not predictor.entered.is_set():  # no timer: the lone request reaches the model by itself
                await asyncio.sleep(0.01)
            later = [asyncio.create_task(http.post("/v1/classify", json=crop)) for _ in range(2)]
            await asyncio.sleep(0.3)  # the two are queued behind the busy model
            predictor.gate.set()
            return await asyncio.gather(first, *later)

    done = asyncio.run(scenario())
    assert [r.status_code for r in done] == [200, 200, 200]
    assert predictor.calls == [1, 2]


def test_a_full_queue_gets_503_and_concurrent_crops_share_one_model_call():
    predictor = GatedPredictor()
    app = create_app(ServeOptions(max_queue=3, max_batch=64, max_wait_ms=50), predictor=predictor)
    crop = {"crops": np.full((1, 48, 48), 128, np.uint8).tolist()}

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            waiting = [asyncio.create_task(http.post("/v1/classify", json=crop)) for _ in range(3)]
            await asyncio.sleep(0.3)  # the three are in, held by the gate
            refused = await http.post("/v1/classify", json=crop)
            predictor.gate.set()
            done = await asyncio.gather(*waiting)
            after = await http.post("/v1/classify", json=crop)
            return refused, done, after

    refused, done, after = asyncio.run(scenario())
    assert refused.status_code == 503 and "busy" in refused.json()["error"]
    assert [r.status_code for r in done] == [200, 200, 200] and after.status_code == 200
    assert predictor.calls[0] == 3  # the three waiting requests went through the model together


def test_bad_options_are_one_line_errors():
    from fer_keras.errors import FerKerasError

    with pytest.raises(FerKerasError, match="--max-batch must be at least 1"):
        create_app(ServeOptions(max_batch=0))


def test_the_command_refuses_bad_flags_at_once(capsys):
    from fer_keras.serve import main

    assert main(["--port", "http"]) == 2
    assert "invalid int value" in capsys.readouterr().err


def serve_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_keras.serve", *args], capture_output=True, text=True, timeout=120)


def test_a_port_out_of_range_is_one_line_before_anything_is_announced():
    done = serve_command("--port", "99999")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "error: --port must be between 0 and 65535, got 99999\n"


def test_a_busy_port_is_one_line_before_the_model_loads():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve_command("--port", str(port))
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr.strip()
        == f"error: port {port} on 127.0.0.1 is already in use; stop what uses it or pick another --port"
    )


def test_image_upload_limit_is_checked_without_a_declared_length(client):
    def chunks():
        yield b"x" * (700 * 1024)
        yield b"x" * (700 * 1024)

    response = client.post("/v1/analyze", content=chunks(), headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 413
