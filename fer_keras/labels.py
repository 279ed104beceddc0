"""The one label order used everywhere (FER2013's) and the names other datasets use for it."""

from __future__ import annotations

from fer_keras.errors import FerKerasError

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)

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
