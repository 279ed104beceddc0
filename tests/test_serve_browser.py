"""The demo page in headless Chromium: its fake camera plays a clip of a face, a label appears.

Needs Debian's ``chromium`` and ``chromium-driver`` (CI installs them; so does
``apt-get install chromium chromium-driver``). ``FER_KERAS_SCREENSHOT=docs/serve-page.png`` keeps
the page's screenshot there.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER) and not os.environ.get("CI"):
    pytest.skip(
        "the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
import uvicorn  # noqa: E402
from selenium import webdriver  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "fer_keras" / "samples" / "astronaut.jpg"


def write_y4m(path: Path, frame_bgr: np.ndarray, frames: int = 20, fps: int = 10) -> Path:
    """A YUV4MPEG2 clip (what Chromium's fake camera plays) of one still frame, gently moving."""
    h, w = frame_bgr.shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            shifted = np.roll(frame_bgr, i % 5, axis=1)
            out.write(b"FRAME\n" + cv2.cvtColor(shifted, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def face_frame() -> np.ndarray:
    """A 640x480 frame with the sample photo's face in it."""
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[40:440, 120:520] = cv2.resize(cv2.imread(str(SAMPLE)), (400, 400))
    return canvas


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[uvicorn.Server, threading.Thread, int]:
    from fer_keras.app.serve import ServeOptions, create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(ServeOptions()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.1)
    assert server.started
    return server, thread, port


def chromium(*flags: str):
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and DRIVER, "CI must install chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,800", *flags):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.mark.slow
def test_the_page_shows_a_label_for_the_fake_cameras_face(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, thread, port = start_server()
    clip = write_y4m(tmp_path / "clip.y4m", face_frame())
    browser = chromium(
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    )
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        browser.find_element(By.ID, "start").click()
        faces = browser.find_element(By.ID, "faces")
        WebDriverWait(browser, 60).until(lambda _: faces.get_attribute("data-labels"))
        labels = faces.get_attribute("data-labels").split(",")
        assert labels == ["happy"], faces.text
        assert "happy" in faces.text and "%" in faces.text
        time.sleep(1.0)  # a few more frames drawn: the screenshot shows the overlay
        screenshot = Path(os.environ.get("FER_KERAS_SCREENSHOT") or tmp_path / "page.png")
        browser.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.slow
def test_the_api_docs_render_with_the_network_off(tmp_path):
    """Every request but loopback goes to a proxy that does not exist: /docs must render from the
    service's own files."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, thread, port = start_server()
    browser = chromium("--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>;127.0.0.1")
    try:
        browser.get(f"http://127.0.0.1:{port}/docs")
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock"))
        paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/v1/analyze", "/v1/classify", "/healthz"} <= paths, paths
        browser.save_screenshot(os.environ.get("FER_KERAS_DOCS_SCREENSHOT") or str(tmp_path / "docs.png"))
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(timeout=10)
