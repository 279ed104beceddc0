"""The ResNet18 port matches torchvision's architecture: a plain-PyTorch ResNet18 with random
weights, converted through a .pth file, gives the same logits to 1e-4 (torchvision not needed)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_keras.errors import FerKerasError
from fer_keras.models import build
from fer_keras.models.preprocessing import TORCH_MEAN, TORCH_STD

torch = pytest.importorskip("torch", reason="the converter test needs PyTorch (CI installs torch==2.13.0)")
nn = torch.nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class TorchResNet18(nn.Module):
    """torchvision.models.resnet18's module tree (and so its state-dict keys), with a small stem option."""

    def __init__(self, num_classes: int = 7, small_stem: bool = False):
        super().__init__()
        self.small_stem = small_stem
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False) if small_stem else nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, cout in enumerate((64, 128, 256, 512), start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if not self.small_stem:
            x = self.maxpool(x)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _randomise(net: nn.Module) -> None:
    torch.manual_seed(0)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):  # non-trivial running statistics
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    net.eval()


@pytest.mark.parametrize("stem,input_size", [("imagenet", 112), ("small", 48)])
def test_converted_logits_match_pytorch(stem, input_size, tmp_path):
    net = TorchResNet18(small_stem=stem == "small")
    _randomise(net)
    path = tmp_path / "resnet18.pth"
    torch.save(net.state_dict(), path)
    model = build("resnet18", weights=str(path), stem=stem, input_size=input_size, classifier_activation=None)

    rng = np.random.default_rng(1)
    gray = rng.uniform(0, 255, (3, 48, 48, 1)).astype(np.float32)
    keras_logits = model.predict(gray, verbose=0)

    # What the model's in-graph preprocessing does, done by hand for PyTorch.
    resized = (
        torch.nn.functional.interpolate(
            torch.from_numpy(gray).permute(0, 3, 1, 2),
            size=(input_size, input_size),
            mode="bilinear",
            align_corners=False,
            antialias=False,
        )
        if input_size != 48
        else torch.from_numpy(gray).permute(0, 3, 1, 2)
    )
    rgb = resized.repeat(1, 3, 1, 1) / 255.0
    mean = torch.tensor(TORCH_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(TORCH_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch_logits = net((rgb - mean) / std).numpy()
    np.testing.assert_allclose(keras_logits, torch_logits, atol=1e-4, rtol=1e-4)


def test_imagenet_head_is_skipped_not_an_error(tmp_path):
    net = TorchResNet18(num_classes=1000)
    path = tmp_path / "imagenet.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    from fer_keras.models.resnet18 import load_torchvision_weights

    model = build("resnet18", stem="imagenet")
    report = load_torchvision_weights(model, path)
    assert "fc" in report["skipped"] and "layer4.1.conv2" in report["loaded"]


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(FerKerasError, match="cannot read .* as a PyTorch state dict"):
        build("resnet18", weights=str(path))


def test_pickled_objects_are_refused(tmp_path):
    """weights_only=True: a checkpoint that needs arbitrary unpickling is rejected, never executed."""
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "extra": BasicBlock(3, 3, 1)}, path)
    with pytest.raises(FerKerasError, match="cannot read"):
        build("resnet18", weights=str(path))
