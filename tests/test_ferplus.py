"""FER+ votes on the folder layout: path matching, the protocol's labels and drops, the three
training modes' targets, and an 8-class model through train, evaluate, live, export and the API."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_keras.contract import EMOTIONS, FERPLUS_EMOTIONS, class_names
from fer_keras.data import ferplus
from fer_keras.data.loading import load_faces, load_splits
from fer_keras.errors import FerKerasError

COLUMNS = list(ferplus.VOTE_COLUMNS)  # neutral happiness surprise sadness anger disgust fear contempt unknown NF


def votes_row(**counts: int) -> list[int]:
    return [counts.get(c, 0) for c in COLUMNS]


# a hand-made table: what each row should become
TABLE = np.array(
    [
        votes_row(happiness=8, neutral=2),  # happy, clear
        votes_row(anger=5, disgust=4, fear=1),  # angry; fear's single vote is an outlier
        votes_row(contempt=6, neutral=4),  # contempt: an 8th class
        votes_row(sadness=4, neutral=4, fear=2),  # tie: dropped
        votes_row(unknown=6, neutral=4),  # majority unknown: dropped
        votes_row(NF=10),  # not a face: dropped
        votes_row(surprise=3, fear=3, unknown=3, happiness=1),  # a three-way tie: dropped
    ],
    dtype=np.float32,
)


def test_majority_labels_and_the_reasons_for_dropping():
    labels, reasons = ferplus.majority(TABLE)
    assert [FERPLUS_EMOTIONS[i] if i >= 0 else None for i in labels] == [
        "happy",
        "angry",
        "contempt",
        None,
        None,
        None,
        None,
    ]
    assert reasons == [None, None, None, "FER+ tie", "FER+ majority unknown", "FER+ majority NF", "FER+ tie"]


def test_each_modes_targets_on_a_hand_made_table():
    kept = TABLE[:3]
    majority = ferplus.targets(kept, "majority")
    np.testing.assert_array_equal(majority.argmax(1), [3, 0, 7])
    np.testing.assert_array_equal(majority.sum(1), 1)
    assert set(np.unique(majority)) == {0.0, 1.0}
    soft = ferplus.targets(kept, "crossentropy")
    expected = np.zeros((3, 8), np.float32)
    expected[0, [3, 6]] = [0.8, 0.2]  # happy 8, neutral 2
    expected[1, [0, 1]] = [5 / 9, 4 / 9]  # angry 5, disgust 4; fear's single vote dropped
    expected[2, [7, 6]] = [0.6, 0.4]  # contempt 6, neutral 4
    np.testing.assert_allclose(soft, expected, atol=1e-6)
    # probability mode trains on labels drawn from the same distribution (drawn in the pipeline)
    np.testing.assert_array_equal(ferplus.targets(kept, "probability"), soft)
    with pytest.raises(FerKerasError, match="majority emotion"):
        ferplus.targets(TABLE, "majority")  # dropped rows must go before
    with pytest.raises(FerKerasError, match="--ferplus-mode"):
        ferplus.targets(kept, "vote")


def test_ties_between_emotions_can_be_kept_for_training():
    labels, reasons = ferplus.majority(TABLE, keep_ties=True)
    # sad 4 / neutral 4 is kept (labelled by its first column, neutral); a tie with unknown is not
    assert [FERPLUS_EMOTIONS[i] if i >= 0 else None for i in labels] == [
        "happy",
        "angry",
        "contempt",
        "neutral",
        None,
        None,
        None,
    ]
    assert reasons[3] is None and reasons[6] == "FER+ tie"
    np.testing.assert_array_equal(ferplus.tied(TABLE), [False, False, False, True, False, False, True])
    soft = ferplus.targets(TABLE[3:4], "crossentropy")[0]
    np.testing.assert_allclose(soft[[4, 6, 2]], [0.4, 0.4, 0.2], atol=1e-6)  # sad, neutral, fear


def test_ties_are_kept_in_training_only_and_only_when_asked(tiny_fer, tmp_path):
    files = sorted(p.relative_to(tiny_fer).as_posix() for p in tiny_fer.rglob("*.jpg"))
    rows = []
    for i, rel in enumerate(files):
        counts = votes_row(sadness=4, neutral=4, fear=2) if i % 4 == 0 else votes_row(happiness=8, neutral=2)
        rows.append([f"fer2013/{rel}", "x", i, *counts])
    path = tmp_path / "votes.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["path", "usage", "fer2013_row", *COLUMNS], *rows])
    tie_names = {f for i, f in enumerate(files) if i % 4 == 0}
    plain = load_splits(tiny_fer, val_fraction=0.25, seed=3)
    dropped = load_splits(tiny_fer, val_fraction=0.25, seed=3, ferplus=path)
    kept = load_splits(tiny_fer, val_fraction=0.25, seed=3, ferplus=path, ferplus_ties=True)
    train_ties = set(plain.train.names) & tie_names
    assert train_ties and set(plain.test.names) & tie_names and set(plain.val.names) & tie_names
    assert set(dropped.train.names) == set(plain.train.names) - tie_names
    assert set(kept.train.names) == set(plain.train.names)
    assert dropped.train.skipped["FER+ tie"] == len(train_ties) and not kept.train.skipped["FER+ tie"]
    for split in ("val", "test"):  # scored by the protocol either way
        assert set(getattr(kept, split).names) == set(getattr(dropped, split).names)
    assert kept.data_hash != dropped.data_hash  # a resumed run cannot mix the two


def test_keeping_ties_needs_soft_targets():
    from fer_keras.training.config import TrainConfig

    with pytest.raises(FerKerasError, match="--ferplus-ties needs"):
        TrainConfig(ferplus="votes.csv", ferplus_ties=True).validate()
    with pytest.raises(FerKerasError, match="--ferplus-ties needs"):
        TrainConfig(ferplus_mode="crossentropy", ferplus_ties=True).validate()
    TrainConfig(ferplus="votes.csv", ferplus_mode="crossentropy", ferplus_ties=True).validate()


def test_probability_mode_draws_one_hot_labels_with_the_votes_frequencies():
    from fer_keras.data.pipeline import train_dataset
    from fer_keras.data.sources import FaceArrays

    n = 64
    faces = FaceArrays(
        np.zeros((n, 48, 48), np.uint8),
        np.full(n, 3),
        np.full(n, "train"),
        np.full(n, ""),
        np.full(n, "x"),
        classes=FERPLUS_EMOTIONS,
    )
    soft = np.zeros((n, 8), np.float32)
    soft[:, [3, 6]] = [0.7, 0.3]
    ds, steps = train_dataset(faces, 16, seed=1, epochs=25, targets=soft, draw=True)
    drawn = np.concatenate([y.numpy() for _, y in ds])
    assert drawn.shape == (25 * steps * 16, 8)
    assert set(np.unique(drawn)) == {0.0, 1.0} and (drawn.sum(1) == 1).all()
    assert set(np.flatnonzero(drawn.sum(0))) == {3, 6}
    assert drawn[:, 3].mean() == pytest.approx(0.7, abs=0.03)
    again = np.concatenate([y.numpy() for _, y in train_dataset(faces, 16, 1, epochs=25, targets=soft, draw=True)[0]])
    np.testing.assert_array_equal(drawn, again)  # seeded: a resumed run draws the same labels


@pytest.fixture()
def voted_fer(tiny_fer, tmp_path):
    """The tiny real subset with a hand-made votes file: per folder class, a clear majority for the
    folder's own emotion, except a few rows made to be dropped; one extra row with no image."""
    files = sorted(p.relative_to(tiny_fer).as_posix() for p in tiny_fer.rglob("*.jpg"))
    column = {"angry": "anger", "happy": "happiness", "sad": "sadness"}
    rows = []
    for i, rel in enumerate(files):
        name = rel.split("/")[1]
        counts = votes_row(**{column.get(name, name): 7, "neutral" if name != "neutral" else "fear": 3})
        if rel.startswith("train/fear/") and i % 2 == 0:
            counts = votes_row(contempt=9, neutral=1)  # becomes contempt
        if rel.startswith("train/surprise/") and i % 3 == 0:
            counts = votes_row(unknown=5, surprise=5)  # a tie
        rows.append([f"fer2013/{rel}", "x", i, *counts])
    rows.append(["fer2013/train/happy/not_here.jpg", "x", 999, *votes_row(happiness=10)])
    path = tmp_path / "votes.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "usage", "fer2013_row", *COLUMNS])
        writer.writerows(rows)
    return tiny_fer, path, files


def tied(files: list[str]) -> set[str]:
    return {f for i, f in enumerate(files) if f.startswith("train/surprise/") and i % 3 == 0}


def test_matching_by_path_suffix_from_the_root_or_a_split_folder(voted_fer):
    root, votes, files = voted_fer
    faces = load_faces(root, ferplus=votes)
    assert faces.classes == FERPLUS_EMOTIONS and faces.votes.shape == (len(faces), 10)
    n_contempt = sum(1 for i, f in enumerate(files) if f.startswith("train/fear/") and i % 2 == 0)
    n_tie = len(tied(files))
    assert len(faces) == len(files) - n_tie
    assert faces.skipped["FER+ tie"] == n_tie
    assert faces.skipped[ferplus.EXTRA_ROWS] == 1  # the row whose image is not in the folder: counted
    assert (faces.labels == FERPLUS_EMOTIONS.index("contempt")).sum() == n_contempt
    not_contempt = faces.labels != 7
    np.testing.assert_array_equal(faces.labels[not_contempt], faces.fer2013_labels[not_contempt])

    test = load_faces(root / "test", ferplus=votes)  # a single split folder: paths relative to it
    assert len(test) == sum(f.startswith("test/") for f in files)
    assert test.skipped[ferplus.EXTRA_ROWS] == len(files) + 1 - len(test)


def test_a_missing_path_is_a_one_line_error_naming_it(voted_fer):
    root, votes, _ = voted_fer
    table = pd.read_csv(votes)
    table = table[~table["path"].str.endswith("train/angry/" + sorted((root / "train/angry").iterdir())[0].name)]
    table.to_csv(votes, index=False)
    missing = "train/angry/" + sorted((root / "train/angry").iterdir())[0].name
    with pytest.raises(FerKerasError) as err:
        load_faces(root, ferplus=votes)
    assert missing in str(err.value) and "\n" not in str(err.value)


def test_a_votes_file_without_the_vote_columns_is_refused(tiny_fer, tmp_path):
    bad = tmp_path / "votes.csv"
    bad.write_text("path,neutral\ntrain/angry/a.jpg,3\n")
    with pytest.raises(FerKerasError, match="lacks column"):
        load_faces(tiny_fer, ferplus=bad)


def test_splits_are_carved_on_fer2013_labels_before_relabelling(voted_fer):
    """A FER+ run holds out the images a FER2013 run with the same seed holds out, minus the dropped."""
    root, votes, files = voted_fer
    plain = load_splits(root, val_fraction=0.25, seed=3)
    voted = load_splits(root, val_fraction=0.25, seed=3, ferplus=votes)
    assert set(voted.val.names) == set(plain.val.names) - tied(files)
    assert set(voted.train.names) == set(plain.train.names) - tied(files)
    assert voted.train.classes == FERPLUS_EMOTIONS and voted.val.classes == FERPLUS_EMOTIONS
    assert voted.data_hash != plain.data_hash


def test_the_real_votes_protocol_on_publictest(fer_root, ferplus_votes):
    test = load_faces(fer_root / "test", ferplus=ferplus_votes)
    assert len(test) == 3396
    assert ferplus.dropped_counts(test) == {"FER+ majority NF": 11, "FER+ majority unknown": 25, "FER+ tie": 157}
    assert (test.labels == 7).sum() == 24  # contempt
    assert 0.6 < (test.labels == test.fer2013_labels).mean() < 0.7  # the two label sets disagree often


def test_inspect_reports_the_agreement_per_class(voted_fer, capsys):
    from fer_keras.data.__main__ import main

    root, votes, _ = voted_fer
    assert main(["inspect", str(root), "--ferplus", str(votes)]) == 0
    out = capsys.readouterr().out
    assert "contempt" in out and "FER2013 label vs FER+ majority" in out
    fear = next(line for line in out.splitlines() if line.startswith("fear ") and "%" in line)
    assert "contempt" in fear  # half the fear images were voted contempt


def test_class_lists_follow_the_output_width():
    assert class_names(7) == EMOTIONS and class_names(8) == FERPLUS_EMOTIONS
    assert FERPLUS_EMOTIONS[:7] == EMOTIONS
    with pytest.raises(FerKerasError, match="returns 5 values"):
        class_names(5)


def tiny_ferplus_config(root: Path, votes: Path, out: Path, **options):
    """A one-epoch FER+ run of a small MobileNetV2 on the voted subset."""
    from fer_keras.training.config import TrainConfig

    return TrainConfig(
        model="mobilenetv2",
        data=str(root),
        ferplus=str(votes),
        out=str(out),
        epochs=1,
        batch_size=16,
        augment="none",
        verbose=0,
        width=0.5,
        depth=0.34,
        **options,
    )


@pytest.mark.slow
def test_an_8_class_model_through_train_evaluate_export_live_and_the_api(voted_fer, tmp_path, capsys):
    from fer_keras import EmotionRecognizer
    from fer_keras.app.live import csv_header
    from fer_keras.app.synthetic import make_face_video
    from fer_keras.evaluate import main as evaluate_main
    from fer_keras.export import main as export_main
    from fer_keras.live import main as live_main
    from fer_keras.training.loop import train

    root, votes, _ = voted_fer
    run = tmp_path / "run"
    result = train(tiny_ferplus_config(root, votes, run, ferplus_mode="probability"))
    assert len(result.test_metrics["confusion_matrix"]) == 8
    assert result.test_metrics["labels"] == list(FERPLUS_EMOTIONS)

    # evaluate: 8 classes against FER+ majorities, the usual last line
    argv = ["--model", str(run), "--data", str(root / "test"), "--ferplus", str(votes), "--out", str(tmp_path / "eval")]
    assert evaluate_main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("accuracy=") and "contempt=" in out[-3]

    # the Python API's evaluation helper: the same figures, no files
    import fer_keras

    metrics = fer_keras.score(run, root / "test", ferplus=votes)
    assert (
        metrics["labels"] == list(FERPLUS_EMOTIONS)
        and out[-1] == f"accuracy={metrics['accuracy']:.4f} macro_f1={metrics['macro_f1']:.4f}"
    )

    # export to TFLite, checked on the FER+ test split
    tflite = tmp_path / "m.tflite"
    argv = ["--model", str(run), "--format", "tflite", "--out", str(tflite), "--data", str(root)]
    assert export_main([*argv, "--ferplus", str(votes)]) == 0
    assert "export:" in capsys.readouterr().out

    # the Python API: every probability by its FER+ name
    recognizer = EmotionRecognizer(model=tflite, detector="haar")
    assert recognizer.classes == FERPLUS_EMOTIONS
    emotions = recognizer.classify(load_faces(root / "test").images[:3])
    assert list(emotions[0].probs) == list(FERPLUS_EMOTIONS) and emotions[0].vector().shape == (8,)
    faces = recognizer.analyze("fer_keras/samples/astronaut.jpg")
    assert faces and set(faces[0].to_dict()["probs"]) == set(FERPLUS_EMOTIONS)

    # the web service: its class list, and every probability by name
    from fastapi.testclient import TestClient

    from fer_keras.app.serve import ServeOptions, create_app
    from fer_keras.inference.predictor import load_predictor

    with TestClient(create_app(ServeOptions(detector="haar"), load_predictor(tflite))) as client:
        assert client.get("/healthz").json()["classes"] == list(FERPLUS_EMOTIONS)
        crops = load_faces(root / "test").images[:2]
        results = client.post("/v1/classify", json={"crops": crops.tolist()}).json()["results"]
        assert list(results[0]["probs"]) == list(FERPLUS_EMOTIONS)

    # live: the CSV has a p_<class> column per class of the model
    video, truth, table = tmp_path / "v.mp4", tmp_path / "truth.csv", tmp_path / "faces.csv"
    make_face_video(load_faces(root / "test"), video, truth, frames=12, seed=1)
    argv = ["--source", str(video), "--model", str(tflite), "--no-display", "--csv", str(table), "--detector", "haar"]
    assert live_main(argv) == 0
    frame = pd.read_csv(table)
    assert list(frame.columns) == csv_header(FERPLUS_EMOTIONS) and frame.columns[-1] == "p_contempt"
    if len(frame):
        assert np.allclose(frame[[f"p_{c}" for c in FERPLUS_EMOTIONS]].sum(1), 1, atol=2e-3)


def test_a_fer2013_model_on_ferplus_labels_leaves_contempt_out(voted_fer, small_model_file, tmp_path):
    from fer_keras.reporting.evaluation import evaluate

    root, votes, files = voted_fer
    metrics = evaluate(small_model_file, root / "train", tmp_path / "eval", explain=False, ferplus=votes)
    assert metrics["labels"] == list(EMOTIONS)
    n_contempt = sum(1 for i, f in enumerate(files) if f.startswith("train/fear/") and i % 2 == 0)
    assert metrics["note"].startswith(f"{n_contempt} FER+ contempt images left out")
    assert metrics["labels_from"] == "FER+ majority votes"
    assert metrics["dropped"] == {"FER+ tie": len(tied(files))}
    n_train = sum(f.startswith("train/") for f in files)
    assert metrics["n"] == n_train - len(tied(files)) - n_contempt
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["dropped"] == metrics["dropped"]


def test_the_votes_as_a_teacher_of_a_fer2013_model():
    counts = np.array(
        [
            votes_row(happiness=8, neutral=2),  # agrees with its FER2013 label (happy)
            votes_row(sadness=6, neutral=4),  # FER2013 says fear: disagrees
            votes_row(NF=10),  # no emotion votes: one-hot
            votes_row(contempt=5, anger=5),  # contempt's share is folded out: pure angry
        ],
        np.float32,
    )
    labels = np.array([3, 2, 6, 0])
    mixed = ferplus.mixed_targets(labels, counts, alpha=0.2)
    assert mixed.shape == (4, 7)
    np.testing.assert_allclose(mixed.sum(1), 1, atol=1e-6)
    np.testing.assert_allclose(mixed[0, [3, 6]], [0.8 + 0.2 * 0.8, 0.2 * 0.2], atol=1e-6)
    np.testing.assert_allclose(mixed[1, [2, 4, 6]], [0.8, 0.2 * 0.6, 0.2 * 0.4], atol=1e-6)
    np.testing.assert_array_equal(mixed[2], np.eye(7)[6])
    np.testing.assert_allclose(mixed[3], np.eye(7)[0], atol=1e-6)
    agree = ferplus.mixed_targets(labels, counts, alpha=0.2, agree_only=True)
    np.testing.assert_array_equal(agree[1], np.eye(7)[2])  # the disagreeing image keeps its label
    np.testing.assert_allclose(agree[0], mixed[0])


@pytest.mark.slow
def test_a_ferplus_run_distils_from_an_8_class_teacher_only(voted_fer, tmp_path):
    from fer_keras.inference.predictor import load_predictor, predict
    from fer_keras.training.distill import PROBS_FILE, soft_targets
    from fer_keras.training.loop import train

    shipped = Path(__file__).resolve().parents[1] / "saved_models"
    root, votes, _ = voted_fer
    # the teacher mixes into the vote targets, not into one-hot majorities
    vote_targets = ferplus.targets(np.array([votes_row(happiness=6, neutral=4)], np.float32), "crossentropy")
    teacher = np.full((1, 8), 1 / 8, np.float32)
    np.testing.assert_allclose(soft_targets(vote_targets, teacher, 0.5), 0.5 * vote_targets + 0.5 / 8, atol=1e-6)

    def config(teacher: Path, out: str):
        return tiny_ferplus_config(
            root,
            votes,
            tmp_path / out,
            ferplus_mode="crossentropy",
            teacher=str(teacher),
            distill_alpha=0.3,
            export=False,
        )

    with pytest.raises(FerKerasError, match="predicts 7 classes .* this run trains 8") as refused:
        train(config(shipped / "mobilenetv2.keras", "fer2013-teacher"))
    assert "\n" not in str(refused.value) and not (tmp_path / "fer2013-teacher").exists()

    result = train(config(shipped / "mobilenetv2_ferplus.keras", "ferplus-teacher"))
    assert result.test_metrics["labels"] == list(FERPLUS_EMOTIONS)
    cached = np.load(tmp_path / "ferplus-teacher" / PROBS_FILE, allow_pickle=False)
    train_split = load_splits(root, ferplus=votes).train
    expected = predict(load_predictor(shipped / "mobilenetv2_ferplus.keras"), train_split.images)
    np.testing.assert_allclose(cached, expected, atol=1e-5)


def test_a_teacher_run_keeps_fer2013_labels_and_is_scored_on_them(voted_fer, tmp_path):
    from fer_keras.runs import select_split
    from fer_keras.training.config import TrainConfig

    root, votes, _ = voted_fer
    splits = load_splits(root, ferplus=votes, ferplus_labels=False)
    assert splits.train.classes == EMOTIONS and splits.train.votes is not None
    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(data=str(root), ferplus=str(votes), ferplus_alpha=0.3)
    (run / "config.json").write_text(config.to_json())
    (run / "best.keras").write_text("")
    test = select_split(root, "test", run / "best.keras")
    assert test.classes == EMOTIONS and len(test) == len(load_faces(root / "test"))
    with pytest.raises(FerKerasError, match="needs --ferplus"):
        TrainConfig(ferplus_alpha=0.3).validate()
    with pytest.raises(FerKerasError, match=r"\[0, 0.5\]"):
        TrainConfig(ferplus="v.csv", ferplus_alpha=0.7).validate()
    with pytest.raises(FerKerasError, match="--teacher and --ferplus-alpha cannot be combined"):
        TrainConfig(ferplus="v.csv", ferplus_alpha=0.3, teacher="t.keras").validate()


def test_a_shipped_model_by_name(tmp_path, monkeypatch):
    from fer_keras.inference.predictor import resolve_model_path, shipped_model

    assert resolve_model_path("mobilenetv2") == shipped_model()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mobilenetv2").mkdir()  # a folder of that name here wins over the shipped model
    assert resolve_model_path("mobilenetv2") == Path("mobilenetv2")
    with pytest.raises(FerKerasError, match="shipped model's name: mobilenetv2, mobilenetv2_ferplus"):
        resolve_model_path("mobilenetv3")
