"""``python -m fer_keras.data inspect``: counts and the leakage / conflict report."""

import shutil

from fer_keras.data.__main__ import main


def test_inspect_counts_and_finds_leaks_and_conflicts(tiny_fer, capsys):
    train_happy = sorted((tiny_fer / "train" / "happy").iterdir())
    shutil.copy2(train_happy[0], tiny_fer / "test" / "happy" / "PublicTest_leak.jpg")  # leak
    shutil.copy2(train_happy[1], tiny_fer / "train" / "sad" / "Training_conflict.jpg")  # conflict
    assert main(["inspect", str(tiny_fer)]) == 0
    out = capsys.readouterr().out
    assert "total             43        15        58" in out
    assert "train also in test: 1 images (leakage)" in out
    assert "conflicting labels: 1 groups, 2 images" in out


def test_inspect_bad_path_is_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    # inspect takes the path as its argument: the hint says so, not --data
    assert "data inspect PATH" in err and "--data" not in err


def test_inspect_full_fer2013(fer_root, capsys):
    assert main(["inspect", str(fer_root)]) == 0
    out = capsys.readouterr().out
    assert "28,709" in out and "3,589" in out and "32,298" in out
    assert "leakage" in out
