import pytest

from fer_keras.contract import EMOTIONS, label_index
from fer_keras.errors import FerKerasError

pytestmark = pytest.mark.smoke  # also run on the TF 2.19 line


def test_fer2013_order_is_canonical():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.mark.parametrize(
    "name,expected",
    [
        ("anger", 0),
        ("Angry", 0),
        ("disgusted", 1),
        ("fearful", 2),
        ("happiness", 3),
        ("sadness", 4),
        ("surprised", 5),
        ("neutral", 6),
        ("1", 5),
        ("4", 3),
        ("7", 6),
    ],
)
def test_aliases_map_to_fer_order(name, expected):
    assert label_index(name) == expected


def test_contempt_is_dropped_not_an_error():
    assert label_index("contempt") is None


def test_unknown_name_is_a_clear_error():
    with pytest.raises(FerKerasError, match="unknown emotion class 'happpy'"):
        label_index("happpy", where="train/happpy")
