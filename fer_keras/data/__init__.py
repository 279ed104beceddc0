"""FER2013 and datasets laid out like it: sources, decode cache, splits, tf.data pipelines."""

from fer_keras.data.augment import PRESETS, AugmentConfig, augment_batch, augment_config
from fer_keras.data.loading import (
    DATA_ENV,
    LoadReport,
    Splits,
    dedupe_train,
    default_data_path,
    load_faces,
    load_splits,
    make_splits,
    pixel_hashes,
    stratified_subset,
)
from fer_keras.data.pipeline import class_weights, eval_dataset, train_dataset
from fer_keras.data.sources import FaceArrays, decode_image

__all__ = [
    "DATA_ENV",
    "PRESETS",
    "AugmentConfig",
    "FaceArrays",
    "LoadReport",
    "Splits",
    "augment_batch",
    "augment_config",
    "class_weights",
    "decode_image",
    "dedupe_train",
    "default_data_path",
    "eval_dataset",
    "load_faces",
    "load_splits",
    "make_splits",
    "pixel_hashes",
    "stratified_subset",
    "train_dataset",
]
