"""Recordings at scale: per-file outputs, the run's table, resume, bad input, and the three ways to run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_keras.analyze import main
from fer_keras.app.analyze import AnalyzeOptions, analyze_files, collect_inputs, output_names
from fer_keras.app.live import CSV_HEADER
from fer_keras.app.synthetic import make_face_video
from fer_keras.contract import EMOTIONS
from fer_keras.data.loading import load_faces
from fer_keras.errors import FerKerasError

SAMPLE = Path(__file__).resolve().parents[1] / "fer_keras" / "samples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def recordings(small_fer, tmp_path_factory) -> Path:
    """Two short labelled videos (one in a subfolder) and a photo."""
    folder = tmp_path_factory.mktemp("recordings")
    (folder / "day2").mkdir()
    faces = load_faces(small_fer / "test")
    make_face_video(faces, folder / "interview.mp4", folder / "truth1.csv", frames=45, seed=3)
    make_face_video(faces, folder / "day2" / "class.mp4", folder / "truth2.csv", frames=30, scene="small", seed=4)
    shutil.copy(SAMPLE, folder / "photo.jpg")
    return folder


def options(model) -> AnalyzeOptions:
    return AnalyzeOptions(model=str(model))


def frames_tables(out: Path) -> dict[str, pd.DataFrame]:
    return {d.name: pd.read_csv(d / "frames.csv") for d in sorted(out.iterdir()) if (d / "frames.csv").exists()}


def test_each_file_gets_its_tables_and_timeline_and_the_run_its_summary(recordings, small_model_file, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(recordings / "interview.mp4"), str(recordings / "day2"), str(recordings / "*.jpg")]
    assert main([*argv, "--out", str(out), "--model", str(small_model_file), "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    counts = json.loads(last)  # the last line is machine-readable
    assert counts["files"] == 3 and counts["analyzed"] == 3 and counts["failed"] == 0
    assert counts["frames"] == 45 + 30 + 1 and counts["seconds"] > 0

    for name, frames in (("interview", 45), ("class", 30)):
        table = pd.read_csv(out / name / "frames.csv")
        assert list(table.columns) == CSV_HEADER  # the live app's schema
        assert table["frame"].max() < frames
        faces = pd.read_csv(out / name / "faces.csv")
        assert sorted(faces["face_id"]) == sorted(table["face_id"].unique())
        assert faces["frames"].sum() == len(table)
        assert np.allclose(faces["seconds"], faces["frames"] / 30.0, atol=1e-3)
        leads = faces[[f"lead_{e}" for e in EMOTIONS]].to_numpy()
        assert np.allclose(leads.sum(1), 1.0, atol=1e-3)
        means = faces[[f"mean_{e}" for e in EMOTIONS]].to_numpy()
        assert np.allclose(means.sum(1), 1.0, atol=2e-3)
        assert all(faces.loc[i, f"lead_{faces.loc[i, 'dominant']}"] == leads[i].max() for i in range(len(faces)))
        picture = cv2.imread(str(out / name / "timeline.png"))
        assert picture is not None and picture.shape[1] >= 800
    assert not (out / "photo" / "timeline.png").exists()  # one frame has no timeline
    assert len(pd.read_csv(out / "photo" / "frames.csv")) == 1

    run = pd.read_csv(out / "faces.csv")
    assert run.columns[0] == "file" and set(run["file"]) == {
        str((recordings / "interview.mp4").resolve()),
        str((recordings / "day2" / "class.mp4").resolve()),
        str((recordings / "photo.jpg").resolve()),
    }
    assert pd.read_parquet(out / "faces.parquet").equals(run)
    summary = (out / "summary.md").read_text()
    assert "3 files: 3 analyzed now" in summary and "| interview.mp4 | analyzed | 45 |" in summary


def test_a_second_run_skips_the_files_already_done(recordings, small_model_file, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = analyze_files([recordings], out, options(small_model_file), progress=False)
    assert first.counts()["analyzed"] == 3
    before = {p: p.stat().st_mtime_ns for p in out.rglob("frames.csv")}

    def no_work(*args, **kwargs):
        raise AssertionError("a finished file was analyzed again")

    import fer_keras.app.analyze as analyze

    with monkeypatch.context() as patch:
        patch.setattr(analyze, "FileAnalyzer", no_work)
        again = analyze_files([recordings], out, options(small_model_file), progress=False)
    assert again.counts() | {"seconds": 0} == {**first.counts(), "analyzed": 0, "done": 3, "seconds": 0}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("frames.csv")} == before

    # a changed file, or other options, is analyzed again; the others stay done
    photo = recordings / "photo.jpg"
    stamp = photo.stat()
    try:
        import os

        os.utime(photo, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
        changed = analyze_files([recordings], out, options(small_model_file), progress=False)
    finally:
        os.utime(photo, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert changed.counts()["analyzed"] == 1 and changed.counts()["done"] == 2
    other = analyze_files([recordings / "photo.jpg"], out, AnalyzeOptions(str(small_model_file), smoothing=0.2))
    assert other.counts()["analyzed"] == 1


def test_an_interrupted_file_leaves_nothing_half_written(recordings, small_model_file, tmp_path, monkeypatch):
    out = tmp_path / "out"
    import fer_keras.app.analyze as analyze

    real = analyze.face_summary

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(analyze, "face_summary", interrupted)
    with pytest.raises(KeyboardInterrupt):
        analyze_files([recordings / "interview.mp4"], out, options(small_model_file), progress=False)
    assert not (out / "interview").exists()  # no folder that looks finished
    monkeypatch.setattr(analyze, "face_summary", real)
    result = analyze_files([recordings / "interview.mp4"], out, options(small_model_file), progress=False)
    assert result.counts()["analyzed"] == 1 and (out / "interview" / "done.json").exists()
    assert not list(out.glob(".*partial*"))  # the interrupted run's leftovers are gone


def test_bad_inputs_are_named_and_counted_and_the_rest_goes_on(recordings, small_model_file, tmp_path, capfd):
    bad = tmp_path / "bad"
    (bad / "empty").mkdir(parents=True)
    good = recordings / "interview.mp4"
    data = good.read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 2])  # its index (at the end) is gone
    (bad / "notes.txt").write_text("not media")
    (bad / "fake.mp4").write_text("not a video either")
    zero = cv2.VideoWriter(str(bad / "zero.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 64))
    zero.release()  # a container with no frames
    cut = bad / "cut.avi"
    writer = cv2.VideoWriter(str(cut), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    for i in range(40):
        writer.write(np.full((240, 320, 3), 40 + i, np.uint8))
    writer.release()
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size * 2 // 3])  # frames stop part way
    capfd.readouterr()
    argv = [
        str(good),
        str(bad / "empty"),
        str(bad / "nothing-*.mp4"),
        str(bad / "truncated.mp4"),
        str(bad / "zero.avi"),
        str(bad / "notes.txt"),
        str(bad / "fake.mp4"),
        str(cut),
        "--out",
        str(tmp_path / "out"),
        "--model",
        str(small_model_file),
        "--no-progress",
    ]
    assert main(argv) == 0
    captured = capfd.readouterr()
    counts = json.loads(captured.out.strip().splitlines()[-1])
    assert counts["analyzed"] == 2 and counts["failed"] == 3 and counts["skipped"] == 3
    err = captured.err
    assert "Traceback" not in err
    assert f"skipped {bad / 'empty'}: folder holds no videos or images" in err
    assert f"skipped {bad / 'nothing-*.mp4'}: matches no video or image" in err
    assert f"skipped {bad / 'notes.txt'}: not a video or image" in err
    for name in ("truncated.mp4", "zero.avi", "fake.mp4"):
        line = next(line for line in err.splitlines() if name in line)
        assert line.startswith("failed ") and ("cannot read video" in line or "no frames" in line), line
    assert any(line.startswith("warning ") and "cut.avi" in line and "truncated" in line for line in err.splitlines())
    assert "| fake.mp4 | failed: " in (tmp_path / "out" / "summary.md").read_text()


def test_nothing_to_analyze_and_an_unwritable_out_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: nothing to analyze:") and "\n" not in err
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    shutil.copy(SAMPLE, tmp_path / "photo.jpg")
    assert main([str(tmp_path / "photo.jpg"), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot write to --out {blocker / 'out'}") and "\n" not in err
    assert main([str(tmp_path / "photo.jpg"), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_inputs_are_collected_once_in_order_and_named_apart(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(SAMPLE, tmp_path / sub / "same.jpg")
    (tmp_path / ".hidden").mkdir()
    shutil.copy(SAMPLE, tmp_path / ".hidden" / "x.jpg")
    files, skipped = collect_inputs([tmp_path, tmp_path / "a" / "same.jpg", str(tmp_path / "*" / "*.jpg")])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a/same.jpg", "b/same.jpg"] and not skipped
    names = output_names(files)
    assert len(set(names)) == 2 and all(n.startswith("same-") for n in names)


def test_the_python_function_takes_the_commands_options(recordings, small_model_file, tmp_path):
    import fer_keras

    summary = fer_keras.analyze_files(
        recordings / "photo.jpg", tmp_path / "out", model=str(small_model_file), detector="haar", progress=False
    )
    assert summary.counts()["analyzed"] == 1
    with pytest.raises(FerKerasError, match="unknown analyze option"):
        fer_keras.analyze_files(recordings, tmp_path / "out", colour="red")


@pytest.mark.slow
def test_two_worker_processes_write_the_same_rows(recordings, small_model_file, tmp_path):
    one = analyze_files([recordings], tmp_path / "one", options(small_model_file), progress=False)
    two = analyze_files([recordings], tmp_path / "two", options(small_model_file), workers=2, progress=False)
    assert one.counts()["frames"] == two.counts()["frames"] == 76
    assert_same_rows(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
def test_ray_on_a_local_instance_writes_the_same_rows(recordings, small_model_file, tmp_path):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'fer_keras[ray]')")
    analyze_files([recordings], tmp_path / "one", options(small_model_file), progress=False)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024 * 1024, log_to_driver=False)
    try:
        summary = analyze_files([recordings], tmp_path / "ray", options(small_model_file), ray=True, progress=False)
    finally:
        ray.shutdown()
    assert summary.counts()["analyzed"] == 3
    assert_same_rows(tmp_path / "one", tmp_path / "ray")


def assert_same_rows(a: Path, b: Path) -> None:
    left, right = frames_tables(a), frames_tables(b)
    assert left.keys() == right.keys() and len(left) == 3
    for name in left:
        x, y = left[name], right[name]
        assert x.drop(columns=[c for c in x if c.startswith("p_")]).equals(
            y.drop(columns=[c for c in y if c.startswith("p_")])
        )
        probs = [c for c in x if c.startswith("p_")]
        assert np.allclose(x[probs].to_numpy(), y[probs].to_numpy(), atol=1e-6, rtol=0), name


def test_the_command_answers_help_without_tensorflow():
    code = (
        "import sys\nfrom fer_keras.analyze import main\n"
        "try: main(['--help'])\nexcept SystemExit: pass\n"
        "assert 'tensorflow' not in sys.modules and 'ray' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
