"""The two small classifiers of the course: LeNet-5 and the common MNIST CNN."""

from __future__ import annotations

from torch import Tensor, nn

from visiontasks.models.registry import register_model


@register_model("lenet5", kind="classification")
class LeNet5(nn.Module):
    """LeCun et al. (1998): two 5x5 conv + average-pool stages with tanh, then 120-84-classes.

    Built for 32x32 inputs; other sizes are pooled to the 5x5 map C5 expects.
    """

    def __init__(self, num_classes: int, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.AdaptiveAvgPool2d(5),
            nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
            nn.Linear(120, 84), nn.Tanh(),
        )  # fmt: skip
        self.classifier = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@register_model("simple_cnn", kind="classification")
class SimpleCNN(nn.Module):
    """The widely taught MNIST/Fashion-MNIST CNN: 64 7x7 filters, 2x128, 2x256, dense 128 and 64."""

    def __init__(self, num_classes: int, in_channels: int = 1, dropout: float = 0.5) -> None:
        super().__init__()

        def conv(cin: int, cout: int, k: int = 3) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(in_channels, 64, 7), nn.MaxPool2d(2),
            *conv(64, 128), *conv(128, 128), nn.MaxPool2d(2),
            *conv(128, 256), *conv(256, 256), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(3), nn.Flatten(),
            nn.Linear(256 * 9, 128), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(128, 64), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )  # fmt: skip
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
