"""Augmentation presets: which augmentations a training run uses and how strong they are.

The operations themselves are in ``fer_keras.data.augment_ops`` (TensorFlow); this module is
plain Python so that the training options can list the presets without importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from fer_keras.errors import FerKerasError


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run and how strong they are (0 disables one)."""

    flip: bool = True
    rotation_deg: float = 10.0
    shift: float = 0.1  # fraction of the image side
    zoom: float = 0.1  # +- fraction of scale
    brightness: float = 0.2  # +- fraction of 255
    contrast: float = 0.2  # +- factor around 1
    erasing: float = 0.0  # probability of one random-erasing rectangle per image
    mixup: float = 0.0  # Beta(alpha, alpha) for mixup; 0 = off
    cutmix: float = 0.0  # Beta(alpha, alpha) for cutmix; 0 = off
    degrade: float = 0.0  # probability of an image losing detail as a video frame's face does

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def enabled(self) -> bool:
        return self != NO_AUGMENTATION


NO_AUGMENTATION = AugmentConfig(False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
PRESETS: dict[str, AugmentConfig] = {
    "none": NO_AUGMENTATION,
    "light": AugmentConfig(rotation_deg=10, shift=0.08, zoom=0.08, brightness=0.15, contrast=0.15),
    "standard": AugmentConfig(rotation_deg=15, shift=0.1, zoom=0.15, brightness=0.25, contrast=0.25, erasing=0.25),
    # light's photometric jitter with the geometric error the live app's crops have left after
    # framing (90th percentiles measured by benchmarks/framing.py: rotation ~19 deg, scale ~25 %,
    # shift ~0.1-0.14 of the side).
    "framing": AugmentConfig(rotation_deg=20, shift=0.12, zoom=0.2, brightness=0.15, contrast=0.15),
    "strong": AugmentConfig(
        rotation_deg=20, shift=0.12, zoom=0.2, brightness=0.3, contrast=0.3, erasing=0.5, mixup=0.2
    ),
}


def augment_config(preset: str, **overrides: float | bool | None) -> AugmentConfig:
    """A preset by name with some fields replaced (``None`` values keep the preset's)."""
    if preset not in PRESETS:
        raise FerKerasError(f"unknown augmentation preset {preset!r}; choose from {', '.join(PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(PRESETS[preset], **changes)
