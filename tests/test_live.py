"""The live app driven headless on a generated video and on images: CSV schema, values, summary."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_keras.app.detect import FaceBox, face_crop
from fer_keras.app.live import CSV_HEADER
from fer_keras.app.synthetic import make_face_video, score_run
from fer_keras.app.track import FaceTracker
from fer_keras.contract import EMOTIONS
from fer_keras.data.loading import load_faces
from fer_keras.errors import FerKerasError
from fer_keras.live import main

SAMPLE = "fer_keras/samples/astronaut.jpg"


@pytest.fixture(scope="module")
def face_video(small_fer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("video")
    video, truth = folder / "faces.mp4", folder / "truth.csv"
    make_face_video(load_faces(small_fer / "test"), video, truth, frames=45, seed=3)
    return video, truth


@pytest.mark.smoke
def test_video_headless_csv_and_summary(face_video, small_model_file, tmp_path, capsys):
    video, truth = face_video
    out_csv, out_video = tmp_path / "faces.csv", tmp_path / "annotated.mp4"
    code = main(
        [
            "--source",
            str(video),
            "--model",
            str(small_model_file),
            "--no-display",
            "--csv",
            str(out_csv),
            "--output",
            str(out_video),
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"frames=45 fps=\d+\.\d faces=\d+", lines[-1])
    assert any(line.startswith("per frame: detect=") for line in lines)

    table = pd.read_csv(out_csv)
    assert list(table.columns) == CSV_HEADER
    assert CSV_HEADER[-7:] == [f"p_{e}" for e in EMOTIONS]
    assert len(table) > 0 and table["frame"].between(0, 44).all()
    probs = table[[f"p_{e}" for e in EMOTIONS]].to_numpy()
    assert np.allclose(probs.sum(1), 1.0, atol=2e-3)
    label_prob = probs[np.arange(len(table)), [EMOTIONS.index(x) for x in table["label"]]]
    assert np.allclose(label_prob, probs.max(1), atol=1e-4)  # the label is the top class (4-decimal CSV)
    assert np.allclose(table["confidence"], probs.max(1), atol=1e-4)
    assert np.allclose(table["time_s"], table["frame"] / 30.0, atol=1e-3)
    faces_seen = int(lines[-1].rsplit("faces=", 1)[1])
    assert table["face_id"].nunique() == faces_seen

    scores = score_run(truth, out_csv)
    assert scores["recall"] > 0.3  # Haar finds pasted FER2013 faces (the benchmark measures how well)

    capture = cv2.VideoCapture(str(out_video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 45
    capture.release()


def test_image_source_prints_json_per_face(small_model_file, capsys, tmp_path):
    annotated = tmp_path / "annotated.jpg"
    assert main(["--source", SAMPLE, "--model", str(small_model_file), "--output", str(annotated)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(records) == 1
    face = records[0]
    assert set(face) == {"face_id", "box", "label", "confidence", "probs"}
    assert 150 < face["box"]["x"] < 200 and 40 < face["box"]["y"] < 90  # Eileen Collins' face
    assert face["label"] in EMOTIONS and abs(sum(face["probs"].values()) - 1) < 1e-3
    assert cv2.imread(str(annotated)).shape == (512, 512, 3)


def test_folder_source_and_frame_without_faces(small_model_file, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), cv2.imread(SAMPLE))
    cv2.imwrite(str(folder / "blank.png"), np.full((200, 200, 3), 128, np.uint8))
    (folder / "broken.jpg").write_text("not an image")
    assert main(["--source", str(folder), "--model", str(small_model_file)]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["image"].endswith("a.jpg") for r in records] == [True]
    # each image that gave nothing is named, and counted
    assert err.splitlines() == [
        f"no face found in {folder / 'blank.png'}",
        f"skipped: cannot read image {folder / 'broken.jpg'} (not an image, or a format OpenCV cannot decode)",
        "images=3 faces=1 no_face=1 unreadable=1",
    ]


def test_a_folder_of_face_crops_without_detection(small_fer, small_model_file, tmp_path, capsys):
    """--detector none: each image is one face, whatever its size; one CSV row per image, and an
    annotated copy enlarged with its panel beside the face."""
    folder = tmp_path / "crops"
    folder.mkdir()
    faces = load_faces(small_fer / "test")
    for i in range(3):
        cv2.imwrite(str(folder / f"crop{i}.png"), faces.images[i])
    cv2.imwrite(str(folder / "wide.png"), cv2.resize(faces.images[3], (96, 64)))
    out_csv, annotated = tmp_path / "crops.csv", tmp_path / "annotated"
    argv = ["--source", str(folder), "--detector", "none", "--csv", str(out_csv), "--output", str(annotated)]
    assert main([*argv, "--model", str(small_model_file)]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert len(records) == 4 and records[0]["box"] == {"x": 0, "y": 0, "w": 48, "h": 48}
    assert "note:" not in err
    table = pd.read_csv(out_csv)
    assert list(table.columns) == ["image", *CSV_HEADER]
    assert [Path(p).name for p in table["image"]] == ["crop0.png", "crop1.png", "crop2.png", "wide.png"]
    assert table["frame"].tolist() == [0, 1, 2, 3]
    # the crop is classified as a whole: what the model gives the 48x48 image itself
    from fer_keras.inference.predictor import load_predictor

    direct = load_predictor(small_model_file)(faces.images[:1])[0]
    flipped = load_predictor(small_model_file)(faces.images[:1, :, ::-1])[0]
    assert np.allclose(table.loc[0, [f"p_{e}" for e in EMOTIONS]].to_numpy(float), (direct + flipped) / 2, atol=2e-4)
    # with a detector, crop-sized images get a hint towards --detector none
    assert main(["--source", str(folder), "--model", str(small_model_file), "--detector", "haar"]) == 0
    note = "note: 4 of the images are 96 pixels or smaller, the size of ready face crops; --detector none"
    assert note in capsys.readouterr().err
    picture = cv2.imread(str(annotated / "crop0.png"))
    assert min(picture.shape[:2]) >= 360 and picture.shape[1] > picture.shape[0]  # enlarged, room for the panel
    assert np.abs(picture[:, -60:].astype(int) - 40).max() > 100  # the panel's text is drawn in that strip


def test_outputs_are_checked_before_any_work(small_model_file, tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    for argv, message in [
        (["--source", SAMPLE, "--output", str(missing / "a.jpg")], f"folder {missing} does not exist"),
        (["--source", SAMPLE, "--csv", str(missing / "a.csv")], f"folder {missing} does not exist"),
        (["--source", SAMPLE, "--output", str(tmp_path / "a.xyz")], "OpenCV cannot write this image type"),
    ]:
        assert main([*argv, "--model", str(small_model_file)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_a_missing_camera_is_one_line_without_opencvs_own_warnings(small_model_file, capfd, monkeypatch):
    from fer_keras.app.recognizer import EmotionRecognizer

    def loads_a_model(*args, **kwargs):
        raise AssertionError("the model loaded before the camera was tried")

    monkeypatch.setattr(EmotionRecognizer, "__init__", loads_a_model)  # the camera is tried first
    assert main(["--source", "7", "--model", str(small_model_file), "--no-display"]) == 2
    err = capfd.readouterr().err.strip()
    assert err == "error: cannot open camera 7 (no camera, or in use); try --source VIDEO"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--source", "7"], "cannot open camera 7"),
        (["--source", "missing.mp4"], "source missing.mp4 does not exist"),
        (["--source", SAMPLE, "--model", "nope.keras"], "model nope.keras does not exist"),
        (["--source", SAMPLE, "--detector", "dnn", "--model", "nope"], "does not exist"),
        (["--source", SAMPLE, "--smoothing", "1.5"], "--smoothing must be in [0, 1)"),
        (["--source", SAMPLE, "--detect-every", "0"], "--detect-every must be at least 1"),
        (["--source", SAMPLE, "--downscale", "0"], "--downscale must be positive"),
        (["--source", SAMPLE, "--margin", "-0.5"], "--margin must be above -0.5"),
        (["--source", SAMPLE, "--threads", "0"], "--threads must be at least 1"),
        (["--source", SAMPLE, "--dnn-size", "32"], "--dnn-size must be between 64 and 2048"),
    ],
)
def test_errors_are_one_line(argv, message, small_model_file, capsys):
    if "--model" not in argv:
        argv = [*argv, "--model", str(small_model_file)]
    assert main([*argv, "--no-display"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_window_without_a_display_is_one_line(face_video, small_model_file, monkeypatch, capsys):
    video, _ = face_video
    argv = ["--source", str(video), "--model", str(small_model_file), "--max-frames", "2"]
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(argv) == 2  # OpenCV's Qt window would abort the process here
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no display for the live window" in err and "--no-display" in err

    # a display is there, but this OpenCV has no GUI (opencv-python-headless)
    monkeypatch.setenv("DISPLAY", ":0")

    def no_gui(*args):
        raise cv2.error("OpenCV(4.12.0) window.cpp:1301: error: (-2:Unspecified error) The function is not implemented")

    monkeypatch.setattr(cv2, "imshow", no_gui)
    monkeypatch.setattr(cv2, "destroyAllWindows", no_gui)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "OpenCV cannot open a window" in err and "not implemented" in err


def test_unreadable_video(tmp_path, small_model_file, capsys):
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video")
    assert main(["--source", str(fake), "--model", str(small_model_file), "--no-display"]) == 2
    err = capsys.readouterr().err
    assert "cannot read video" in err or "no frames could be read" in err


def test_tracker_keeps_ids_and_smooths_flicker():
    tracker = FaceTracker(smoothing=0.7)
    happy, sad = np.eye(7)[3] * 0.6 + 0.4 / 7, np.eye(7)[4] * 0.6 + 0.4 / 7
    labels, ids = [], set()
    for frame in range(20):
        box = FaceBox(100 + frame, 100, 80, 80)
        probs = sad if frame % 4 == 3 else happy  # a flickering raw prediction
        (track,) = tracker.update([box], probs[None])
        labels.append(int(track.probs.argmax()))
        ids.add(track.face_id)
    assert ids == {0}
    assert labels == [3] * 20  # smoothed: stays happy through the single-frame 'sad' blips
    unsmoothed = FaceTracker(smoothing=0.0)
    raw = [
        int(unsmoothed.update([FaceBox(100, 100, 80, 80)], (sad if f % 4 == 3 else happy)[None])[0].probs.argmax())
        for f in range(8)
    ]
    assert raw == [3, 3, 3, 4, 3, 3, 3, 4]


def test_a_new_face_in_the_place_of_another_starts_a_new_track(small_fer, small_model_file):
    faces = load_faces(small_fer / "test")
    first, second = faces.images[0].astype(np.float32), faces.images[1].astype(np.float32)
    box, happy, sad = FaceBox(100, 100, 80, 80), np.eye(7)[3], np.eye(7)[4]
    tracker = FaceTracker(smoothing=0.7)
    noise = np.random.default_rng(0).normal(0, 8, first.shape)
    # the same face, a little noisier and brighter, continues its track and is smoothed
    ids = [tracker.update([box], happy[None], crops[None])[0].face_id for crops in (first, first * 1.1 + noise)]
    assert ids == [0, 0]
    # another face at the very same box: a new track, with its own probabilities only
    (track,) = tracker.update([box], sad[None], second[None])
    assert track.face_id == 1 and np.allclose(track.probs, sad)
    # without crops the tracker cannot tell them apart and smooths across (the old behaviour)
    blind = FaceTracker(smoothing=0.7)
    blind.update([box], happy[None])
    assert blind.update([box], sad[None])[0].face_id == 0

    # through the recognizer: a face replaced by another where it stood gets a new id
    from fer_keras.app.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer(small_model_file, lambda frame: [FaceBox(40, 40, 96, 96)], detect_every=1)
    frames = []
    for crop in (faces.images[0], faces.images[0], faces.images[1]):
        frame = np.full((180, 180), 128, np.uint8)
        frame[40:136, 40:136] = cv2.resize(crop, (96, 96))
        frames.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    assert [recognizer.process(f)[0].face_id for f in frames] == [0, 0, 1]


def test_a_face_that_changes_between_detections_is_detected_at_once(small_fer, small_model_file):
    """Detection runs every 2nd frame; when a tracked face leaves and another appears elsewhere on a
    frame in between, that frame is detected rather than the empty old box classified."""
    from fer_keras.app.recognizer import EmotionRecognizer

    faces = load_faces(small_fer / "test")
    left, right = FaceBox(10, 40, 96, 96), FaceBox(170, 40, 96, 96)
    calls = []

    def detector(frame):  # finds whichever of the two places holds a face (the background is flat)
        calls.append(len(calls))
        return [b for b in (left, right) if frame[b.y : b.y + b.h, b.x : b.x + b.w].std() > 5]

    frames = []
    for crop, box in [(faces.images[0], left)] * 3 + [(faces.images[1], right)] * 3:
        frame = np.full((180, 280, 3), 128, np.uint8)
        frame[box.y : box.y + box.h, box.x : box.x + box.w] = cv2.resize(crop, (96, 96))[..., None]
        frames.append(frame)
    recognizer = EmotionRecognizer(small_model_file, detector, detect_every=2)
    results = [recognizer.process(f) for f in frames]
    assert [[(f.face_id, f.box) for f in r] for r in results] == [[(0, left)]] * 3 + [[(1, right)]] * 3
    assert len(calls) == 4 and recognizer.redetections == 1  # frames 0, 2, 4 and the change at 3
    recognizer.reset()
    assert recognizer.redetections == 0


def test_a_tracked_face_is_mirrored_on_every_other_frame(small_fer, small_model_file):
    """In a video each crop's mirror image is classified on alternate frames rather than beside it:
    half the crops per frame, the smoothing averages the two, and a still face stays one track."""
    from fer_keras.app.recognizer import EmotionRecognizer

    faces = load_faces(small_fer / "test")
    frame = np.full((180, 180, 3), 128, np.uint8)
    frame[40:136, 40:136] = cv2.resize(faces.images[0], (96, 96))[..., None]
    recognizer = EmotionRecognizer(small_model_file, lambda f: [FaceBox(40, 40, 96, 96)], detect_every=2)
    assert recognizer.views == 2  # one framing and its mirror image, both at once for a still image
    predict, seen = recognizer.predictor, []
    recognizer.predictor = lambda crops: (seen.append(np.array(crops)), predict(crops))[1]
    results = [recognizer.process(frame)[0] for _ in range(4)]
    assert [len(c) for c in seen] == [1, 1, 1, 1]
    assert np.array_equal(seen[1], seen[0][:, :, ::-1]) and np.array_equal(seen[2], seen[0])
    assert [r.face_id for r in results] == [0] * 4 and recognizer.redetections == 0
    plain, mirrored = predict(seen[0])[0], predict(seen[1])[0]
    np.testing.assert_allclose(results[1].vector(), 0.6 * plain + 0.4 * mirrored, atol=1e-5)
    single = recognizer.analyze(frame)[0]  # untracked: both views in one call
    assert len(seen[-1]) == 2 and np.allclose(single.vector(), (plain + mirrored) / 2, atol=1e-5)


def test_video_score_interval_counts_faces_not_frames(tmp_path):
    # two faces, each held for 10 frames: one always right, one always wrong
    truth = pd.DataFrame(
        [[f, 0, 10, 10, 50, 50, "happy", 0, 0, 50, 0, f // 10] for f in range(20)],
        columns=["frame", "face", "x", "y", "w", "h", "label", "cx", "cy", "side", "angle", "appearance"],
    )
    found = truth[["frame", "x", "y", "w", "h"]].assign(label=np.where(truth.frame < 10, "happy", "sad"))
    truth.to_csv(tmp_path / "truth.csv", index=False)
    found.to_csv(tmp_path / "app.csv", index=False)
    scores = score_run(tmp_path / "truth.csv", tmp_path / "app.csv")
    assert scores["faces"] == 20 and scores["distinct_faces"] == 2 and scores["accuracy_end_to_end"] == 0.5
    assert (scores["end_to_end_low"], scores["end_to_end_high"]) == (0.0, 1.0)  # two faces decide nothing
    truth.drop(columns="appearance").to_csv(tmp_path / "old.csv", index=False)
    per_frame = score_run(tmp_path / "old.csv", tmp_path / "app.csv")
    assert per_frame["distinct_faces"] == 20
    assert 0.2 < per_frame["end_to_end_low"] < 0.5 < per_frame["end_to_end_high"] < 0.8
    assert all(isinstance(v, int | float) for v in scores.values())  # one row of numbers, as a table wants


def test_framing_cost_compares_the_same_found_faces(tmp_path):
    # 40 faces, 5 frames each; the app finds faces 0-29 and is right on 0-19; exact framing is
    # right on 0-24 and on the unfound 30-39, which must not count against the app's framing
    rows = [[f, 0, 10, 10, 50, 50, "happy", 0, 0, 50, 0, f // 5] for f in range(200)]
    truth = pd.DataFrame(
        rows, columns=["frame", "face", "x", "y", "w", "h", "label", "cx", "cy", "side", "angle", "appearance"]
    )
    found = truth[truth.appearance < 30][["frame", "x", "y", "w", "h"]]
    found = found.assign(label=np.where(truth.appearance[found.index] < 20, "happy", "sad"))
    truth.to_csv(tmp_path / "truth.csv", index=False)
    found.to_csv(tmp_path / "app.csv", index=False)
    exact = (truth.appearance < 25) | (truth.appearance >= 30)
    scores = score_run(tmp_path / "truth.csv", tmp_path / "app.csv", exact_correct=exact.to_numpy())
    assert scores["accuracy_detected"] == pytest.approx(20 / 30) and scores["false_positives"] == 0
    assert scores["framing_cost"] == pytest.approx(5 / 30, abs=1e-4)  # 25/30 - 20/30, not 35/40 - 20/30
    assert 0.0 < scores["framing_cost_low"] < 5 / 30 < scores["framing_cost_high"] < 0.4
    assert "framing_cost" not in score_run(tmp_path / "truth.csv", tmp_path / "app.csv")
    with pytest.raises(FerKerasError, match="one value per truth row"):
        score_run(tmp_path / "truth.csv", tmp_path / "app.csv", exact_correct=exact.to_numpy()[:10])


def test_face_crop_at_the_frame_edge_is_square():
    gray = np.arange(100 * 120, dtype=np.uint32).reshape(100, 120).astype(np.uint8)
    crop = face_crop(gray, FaceBox(-10, 80, 40, 40), margin=0.2)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8


def test_detect_every_n_frames_reuses_tracked_boxes(small_model_file):
    from fer_keras.app.recognizer import EmotionRecognizer

    calls = []

    def detector(frame):
        calls.append(1)
        return [FaceBox(20, 20, 60, 60)]

    recognizer = EmotionRecognizer(small_model_file, detector, detect_every=3)
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    results = [recognizer.process(frame) for _ in range(9)]
    assert len(calls) == 3  # frames 0, 3, 6
    assert all(len(r) == 1 and r[0].face_id == 0 for r in results)


@pytest.mark.parametrize("name", ["dnn", "mtcnn"])
def test_dnn_detectors_find_the_sample_face(name):
    from fer_keras.app.detect import make_detector

    detector = make_detector(name)
    boxes = detector(cv2.imread(SAMPLE))
    assert len(boxes) == 1 and boxes[0].iou(FaceBox(170, 60, 108, 108)) > 0.5
    assert detector(np.full((240, 320, 3), 90, np.uint8)) == []  # a blank frame has no face


def test_blazeface_anchor_grid_matches_its_model():
    from fer_keras.app.detect import BlazeFaceDetector, blazeface_anchors

    assert len(blazeface_anchors(128)) == 896 and len(blazeface_anchors(256)) == 896
    assert len(blazeface_anchors(192)) == 2304
    # First anchor of the 16x16 grid of the 256 model: the middle of the top-left cell, twice.
    assert np.allclose(blazeface_anchors(256)[:2], [[1 / 32, 1 / 32]] * 2)
    # on a frame's own aspect: the model's output grows with its input, and so does the grid
    assert len(blazeface_anchors(256, 256, 352)) == 16 * 22 * 2 + 8 * 11 * 6 == 1232
    detector = BlazeFaceDetector()
    assert detector.size == 256
    detector(np.zeros((480, 640, 3), np.uint8))
    assert detector.input_hw == (256, 352) and len(detector.anchors) == 1232
    detector(np.zeros((640, 360, 3), np.uint8))
    assert detector.input_hw == (480, 256)


def test_dnn_size_sets_blazefaces_input_from_the_api_and_the_command(small_model_file, capsys):
    """BlazeFace's input size (320 by default, its model's 256 on request) reaches the detector,
    and both find the same face."""
    from fer_keras.app.recognizer import EmotionRecognizer

    small = cv2.resize(cv2.imread(SAMPLE), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[200:456, 300:556] = small  # the face is about 52 pixels wide
    default, native = EmotionRecognizer(small_model_file), EmotionRecognizer(small_model_file, dnn_size=256)
    (a,), (b,) = default.analyze(frame), native.analyze(frame)
    assert default.detector.input_hw == (320, 448) and native.detector.input_hw == (256, 352)
    assert a.box.iou(b.box) > 0.8 and a.box.iou(FaceBox(387, 237, 52, 52)) > 0.6
    assert main(["--source", SAMPLE, "--model", str(small_model_file), "--dnn-size", "256", "--no-display"]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]) == 1


def test_blazeface_on_onnx_runtime_finds_what_tflite_finds(tmp_path, monkeypatch):
    """The ONNX Runtime path (converted once from the .tflite, cached by hash) gives TFLite's faces."""
    from fer_keras.app.detect import BlazeFaceDetector

    monkeypatch.setenv("FER_KERAS_CACHE", str(tmp_path))
    sample = Path(__file__).resolve().parents[1] / "fer_keras" / "samples" / "astronaut.jpg"
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[40:440, 120:520] = cv2.resize(cv2.imread(str(sample)), (400, 400))
    lite, onnx = BlazeFaceDetector(runtime="tflite"), BlazeFaceDetector(runtime="onnx")
    assert (lite.runtime, onnx.runtime) == ("tflite", "onnx")
    assert BlazeFaceDetector().runtime == "onnx"  # "auto" takes ONNX Runtime when it is installed
    for shape in ((480, 640), (360, 640)):  # the input follows each frame's aspect
        a, b = lite(frame[: shape[0]]), onnx(frame[: shape[0]])
        assert len(a) == len(b) == 1
        assert np.allclose([a[0].x, a[0].y, a[0].w, a[0].h], [b[0].x, b[0].y, b[0].w, b[0].h], atol=1)
        assert np.allclose(a[0].keypoints, b[0].keypoints, atol=0.5) and abs(a[0].score - b[0].score) < 1e-3
    assert len(list(tmp_path.glob("face_detection_back-*.onnx"))) == 1  # converted once
    # its worker threads sleep between runs: spinning ones would take the classifier's cores
    assert onnx.net.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_blazeface_finds_the_pasted_faces_of_a_video(face_video, small_model_file, tmp_path, capsys):
    video, truth = face_video
    out_csv = tmp_path / "dnn.csv"
    argv = ["--source", str(video), "--model", str(small_model_file), "--detector", "dnn", "--no-display"]
    assert main([*argv, "--csv", str(out_csv)]) == 0
    assert re.fullmatch(r"frames=45 fps=\d+\.\d faces=\d+", capsys.readouterr().out.strip().splitlines()[-1])
    # 6 pasted test crops over 45 frames; the full benchmark measures ~0.98 on 1,200 faces.
    assert score_run(truth, out_csv)["recall"] >= 0.8


def test_overlay_panels_stay_inside_the_frame_and_apart():
    """Two faces side by side at 640x480: each panel is whole, inside the frame, clear of the other."""
    from fer_keras.app.live import _panel_place, _panel_size, draw
    from fer_keras.app.recognizer import Emotion, Face

    frame = np.full((480, 640, 3), 120, np.uint8)
    probs = np.array([0.02, 0.01, 0.01, 0.89, 0.02, 0.04, 0.01], np.float32)
    faces = [
        Face(**vars(Emotion.from_probs(probs)), box=FaceBox(467, 143, 60, 60), face_id=0),
        Face(**vars(Emotion.from_probs(probs)), box=FaceBox(127, 110, 49, 49), face_id=1),
    ]
    taken = [(f.box.x, f.box.y, f.box.x + f.box.w, f.box.y + f.box.h) for f in faces]
    rects = []
    for face in sorted(faces, key=lambda f: f.box.x):
        rects.append(_panel_place(frame, face.box, taken + rects))
    width, height = _panel_size()
    for x0, y0, x1, y1 in rects:
        assert (x1 - x0, y1 - y0) == (width, height) and x0 >= 0 and y0 >= 0 and x1 <= 640 and y1 <= 480
    a, b = rects
    assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]  # no overlap
    assert width >= 160  # room for "surprise", a bar and "100%" at a readable size
    drawn = draw(frame.copy(), faces)
    assert (drawn != frame).any()


def test_a_camera_is_read_from_the_first_frame_asked_for():
    """Opening a camera checks it; reading starts on iteration, so the seconds a model takes to load
    between the two are not counted as dropped frames, and only the newest frame is handed on."""
    from fer_keras.app.capture import LatestFrameReader

    class FakeCamera:
        def __init__(self, frames):
            self.left, self.reads, self.released = frames, 0, False

        def read(self):
            self.reads += 1
            time.sleep(0.002)
            if self.reads > self.left:
                return False, None
            return True, np.full((2, 2, 3), self.reads, np.uint8)

        def release(self):
            self.released = True

    camera = FakeCamera(50)
    reader = LatestFrameReader(camera)
    time.sleep(0.05)
    assert camera.reads == 0 and reader.dropped == 0  # not started: nothing read, nothing dropped
    seen = []
    for frame in reader.start():
        seen.append(int(frame[0, 0, 0]))
        time.sleep(0.01)  # slower than the camera: stale frames are skipped
    reader.close()
    assert camera.released and seen == sorted(seen) and len(seen) < 50
    assert reader.dropped == 50 - len(seen)
