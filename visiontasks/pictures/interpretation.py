"""What the model learned, as the course shows it: first-layer filters, class activation maps (Grad-CAM, by
captum) and the images it gets most wrong (top losses, as fastai's ``Interpretation``)."""

from __future__ import annotations

import heapq
import itertools
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402


def first_conv(module: nn.Module) -> nn.Conv2d | None:
    return next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)


def cam_layer(task: nn.Module, images: Tensor, min_cells: int = 4) -> nn.Conv2d | None:
    """The last convolution whose output still has a spatial grid (``min_cells`` cells or more): Grad-CAM's
    layer. LeNet-5's last convolution gives 1x1, a map without a where."""
    sizes: dict[nn.Module, int] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.__setitem__(m, o.shape[-2] * o.shape[-1]))
             for m in task.modules() if isinstance(m, nn.Conv2d)]  # fmt: skip
    try:
        with torch.no_grad():
            task(images[:1])
    finally:
        for hook in hooks:
            hook.remove()
    found = [m for m, cells in sizes.items() if cells >= min_cells]
    return found[-1] if found else None


def filters_figure(weight: Tensor, columns: int = 16) -> Any:
    """The filters of a first convolution (out x in x k x k) as small pictures: RGB when they see 3 channels,
    grey otherwise (the mean over input channels); each stretched to its own range."""
    weight = weight.detach().float().cpu()
    filters = weight if weight.shape[1] == 3 else weight.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    low = filters.amin(dim=(1, 2, 3), keepdim=True)
    high = filters.amax(dim=(1, 2, 3), keepdim=True)
    filters = (filters - low) / (high - low).clamp(min=1e-8)
    grid = make_grid(filters, nrow=min(columns, len(filters)), padding=1, pad_value=1.0).permute(1, 2, 0).numpy()
    rows = int(np.ceil(len(filters) / columns))
    figure, axis = plt.subplots(figsize=(min(columns, len(filters)) * 0.5 + 0.5, rows * 0.5 + 0.7))
    axis.imshow(grid, interpolation="nearest")
    axis.set_title(f"first-layer filters ({weight.shape[0]} x {weight.shape[1]} x {weight.shape[2]} x {weight.shape[3]})", fontsize=9)
    axis.axis("off")
    figure.tight_layout()
    return figure


def grad_cam(task: nn.Module, images: Tensor, layer: nn.Module) -> tuple[Tensor, Tensor]:
    """Grad-CAM (Selvaraju et al.) heat maps in [0, 1] at the images' size for the predicted class of each image,
    and those classes; computed by captum's ``LayerGradCam`` on ``layer`` (a classifier's last convolution)."""
    from captum.attr import LayerAttribution, LayerGradCam

    with torch.inference_mode(False), torch.enable_grad():
        images = images.detach().clone().requires_grad_(True)
        classes = task(images).argmax(dim=1)
        maps = LayerGradCam(task, layer).attribute(images, target=classes, relu_attributions=True)
        maps = LayerAttribution.interpolate(maps, tuple(images.shape[-2:]), interpolate_mode="bilinear")[:, 0].detach()
    top = maps.flatten(1).amax(dim=1).clamp(min=1e-8)
    return (maps / top[:, None, None]).cpu(), classes.detach().cpu()


def heat_overlay(picture: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``picture`` (HxWx3 uint8) with ``heat`` (HxW in [0, 1]) laid over it in the ``jet`` colours."""
    colours = plt.get_cmap("jet")(heat)[..., :3] * 255
    return ((1 - alpha) * picture + alpha * colours).round().clip(0, 255).astype(np.uint8)


def pictures_figure(pictures: list[np.ndarray], titles: list[str], columns: int = 4, colours: list[str] | None = None) -> Any:
    """A grid of pictures with a caption each."""
    columns = max(1, min(columns, len(pictures)))
    lines = int(np.ceil(len(pictures) / columns))
    figure, axes = plt.subplots(lines, columns, figsize=(2.6 * columns, 2.8 * lines), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for k, (axis, picture, title) in enumerate(zip(axes.flat, pictures, titles)):
        axis.imshow(picture, interpolation="nearest")
        axis.set_title(title, fontsize=9, color=(colours or ["black"] * len(pictures))[k])
    figure.tight_layout()
    return figure


def single(batch: dict[str, Any], i: int) -> dict[str, Any]:
    """Sample ``i`` of a batch as a batch of one, on the CPU (kept for drawing later)."""
    def take(value: Any) -> Any:
        part = value[i : i + 1]
        return part.detach().cpu() if isinstance(part, Tensor) else [v.detach().cpu() if isinstance(v, Tensor) else v for v in part]

    return {key: take(value) for key, value in batch.items()}


class TopLosses:
    """The ``count`` samples with the highest loss seen so far (each kept as a batch of one)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.heap: list[tuple[float, int, dict[str, Any]]] = []
        self.order = itertools.count()

    def add(self, losses: Tensor, batch: dict[str, Any]) -> None:
        for i, loss in enumerate(losses.detach().float().cpu().tolist()):
            if len(self.heap) < self.count or loss > self.heap[0][0]:
                entry = (loss, next(self.order), single(batch, i))
                (heapq.heappushpop if len(self.heap) >= self.count else heapq.heappush)(self.heap, entry)

    def worst_first(self) -> list[tuple[float, dict[str, Any]]]:
        return [(loss, sample) for loss, _, sample in sorted(self.heap, key=lambda e: -e[0])]
