"""Decode once: the content-hash cache returns the same arrays and notices any change."""

from fer_keras.data.loading import LoadReport, load_faces


def test_second_load_comes_from_cache_with_identical_arrays(tiny_fer, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_KERAS_CACHE", str(tmp_path / "empty-cache"))
    first, second = LoadReport(), LoadReport()
    a = load_faces(tiny_fer, report=first)
    b = load_faces(tiny_fer, report=second)
    assert not first.from_cache and second.from_cache
    assert first.key == second.key
    assert "decode" in first.seconds and "decode" not in second.seconds
    for field in ("images", "labels", "splits", "subsets", "names"):
        assert (getattr(a, field) == getattr(b, field)).all()


def test_changed_image_changes_the_key(tiny_fer, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_KERAS_CACHE", str(tmp_path / "empty-cache"))
    before = LoadReport()
    load_faces(tiny_fer, report=before)
    victim = sorted((tiny_fer / "train" / "fear").iterdir())[0]
    other = sorted((tiny_fer / "train" / "fear").iterdir())[1]
    victim.write_bytes(other.read_bytes())
    after = LoadReport()
    faces = load_faces(tiny_fer, report=after)
    assert after.key != before.key and not after.from_cache
    assert len(faces) == 7 * 8
