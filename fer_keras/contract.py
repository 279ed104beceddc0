"""What every model takes and returns: the label order, the crop, the test-time-augmentation views.

Every model, in every format, takes raw ``CROP_SIZE`` x ``CROP_SIZE`` grayscale crops (values
0..255, shape ``(N, CROP_SIZE, CROP_SIZE, 1)``) and returns ``NUM_CLASSES`` probabilities in
``EMOTIONS`` order. Resizing and normalisation happen inside the model graph, so training,
evaluation, export, the live app and the Python API hand a model the same thing.
"""

from __future__ import annotations

from fer_keras.errors import FerKerasError

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
# FER+ models (``--ferplus``): the FER+ paper's eight classes, FER2013's seven first, then contempt,
# so an index below 7 means the same emotion in both.
FERPLUS_EMOTIONS: tuple[str, ...] = (*EMOTIONS, "contempt")
# A model's class list is fixed by its number of outputs: each known list has its own length.
CLASS_LISTS: dict[int, tuple[str, ...]] = {len(EMOTIONS): EMOTIONS, len(FERPLUS_EMOTIONS): FERPLUS_EMOTIONS}

CROP_SIZE = 48  # FER2013's crops: the side of the square grayscale image every model takes
CROP_SHAPE = (CROP_SIZE, CROP_SIZE, 1)

# Test-time augmentation: the views whose probabilities are averaged, built the same way in numpy
# (``fer_keras.inference.tta``) and inside a shipped graph (``fer_keras.models.tta_layers``).
# ``flip``: the crop and its mirror. ``crops``: five crops of the crop reflect-padded by CROP_PAD
# pixels (the centre, i.e. the crop itself, then the four corners) and their mirrors.
TTA_MODES = ("none", "flip", "crops")
CROP_PAD = 4
# (top, left) of the five crops inside the padded image
CROP_OFFSETS = ((CROP_PAD, CROP_PAD), (0, 0), (0, 2 * CROP_PAD), (2 * CROP_PAD, 0), (2 * CROP_PAD, 2 * CROP_PAD))
NETWORK_PASSES = {"none": 1, "flip": 2, "crops": 2 * len(CROP_OFFSETS)}

# Folder / column names of other datasets mapped onto FER2013's names.
ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "disgusted": "disgust",
    "disgust": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "afraid": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
}

# Classes some datasets have and FER2013 does not: their images are dropped and counted.
DROPPED: frozenset[str] = frozenset({"contempt", "unknown", "nf", "notface", "not_face"})

# RAF-DB basic-emotion folders are numbered 1..7 in this order.
RAFDB_NUMERIC: dict[str, str] = {
    "1": "surprise",
    "2": "fear",
    "3": "disgust",
    "4": "happy",
    "5": "sad",
    "6": "angry",
    "7": "neutral",
}


def label_index(name: str, where: str = "") -> int | None:
    """Map a class name (any known alias, any case) to its FER2013 index; None if it is dropped.

    Raises FerKerasError for a name that is neither known nor dropped, so that a typo in a
    folder name can never become a silent wrong label.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in DROPPED:
        return None
    key = RAFDB_NUMERIC.get(key, key)
    if key in ALIASES:
        return EMOTIONS.index(ALIASES[key])
    place = f" ({where})" if where else ""
    raise FerKerasError(
        f"unknown emotion class {name!r}{place}; expected one of {', '.join(EMOTIONS)} "
        f"or an alias such as anger/happiness/sadness/surprised (contempt is dropped)"
    )


def class_names(num_outputs: int, where: str = "the model") -> tuple[str, ...]:
    """The class list of a model with ``num_outputs`` probabilities: FER2013's 7 emotions or FER+'s 8."""
    try:
        return CLASS_LISTS[int(num_outputs)]
    except (KeyError, TypeError, ValueError):
        raise FerKerasError(
            f"{where} returns {num_outputs} values per face; fer_keras models return 7 (FER2013: "
            f"{', '.join(EMOTIONS)}) or 8 (FER+: the same and contempt) probabilities"
        ) from None
