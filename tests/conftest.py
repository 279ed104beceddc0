"""Shared fixtures: small real FER2013 subsets on disk, built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


NO_DATA = "FER2013 not found: set FER_KERAS_DATA to the dataset folder (CI does)"


def fer2013_root() -> Path | None:
    """The full dataset: $FER_KERAS_DATA, else ../shared/data/fer2013 next to the repo.

    ``FER_KERAS_DATA=""`` (set, but empty) runs the suite as a user without the data would."""
    if os.environ.get("FER_KERAS_DATA") == "":
        return None
    candidates = [os.environ.get("FER_KERAS_DATA"), REPO.parent / "shared" / "data" / "fer2013"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "train").is_dir():
            return Path(candidate)
    return None


def pytest_sessionstart(session) -> None:
    """A FER_KERAS_DATA that points nowhere is a mistake to report, not a reason to skip tests."""
    given = os.environ.get("FER_KERAS_DATA")
    if given and not (Path(given) / "train").is_dir():
        raise pytest.UsageError(f"FER_KERAS_DATA={given} has no train/ folder: fix the path or unset it")


def pytest_terminal_summary(terminalreporter) -> None:
    """Without the data, say in one line how many tests it skipped."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NO_DATA in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests skipped: {NO_DATA}", yellow=True)


@pytest.fixture(scope="session")
def fer_root() -> Path:
    root = fer2013_root()
    if root is None:
        pytest.skip(NO_DATA)
    return root


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory) -> None:
    """Tests never read or write the user's decode cache."""
    os.environ["FER_KERAS_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def ferplus_votes(fer_root) -> Path:
    """The FER+ votes of the dataset: $FER_KERAS_FERPLUS, else ferplus/fer2013_votes.csv beside it."""
    path = Path(os.environ.get("FER_KERAS_FERPLUS") or fer_root.parent / "ferplus" / "fer2013_votes.csv")
    if not path.is_file():
        pytest.fail(f"FER+ votes not found at {path}: set FER_KERAS_FERPLUS to fer2013_votes.csv")
    return path


def copy_subset(root: Path, dest: Path, per_class: dict[str, int]) -> Path:
    """Copy the first N images per class of each split (sorted names: the same files every time)."""
    for split, n in per_class.items():
        for class_dir in sorted((root / split).iterdir()):
            target = dest / split / class_dir.name
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(class_dir.iterdir())[:n]:
                shutil.copy2(path, target / path.name)
    return dest


@pytest.fixture(scope="session")
def small_fer(fer_root, tmp_path_factory) -> Path:
    """A real FER2013 subset: 80 train and 12 test images per class (644 files)."""
    return copy_subset(fer_root, tmp_path_factory.mktemp("small_fer"), {"train": 80, "test": 12})


@pytest.fixture()
def tiny_fer(fer_root, tmp_path) -> Path:
    """A writable real subset (6 train / 2 test per class) that a test may damage."""
    return copy_subset(fer_root, tmp_path / "tiny", {"train": 6, "test": 2})


def save_small_model(path: Path, num_classes: int = 7, seed: int = 0) -> Path:
    """An untrained half-width, one-block-per-stage MobileNetV2 saved as .keras (for schema and plumbing
    tests: a shallow graph traces and converts in a fraction of the full depth's time)."""
    import keras

    from fer_keras.models import build

    keras.utils.set_random_seed(seed)
    build("mobilenetv2", num_classes=num_classes, width=0.5, depth=0.34).save(path)
    return path


@pytest.fixture(scope="session")
def small_model_file(tmp_path_factory) -> Path:
    """``save_small_model`` with FER2013's 7 classes."""
    return save_small_model(tmp_path_factory.mktemp("model") / "small.keras")


@pytest.fixture(scope="session")
def small_ferplus_file(tmp_path_factory) -> Path:
    """``save_small_model`` with FER+'s 8 classes."""
    return save_small_model(tmp_path_factory.mktemp("ferplus_model") / "small8.keras", num_classes=8, seed=1)
