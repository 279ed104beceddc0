"""Folder, CSV and FER+ readers on real FER2013 images, and every kind of bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_keras.contract import EMOTIONS
from fer_keras.data.loading import load_faces, load_splits
from fer_keras.data.sources import decode_image
from fer_keras.errors import FerKerasError

pytestmark = pytest.mark.smoke  # also run on the TF 2.19 line


def test_folder_layout_keeps_fer_order_and_official_subsets(small_fer):
    faces = load_faces(small_fer)
    assert faces.images.shape == (7 * 92, 48, 48) and faces.images.dtype == np.uint8
    assert faces.class_counts().tolist() == [92] * 7
    # Labels come from folder names, not from the alphabetical folder order.
    for name, label in zip(faces.names, faces.labels):
        assert Path(name).parent.name == EMOTIONS[label]
    assert set(faces.subsets[faces.splits == "train"]) == {"Training"}
    assert set(faces.subsets[faces.splits == "test"]) == {"PublicTest"}


def test_single_split_folder_gets_seeded_stratified_val(small_fer, tmp_path):
    single = tmp_path / "single"
    shutil.copytree(small_fer / "train", single)
    splits = load_splits(single, val_fraction=0.25, seed=3)
    assert len(splits.test) == 0
    assert len(splits.val) == 7 * 20 and splits.val.class_counts().tolist() == [20] * 7
    again = load_splits(single, val_fraction=0.25, seed=3)
    assert (again.val.names == splits.val.names).all()


def test_val_is_carved_from_train_never_from_test(small_fer):
    splits = load_splits(small_fer, val_fraction=0.1, seed=0)
    assert all(n.startswith("train/") for n in splits.val.names)
    assert not set(splits.val.names) & set(splits.train.names)
    assert len(splits.test) == 7 * 12


def test_aliases_and_dropped_classes(tiny_fer):
    (tiny_fer / "train" / "angry").rename(tiny_fer / "train" / "anger")
    contempt = tiny_fer / "train" / "contempt"
    shutil.copytree(tiny_fer / "train" / "sad", contempt)
    faces = load_faces(tiny_fer)
    assert faces.class_counts()[0] == 8  # anger -> angry
    assert faces.skipped == {"dropped class contempt": 6}


def _write_csv(faces, path: Path, usage=True) -> None:
    rows = ["emotion,pixels" + (",Usage" if usage else "")]
    for image, label, subset in zip(faces.images, faces.labels, faces.subsets):
        pixels = " ".join(map(str, image.ravel()))
        rows.append(f"{label},{pixels}" + (f",{subset}" if usage else ""))
    path.write_text("\n".join(rows) + "\n")


def test_kaggle_csv_matches_the_folder_images(tiny_fer, tmp_path):
    faces = load_faces(tiny_fer)
    csv = tmp_path / "fer2013.csv"
    _write_csv(faces, csv)
    from_csv = load_faces(csv)
    assert (from_csv.images == faces.images).all()
    assert (from_csv.labels == faces.labels).all()
    assert (from_csv.splits == faces.splits).all()


def test_ferplus_majority_vote_relabels_and_drops(tiny_fer, tmp_path):
    faces = load_faces(tiny_fer)
    csv = tmp_path / "fer2013.csv"
    _write_csv(faces, csv)
    columns = [
        "neutral",
        "happiness",
        "surprise",
        "sadness",
        "anger",
        "disgust",
        "fear",
        "contempt",
        "unknown",
        "NF",
    ]
    lines = ["Usage,Image name," + ",".join(columns)]
    for i in range(len(faces)):
        votes = [0] * 10
        if i == 0:
            votes[7] = 6  # contempt wins: dropped
        elif i == 1:
            votes[0] = votes[1] = 5  # tie: dropped
        else:
            votes[1] = 8  # happiness wins
        lines.append("Training,x.png," + ",".join(map(str, votes)))
    plus = tmp_path / "fer2013new.csv"
    plus.write_text("\n".join(lines) + "\n")
    relabelled = load_faces(csv, ferplus=plus)
    assert len(relabelled) == len(faces) - 2
    assert set(relabelled.labels.tolist()) == {EMOTIONS.index("happy")}
    assert relabelled.skipped == {"FER+ contempt": 1, "FER+ tie": 1}


# ----------------------------------------------------------------------------- bad input


def test_truncated_jpeg_is_named(tiny_fer):
    victim = sorted((tiny_fer / "train" / "happy").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:300])
    with pytest.raises(FerKerasError, match=f"{victim.name} is corrupt, truncated"):
        load_faces(tiny_fer)


def test_truncated_jpeg_skipped_and_counted(tiny_fer):
    victim = sorted((tiny_fer / "train" / "happy").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:300])
    faces = load_faces(tiny_fer, on_error="skip")
    assert faces.skipped == {"corrupt image": 1}
    assert len(faces) == 7 * 8 - 1


def test_text_file_posing_as_jpeg(tiny_fer):
    (tiny_fer / "train" / "sad" / "notes.jpg").write_text("not an image")
    with pytest.raises(FerKerasError, match="notes.jpg is corrupt"):
        load_faces(tiny_fer)


def test_non_image_file(tiny_fer):
    (tiny_fer / "train" / "sad" / "labels.txt").write_text("x")
    with pytest.raises(FerKerasError, match="labels.txt is not an image file"):
        load_faces(tiny_fer)
    assert load_faces(tiny_fer, on_error="skip").skipped == {"not an image file": 1}


def test_unknown_class_folder(tiny_fer):
    (tiny_fer / "train" / "sad").rename(tiny_fer / "train" / "sadd")
    with pytest.raises(FerKerasError, match="unknown emotion class 'sadd'"):
        load_faces(tiny_fer)


def test_empty_split(tiny_fer):
    shutil.rmtree(tiny_fer / "test")
    (tiny_fer / "test").mkdir()
    with pytest.raises(FerKerasError, match="test is empty"):
        load_faces(tiny_fer)


def test_missing_path_says_how_to_get_fer2013(tmp_path):
    with pytest.raises(FerKerasError, match="does not exist; download FER2013 from Kaggle"):
        load_faces(tmp_path / "nope")


def test_csv_wrong_pixel_count_names_the_row(tmp_path):
    good = " ".join(["7"] * 2304)
    csv = tmp_path / "fer2013.csv"
    csv.write_text(f"emotion,pixels,Usage\n3,{good},Training\n4,1 2 3,Training\n")
    with pytest.raises(FerKerasError, match="row 3: expected 2304 pixel values"):
        load_faces(csv)
    faces = load_faces(csv, on_error="skip")
    assert len(faces) == 1 and faces.skipped == {"bad pixel count": 1}


def test_csv_missing_column(tmp_path):
    csv = tmp_path / "fer2013.csv"
    csv.write_text("emotion,Usage\n3,Training\n")
    with pytest.raises(FerKerasError, match="no 'pixels' column"):
        load_faces(csv)


def test_decode_resizes_other_sizes():
    import cv2

    ok, png = cv2.imencode(".png", np.full((100, 80, 3), 200, np.uint8))
    image = decode_image(png.tobytes())
    assert image.shape == (48, 48) and image.dtype == np.uint8 and int(image.mean()) in (199, 200, 201)


def test_extra_dataset_goes_into_training_only(small_fer, tiny_fer):
    base = load_splits(small_fer, seed=0)
    merged = load_splits(small_fer, seed=0, extra=[tiny_fer / "train"])
    assert len(merged.train) == len(base.train) + 7 * 6
    assert len(merged.val) == len(base.val) and len(merged.test) == len(base.test)
    assert set(merged.train.splits) == {"train"}


def test_dedupe_drops_leaks_and_label_conflicts(tiny_fer):
    happy = sorted((tiny_fer / "train" / "happy").iterdir())
    shutil.copy2(happy[0], tiny_fer / "test" / "happy" / "PublicTest_leak.jpg")  # a train image leaks into test
    shutil.copy2(happy[1], tiny_fer / "train" / "sad" / "Training_conflict.jpg")  # same face, two labels
    shutil.copy2(happy[2], tiny_fer / "train" / "happy" / "Training_copy.jpg")  # an exact repeat
    plain = load_splits(tiny_fer, val_fraction=0.01, seed=0)
    clean = load_splits(tiny_fer, val_fraction=0.01, seed=0, dedupe=True)
    dropped = len(plain.train) - len(clean.train)
    assert clean.train.skipped["dedupe: conflicting labels"] >= 1
    assert dropped == sum(v for k, v in clean.train.skipped.items() if k.startswith("dedupe"))
    from fer_keras.data.loading import pixel_hashes

    test_hashes = set(pixel_hashes(clean.test.images))
    assert not test_hashes & set(pixel_hashes(clean.train.images))
    train_hashes = pixel_hashes(clean.train.images)
    assert len(set(train_hashes)) == len(train_hashes)
