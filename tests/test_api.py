"""The public Python API: ``from fer_keras import EmotionRecognizer``, on real photos, crops and videos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_keras import EMOTIONS, EmotionRecognizer, FerKerasError
from fer_keras.app.synthetic import make_face_video
from fer_keras.data.loading import load_faces

SAMPLE = Path(__file__).resolve().parents[1] / "fer_keras" / "samples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def shipped():
    return EmotionRecognizer()  # the shipped model and the BlazeFace detector


@pytest.mark.smoke
def test_analyze_takes_a_path_an_array_a_grayscale_array_and_a_pil_image(shipped):
    from PIL import Image

    bgr = cv2.imread(str(SAMPLE))
    inputs = {
        "path": str(SAMPLE),
        "pathlib": SAMPLE,
        "bgr": bgr,
        "gray": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        "bgra": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        "pil": Image.open(SAMPLE),
    }
    results = {name: shipped.analyze(image) for name, image in inputs.items()}
    for name, faces in results.items():
        assert [f.label for f in faces] == ["happy"], name
    face = results["path"][0]
    assert face.confidence == max(face.probs.values()) and list(face.probs) == list(EMOTIONS)
    assert abs(sum(face.probs.values()) - 1) < 1e-3
    assert 0 < face.box.w < bgr.shape[1] and face.box.x >= 0
    # the array and PIL inputs are the same pixels as the file: the same answer
    assert results["bgr"][0].probs == face.probs and results["pil"][0].probs == pytest.approx(face.probs, abs=1e-6)


def test_face_json_is_the_live_apps_schema(shipped, capsys):
    from fer_keras.live import main

    assert main(["--source", str(SAMPLE), "--detector", "dnn", "--no-display"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shipped.analyze(SAMPLE)[0].to_dict() == printed


def test_classify_takes_48x48_crops(small_fer, small_model_file):
    recognizer = EmotionRecognizer(small_model_file, detector="haar")
    faces = load_faces(small_fer / "test")
    emotions = recognizer.classify(faces.images[:5])
    assert len(emotions) == 5 and all(e.label in EMOTIONS for e in emotions)
    again = recognizer.classify(faces.images[:5, :, :, None])  # (N, 48, 48, 1) works too
    assert [e.probs for e in again] == [e.probs for e in emotions]
    assert recognizer.classify(faces.images[0])[0].probs == emotions[0].probs  # one crop
    with pytest.raises(FerKerasError, match=r"crops must be \(N, 48, 48\)"):
        recognizer.classify(np.zeros((2, 64, 64), np.uint8))


def test_video_yields_tracked_faces_per_frame(small_fer, small_model_file, tmp_path):
    video, truth = tmp_path / "faces.mp4", tmp_path / "truth.csv"
    make_face_video(load_faces(small_fer / "test"), video, truth, frames=12, seed=1)
    recognizer = EmotionRecognizer(small_model_file, detector="dnn")
    frames = list(recognizer.video(video))
    assert [f.index for f in frames] == list(range(12))
    assert frames[1].time_s > frames[0].time_s == 0
    ids = {face.face_id for frame in frames for face in frame.faces}
    assert ids and len(ids) <= 4  # the same faces keep their ids across frames
    assert len(list(recognizer.video(video, max_frames=3))) == 3


@pytest.mark.parametrize(
    "image,message",
    [
        ("no/such/photo.jpg", "does not exist"),
        (np.zeros((40, 40, 3), np.float32), "must be uint8"),
        (np.zeros((4, 40, 40, 3), np.uint8), "must be (H, W) grayscale or (H, W, 3) BGR"),
    ],
)
def test_bad_images_are_one_line_errors(small_model_file, image, message):
    recognizer = EmotionRecognizer(small_model_file, detector="haar")
    with pytest.raises(FerKerasError, match=message.replace("(", r"\(").replace(")", r"\)")):
        recognizer.analyze(image)


def test_a_file_that_is_not_an_image(tmp_path, small_model_file):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(FerKerasError, match="cannot read image"):
        EmotionRecognizer(small_model_file, detector="haar").analyze(text)


def test_bad_options(small_model_file):
    with pytest.raises(FerKerasError, match="unknown detector 'yolo'"):
        EmotionRecognizer(small_model_file, detector="yolo")
    with pytest.raises(FerKerasError, match="smoothing"):
        EmotionRecognizer(small_model_file, detector="haar", smoothing=1.0)


def test_importing_the_package_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, fer_keras; assert 'tensorflow' not in sys.modules; print(fer_keras.__all__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "EmotionRecognizer" in done.stdout, done.stderr


@pytest.mark.smoke
def test_the_api_keeps_tensorflows_start_up_lines_off_stderr_unless_asked(tmp_path):
    """A library user's stderr stays theirs: no oneDNN, CUDA or XNNPACK lines from loading the model;
    FER_KERAS_VERBOSE=1 shows them, and what the program itself writes to stderr always passes."""
    import os
    import subprocess
    import sys

    photo = Path(__file__).resolve().parents[1] / "fer_keras" / "samples" / "astronaut.jpg"
    code = (
        "import sys\nfrom fer_keras import EmotionRecognizer\n"
        "print('before', file=sys.stderr, flush=True)\n"
        f"faces = EmotionRecognizer().analyze({str(photo)!r})\n"
        "print('after', file=sys.stderr)\nprint([f.label for f in faces])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "FER_KERAS_VERBOSE")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['happy']"
    assert done.stderr == "before\nafter\n"
    verbose = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "FER_KERAS_VERBOSE": "1"},
        cwd=tmp_path,
    )
    assert verbose.returncode == 0 and "oneDNN" in verbose.stderr


def test_each_face_is_classified_in_every_framing_and_its_mirror(shipped):
    recognizer = EmotionRecognizer()
    assert recognizer.views == 4 and recognizer.detect_every == 3
    boxes, crops = recognizer.locate(cv2.imread(str(SAMPLE)))
    assert len(boxes) == 1 and crops.shape == (4, 48, 48)
    # keypoint framing and box framing differ; each is followed by its mirror image
    assert np.array_equal(crops[1], crops[0][:, ::-1]) and np.array_equal(crops[3], crops[2][:, ::-1])
    assert not np.array_equal(crops[0], crops[2])
    probs = recognizer.predictor(crops)
    face = recognizer.analyze(SAMPLE)[0]
    np.testing.assert_allclose(face.vector(), probs.mean(0), atol=1e-5)
    single = EmotionRecognizer(detector="haar", flip=False)
    assert single.views == 1 and single.locate(cv2.imread(str(SAMPLE)))[1].shape[0] == len(single.analyze(SAMPLE))


def test_a_shipped_model_runs_its_savedmodel_where_tensorflow_sees_a_gpu(monkeypatch):
    """runtime="auto": TFLite on a CPU, the SavedModel through TensorFlow where a GPU (CUDA, Metal)
    is visible; "tflite" and "tensorflow" choose. The device list is faked: no GPU here."""
    import tensorflow as tf

    from fer_keras.inference.predictor import runtime_model, shipped_model

    gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [gpu] if kind == "GPU" else real(kind))
    assert runtime_model(None) == shipped_model()  # the SavedModel folder
    assert runtime_model("mobilenetv2_ferplus") == shipped_model("", "mobilenetv2_ferplus")
    assert runtime_model(None, "tflite") == shipped_model(".tflite")
    with_gpu = EmotionRecognizer(detector="haar")
    assert with_gpu.predictor.kind == "savedmodel"
    assert EmotionRecognizer(detector="haar", runtime="tflite").predictor.kind == "tflite"

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [] if kind == "GPU" else real(kind))
    assert runtime_model(None) == shipped_model(".tflite")
    assert runtime_model(None, "tensorflow") == shipped_model()
    assert EmotionRecognizer(detector="haar").predictor.kind == "tflite"
    assert runtime_model("some/model.keras", "tensorflow") == "some/model.keras"  # not a shipped one: as given
    with pytest.raises(FerKerasError, match="unknown runtime 'cuda'"):
        runtime_model(None, "cuda")


def test_a_shipped_name_without_its_savedmodel_folder_loads_its_keras_file(small_model_file, tmp_path, monkeypatch):
    """The wheel leaves out the large models' SavedModel folders: a name then means the .keras file
    (through TensorFlow) or the .tflite file (on the CPU)."""
    import shutil

    from fer_keras.inference import predictor as pred

    shutil.copy(pred.shipped_model(".json"), tmp_path)
    shutil.copy(pred.shipped_model(".json"), tmp_path / "big.json")
    shutil.copy(small_model_file, tmp_path / "big.keras")
    monkeypatch.setattr(pred, "shipped_models_dir", lambda: tmp_path)
    assert pred.resolve_model_path("big") == tmp_path / "big.keras"
    assert pred.runtime_model("big", "tensorflow") == tmp_path / "big.keras"
    assert pred.runtime_model("big", "tflite") == tmp_path / "big.keras"  # no .tflite shipped: the .keras
    assert EmotionRecognizer(model="big", detector="haar").predictor.kind == "keras"
    from fer_keras.inference.export import export

    export(tmp_path / "big.keras", "tflite", tmp_path / "big.tflite")
    assert pred.runtime_model("big", "tflite") == tmp_path / "big.tflite"
    assert pred.keras_file_of("big") == tmp_path / "big.keras"  # what export starts from
    with pytest.raises(FerKerasError, match="does not exist"):
        pred.resolve_model_path("small")  # not a shipped name: a path, and there is none


def test_the_commands_take_the_runtime(monkeypatch, capsys):
    from fer_keras.live import main

    photo = Path(__file__).resolve().parents[1] / "fer_keras" / "samples" / "astronaut.jpg"
    assert main(["--source", str(photo), "--runtime", "tensorflow", "--detector", "haar"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "happy"
    assert main(["--source", str(photo), "--runtime", "gpu"]) == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err
