"""One suite over every registered model: a new family is tested the moment it is registered."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from fer_keras.errors import FerKerasError
from fer_keras.inference.export import save_savedmodel
from fer_keras.models import available_models, build
from fer_keras.models.head import backbone_groups, set_trainable_blocks
from fer_keras.training.config import TrainConfig
from fer_keras.training.loop import compile_model

pytestmark = pytest.mark.smoke  # also run on the TF 2.19 line

MODELS = available_models()
PARAM_LIMITS = {"mobilenetv2": 500_000, "resnet18": 11_300_000, "vgg16": 15_200_000}


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    keras.utils.set_random_seed(0)
    return build(request.param)


@pytest.fixture(scope="module")
def crops(fer_root):
    from fer_keras.data.loading import load_faces

    faces = load_faces(fer_root / "test")
    pick = np.linspace(0, len(faces) - 1, 8).astype(int)
    return faces.images[pick, ..., None].astype(np.float32)


def test_registry_has_the_three_families():
    assert {"vgg16", "resnet18", "mobilenetv2"} <= set(MODELS)


def test_input_output_contract(model, crops):
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 7)
    probs = model.predict(crops, verbose=0)
    assert probs.shape == (8, 7) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert model.get_layer("preprocessing") is not None and model.get_layer("backbone") is not None


def test_parameter_budget(model):
    assert model.count_params() < PARAM_LIMITS[model.name]


def test_resnet18_width_and_strided_stem():
    """--width scales every stage (0.5: about a quarter of the weights); the strided stem halves the
    resolution layer1 works at, for the same weights."""
    from fer_keras.models.flops import macs_per_image

    full, half, strided = build("resnet18"), build("resnet18", width=0.5), build("resnet18", stem="strided")
    assert 0.24 < half.count_params() / full.count_params() < 0.27
    assert strided.count_params() == full.count_params()
    assert full.get_layer("backbone").get_layer("layer1_0_add").output.shape[1:] == (48, 48, 64)
    assert strided.get_layer("backbone").get_layer("layer1_0_add").output.shape[1:] == (24, 24, 64)
    assert half.get_layer("backbone").output.shape[-1] == 256
    assert 3.8 < macs_per_image(full) / macs_per_image(strided) < 4.2
    with pytest.raises(FerKerasError, match="torchvision ResNet18 weights need --width 1.0"):
        build("resnet18", weights="imagenet", width=0.5)


def test_keras_and_savedmodel_round_trip(model, crops, tmp_path):
    expected = model.predict(crops, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")  # safe_mode on: no custom code needed
    np.testing.assert_allclose(reloaded.predict(crops, verbose=0), expected, atol=1e-5)
    save_savedmodel(model, tmp_path / "saved")
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(served.serve(tf.constant(crops)).numpy(), expected, atol=1e-5)


def test_staged_fine_tuning_freezes_all_but_last_blocks(model):
    backbone = model.get_layer("backbone")
    groups = backbone_groups(backbone)
    assert len(groups) >= 4
    set_trainable_blocks(model, 0)
    assert not backbone.trainable_weights
    set_trainable_blocks(model, 1)
    trainable_layers = {layer.name for layer in backbone.layers if layer.trainable_weights}
    assert trainable_layers and all(name.split("_")[0] == groups[-1] for name in trainable_layers)
    set_trainable_blocks(model, None)


def test_mobilenetv2_default_under_500k_and_configurable():
    assert build("mobilenetv2").count_params() < 500_000
    assert build("mobilenetv2", width=0.5).count_params() < build("mobilenetv2").count_params()
    assert build("mobilenetv2", depth=2.0).count_params() > build("mobilenetv2").count_params()
    assert build("mobilenetv2", stem_stride=1).get_layer("backbone").output_shape[1] == 6
    upsampled = build("mobilenetv2", input_size=96)  # the resolution ablation: same weights, 4x the pixels
    assert upsampled.input_shape == (None, 48, 48, 1) and upsampled.get_layer("backbone").output_shape[1] == 6
    assert upsampled.count_params() == build("mobilenetv2").count_params()


def test_mobilenetv2_fused_stages_swap_depthwise_for_dense_convs(crops):
    plain = build("mobilenetv2", input_size=72)
    fused = build("mobilenetv2", input_size=72, fused_stages=3)
    assert fused.count_params() < 500_000 < build("mobilenetv2", input_size=72, fused_stages=4).count_params()

    def depthwise_blocks(model):
        layers = model.get_layer("backbone").layers
        return [
            int(x.name.split("_")[0].removeprefix("block")) for x in layers if type(x).__name__ == "DepthwiseConv2D"
        ]

    # blocks 1-6 (the first three stages) lose their depthwise conv; the last two stages keep theirs
    assert depthwise_blocks(plain) == list(range(1, 12)) and depthwise_blocks(fused) == list(range(7, 12))
    assert fused.get_layer("backbone").output_shape == plain.get_layer("backbone").output_shape
    # stage 1 (expansion 1) is one 3x3 conv; stage 2's expansion is capped at 4: 16 -> 64 channels
    assert fused.get_layer("backbone").get_layer("block2_fused_conv").kernel.shape == (3, 3, 16, 64)
    wider = build("mobilenetv2", fused_stages=2, fused_expansion=6).get_layer("backbone")
    assert wider.get_layer("block2_fused_conv").kernel.shape == (3, 3, 16, 96)
    probs = fused.predict(crops, verbose=0)
    assert probs.shape == (8, 7) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    for bad in ({"fused_stages": -1}, {"fused_stages": 6}, {"fused_expansion": 0}):
        with pytest.raises(FerKerasError, match="fused"):
            build("mobilenetv2", **bad)


def test_accuracy_metric_is_categorical_not_binary():
    """A hand-counted batch: 3 of 4 argmax predictions right -> accuracy 0.75.

    The UPF seed's binary accuracy would report ~0.93 here (26 of 28 thresholded entries agree).
    """
    model = build("vgg16")
    compile_model(model, TrainConfig(), steps_per_epoch=1)
    y_true = np.eye(7, dtype=np.float32)[[0, 3, 5, 6]]
    y_pred = np.tile(np.linspace(0.01, 0.02, 7, dtype=np.float32), (4, 1))
    for row, cls in enumerate([0, 3, 5, 2]):  # the last one is wrong ...
        y_pred[row, cls] = 0.8
    y_pred[3, 6] = 0.1  # ... but its true class is second: top-2 counts it
    model.compute_metrics(None, y_true, y_pred)
    results = {k: float(v) for k, v in model.get_metrics_result().items()}
    assert results["accuracy"] == pytest.approx(0.75)
    assert results["top2"] == pytest.approx(1.0)
    binary = keras.metrics.BinaryAccuracy()
    binary.update_state(y_true, y_pred)
    assert float(binary.result()) == pytest.approx(26 / 28)


def test_unknown_model_and_bad_option():
    with pytest.raises(FerKerasError, match="unknown model 'resnet50'"):
        build("resnet50")
    with pytest.raises(FerKerasError, match="bad option for model 'vgg16'"):
        build("vgg16", stem_stride=2)


def test_incompatible_weights_file_is_one_line(tmp_path):
    build("mobilenetv2", width=0.5).save_weights(tmp_path / "half.weights.h5")
    with pytest.raises(FerKerasError, match="does not fit model mobilenetv2"):
        build("mobilenetv2", weights=str(tmp_path / "half.weights.h5"))


def test_weights_file_round_trip(tmp_path, crops):
    source = build("mobilenetv2")
    source.save_weights(tmp_path / "w.weights.h5")
    loaded = build("mobilenetv2", weights=str(tmp_path / "w.weights.h5"))
    np.testing.assert_allclose(loaded.predict(crops, verbose=0), source.predict(crops, verbose=0), atol=1e-6)


def test_imagenet_weights_offline_names_the_file(monkeypatch, tmp_path):
    import fer_keras.models.imagenet as imagenet

    monkeypatch.setattr(imagenet, "KERAS_CACHE", tmp_path)

    def offline(fname, origin, **kwargs):
        # what Keras raises without a network
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(FerKerasError, match="place vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5") as err:
        build("vgg16", weights="imagenet")
    # the cause, not the exception's class name
    assert "(Exception)" not in str(err.value) and "([Errno -2] Name or service not known)" in str(err.value)
    with pytest.raises(FerKerasError, match="place resnet18-f37072fd.pth"):
        build("resnet18", weights="imagenet")
    with pytest.raises(FerKerasError, match="no ImageNet weights"):
        build("mobilenetv2", weights="imagenet")


def test_vgg16_loads_a_local_backbone_h5(tmp_path, crops):
    """--weights PATH with a Keras-applications style backbone file (the offline ImageNet route)."""
    backbone = keras.applications.VGG16(include_top=False, weights=None, input_shape=(48, 48, 3))
    path = tmp_path / "vgg16_notop.h5"
    import h5py
    from keras.src.legacy.saving import legacy_h5_format  # the layout of Keras' published .h5 files

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)
    model = build("vgg16", weights=str(path))
    first_conv = model.get_layer("backbone").get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(first_conv, backbone.get_layer("block1_conv1").get_weights()[0])


def test_flip_tta_wrapper_averages_the_mirror_and_survives_safe_mode(crops, tmp_path):
    from fer_keras.models.flops import macs_per_image
    from fer_keras.models.tta_layers import mirror_block, with_flip_tta

    # Any face model can be wrapped; a random linear one tells left from right (a fresh CNN is near-uniform).
    keras.utils.set_random_seed(0)
    inputs = keras.Input((48, 48, 1))
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    logits = keras.layers.Dense(7, kernel_initializer=keras.initializers.RandomNormal(0, 0.05))(
        keras.layers.Flatten()(scaled)
    )
    plain = keras.Model(inputs, keras.layers.Softmax()(logits))
    np.testing.assert_array_equal(mirror_block()(crops).numpy(), crops[:, :, ::-1])
    wrapped = with_flip_tta(plain)
    expected = (plain.predict(crops, verbose=0) + plain.predict(crops[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(wrapped.predict(crops, verbose=0), expected, atol=1e-6)
    assert not np.allclose(expected, plain.predict(crops, verbose=0), atol=1e-4)  # the mirror view counts
    path = tmp_path / "tta.keras"
    wrapped.save(path)
    reloaded = keras.saving.load_model(path)  # safe_mode on: stock layers only
    np.testing.assert_allclose(reloaded.predict(crops, verbose=0), expected, atol=1e-6)
    assert wrapped.count_params() == plain.count_params() + 48 * 48  # shared weights + the 0/1 mirror
    assert macs_per_image(mirror_block()) == 48 * 48 * 48
    assert macs_per_image(wrapped) == 2 * macs_per_image(plain) + 48 * 48 * 48  # the network runs twice


def test_crops_tta_wrapper_averages_the_same_views_as_evaluate(crops, tmp_path):
    from fer_keras.inference.tta import tta_views
    from fer_keras.models.tta_layers import reflect_pad_block, single_view, with_tta

    keras.utils.set_random_seed(0)
    inputs = keras.Input((48, 48, 1))
    logits = keras.layers.Dense(7, kernel_initializer=keras.initializers.RandomNormal(0, 0.05))(
        keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    )
    plain = keras.Model(inputs, keras.layers.Softmax()(logits))
    images = crops[..., 0].astype(np.uint8)
    padded = reflect_pad_block()(crops).numpy()[..., 0]
    np.testing.assert_array_equal(
        padded, np.stack([cv2.copyMakeBorder(im, 4, 4, 4, 4, cv2.BORDER_REFLECT_101) for im in images])
    )
    views = tta_views(images, "crops")
    expected = np.mean([plain.predict(v[..., None].astype(np.float32), verbose=0) for v in views], axis=0)
    wrapped = with_tta(plain, "crops")
    np.testing.assert_allclose(wrapped.predict(crops, verbose=0), expected, atol=1e-6)
    assert not np.allclose(expected, with_tta(plain, "flip").predict(crops, verbose=0), atol=1e-4)  # shifts count
    path = tmp_path / "crops.keras"
    wrapped.save(path)
    reloaded = keras.saving.load_model(path)  # safe_mode on: stock layers only
    np.testing.assert_allclose(reloaded.predict(crops, verbose=0), expected, atol=1e-6)
    assert single_view(reloaded).count_params() == plain.count_params()
    assert with_tta(plain, "none") is plain
