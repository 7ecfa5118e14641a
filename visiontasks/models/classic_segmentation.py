"""Classic segmentation baselines (threshold, edges, clustering) as plain modules: no Lightning, no gradients.

Each method splits an image into regions with scikit-image / scikit-learn. The class of a region
is then decided by a vote table learned from training masks: a region's *key* says how it looks
against the image's border (its colour distance to the border's median colour, darker or brighter,
touching the border or not), and the table counts, per key, the true classes of the pixels seen
with that key. A region gets its key's most frequent class. So "which side of the threshold is
foreground" or "which cluster is the object" is learned, not hard-coded, and saved in the
``votes`` buffer of the checkpoint. The key knows nothing of shape: on multi-class data every
object-like region gets the same (most frequent) object class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from visiontasks.models.registry import create_model, register_model

# scikit-image and scikit-learn are imported where a method runs: they cost a second at start-up
# for every command, and only the classic baselines use them.

ClassicMethod = Literal["otsu", "local_threshold", "sobel_watershed", "canny_watershed", "kmeans", "slic"]
"""The baselines by name: threshold (otsu, local_threshold), edges (sobel_watershed, canny_watershed),
clustering (kmeans, slic); each registers its class in :mod:`visiontasks.models.registry`, and the CLI offers these."""

CONTRAST_BINS = 16
CONTRAST_RANGE = 0.5  # colour distances (in [0, 1] per channel) at or beyond this share the last bin
NUM_KEYS = 2 * 2 * CONTRAST_BINS  # touches the border x brighter than it x contrast bin


def grey(image: np.ndarray) -> np.ndarray:
    """Grey levels (HxW float) of an HxWxC image in [0, 1]; RGB by luminance, other channel counts by mean."""
    from skimage.color import rgb2gray

    return rgb2gray(image) if image.shape[2] == 3 else image.mean(axis=2)


@register_model("otsu", kind="segmentation", by_gradient=False)
@dataclass
class Otsu:
    """Threshold segmentation: one global grey level chosen by Otsu's method splits the image in two."""

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from skimage.filters import threshold_otsu

        g = grey(image)
        return (g > threshold_otsu(g)).astype(np.int64) if np.ptp(g) > 0 else np.zeros(g.shape, np.int64)


@register_model("local_threshold", kind="segmentation", by_gradient=False)
@dataclass
class LocalThreshold:
    """Adaptive threshold: each pixel against the Gaussian-weighted mean of its ``block_size`` neighbourhood
    (odd, in pixels) minus ``offset``; copes with uneven lighting, but splits objects larger than the block."""

    block_size: int = 35
    offset: float = 0.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from skimage.filters import threshold_local

        g = grey(image)
        return (g > threshold_local(g, self.block_size, offset=self.offset)).astype(np.int64)


@register_model("sobel_watershed", kind="segmentation", by_gradient=False)
@dataclass
class SobelWatershed:
    """Edge segmentation by region growing: markers are the flat areas (Sobel gradient below its Otsu
    level, after a Gaussian blur of ``sigma``), grown by watershed on the gradient until they meet at edges."""

    sigma: float = 1.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from skimage.filters import gaussian, sobel, threshold_otsu
        from skimage.measure import label
        from skimage.segmentation import watershed

        elevation = sobel(gaussian(grey(image), sigma=self.sigma))
        if np.ptp(elevation) == 0:
            return np.zeros(elevation.shape, np.int64)
        markers = label(elevation < threshold_otsu(elevation))
        return watershed(elevation, markers)


@register_model("canny_watershed", kind="segmentation", by_gradient=False)
@dataclass
class CannyWatershed:
    """Edge segmentation by filling: Canny edges (``sigma``) close regions; each area the edges enclose is
    a marker, grown over the edge pixels by watershed on the Sobel gradient."""

    sigma: float = 1.5

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from skimage.feature import canny
        from skimage.filters import sobel
        from skimage.measure import label
        from skimage.segmentation import watershed

        g = grey(image)
        edges = canny(g, sigma=self.sigma)
        return watershed(sobel(g), label(~edges, connectivity=1))


@register_model("kmeans", kind="segmentation", by_gradient=False)
@dataclass
class KMeansColours:
    """Segmentation by clustering: k-means (``n_clusters``) on each image's pixels described by colour
    (CIELAB for RGB, scaled to [0, 1]) and, weighted by ``position_weight``, by position."""

    n_clusters: int = 4
    position_weight: float = 0.3
    seed: int = 0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from skimage.color import rgb2lab
        from sklearn.cluster import KMeans

        height, width, channels = image.shape
        colour = rgb2lab(image) / 100.0 if channels == 3 else image
        ys, xs = np.mgrid[0:height, 0:width]
        position = self.position_weight * np.stack([ys / max(height - 1, 1), xs / max(width - 1, 1)], axis=-1)
        features = np.concatenate([colour, position], axis=-1).reshape(height * width, -1)
        clusters = min(self.n_clusters, len(np.unique(features, axis=0)))
        kmeans = KMeans(n_clusters=clusters, n_init=1, random_state=self.seed).fit(features)
        return kmeans.labels_.reshape(height, width)


@register_model("slic", kind="segmentation", by_gradient=False)
@dataclass
class Superpixels:
    """Segmentation by clustering: SLIC superpixels (k-means in colour + position, ``n_segments`` of
    them, ``compactness`` trading colour for shape)."""

    n_segments: int = 100
    compactness: float = 10.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from skimage.segmentation import slic

        rgb = image.shape[2] == 3
        return slic(image if rgb else image[..., 0], n_segments=self.n_segments, compactness=self.compactness,
                    channel_axis=-1 if rgb else None, start_label=0)  # fmt: skip


def build_segmenter(method: str, **options: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The region splitter registered as ``method`` with its ``options`` (see each class for its names)."""
    return create_model(method, "segmentation", by_gradient=False, **options)


def region_keys(image: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """The vote-table key (HxW int in [0, NUM_KEYS)) of every pixel, from the connected region it lies in.

    Regions are split into connected components first, so that e.g. the two sides of a threshold
    become the separate blobs a user would see.
    """
    from skimage.measure import label

    components = label(regions + 1, connectivity=1, background=0) - 1
    count = components.max() + 1
    sizes = np.bincount(components.ravel(), minlength=count)
    means = np.stack(
        [np.bincount(components.ravel(), weights=image[..., c].ravel(), minlength=count) for c in range(image.shape[2])],
        axis=1,
    ) / sizes[:, None]
    frame = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    reference = np.median(frame, axis=0)
    distance = np.linalg.norm(means - reference, axis=1) / np.sqrt(image.shape[2])
    contrast = np.minimum((distance / CONTRAST_RANGE * CONTRAST_BINS).astype(np.int64), CONTRAST_BINS - 1)
    brighter = means.mean(axis=1) > reference.mean()
    touches = np.zeros(count, dtype=bool)
    touches[np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]])] = True
    keys = (touches.astype(np.int64) * 2 + brighter) * CONTRAST_BINS + contrast
    return keys[components]


class ClassicSegmentation(nn.Module):
    """A classic method plus the vote table that maps its regions to classes.

    ``votes`` (NUM_KEYS x num_classes pixel counts) starts empty: until :meth:`add_votes` has seen
    training masks, every pixel gets the first class (background).

    Args:
        method: one of :data:`ClassicMethod`.
        num_classes: classes of the masks (0 = background).
        ignore_index: mask value of unlabelled pixels, which cast no vote.
        **options: the method's options (e.g. ``block_size`` for ``local_threshold``).
    """

    def __init__(self, method: ClassicMethod, num_classes: int, ignore_index: int = 255, **options: Any) -> None:
        super().__init__()
        self.segmenter = build_segmenter(method, **options)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.register_buffer("votes", torch.zeros(NUM_KEYS, num_classes, dtype=torch.long))

    def keys(self, images: Tensor) -> Tensor:
        """Per-pixel keys (B x H x W long) of a B x C x H x W batch in [0, 1]."""
        arrays = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy().astype(np.float64)
        keys = [region_keys(image, self.segmenter(image)) for image in arrays]
        return torch.as_tensor(np.stack(keys), device=images.device)

    def count(self, keys: Tensor, masks: Tensor) -> Tensor:
        """Votes (NUM_KEYS x num_classes) of true ``masks`` (B x H x W) at these ``keys``; ignored pixels left out."""
        labelled = masks != self.ignore_index
        cells = keys[labelled] * self.num_classes + masks[labelled].long()
        return torch.bincount(cells, minlength=NUM_KEYS * self.num_classes).view(NUM_KEYS, self.num_classes)

    def add_votes(self, votes: Tensor) -> None:
        self.votes += votes.to(self.votes)

    def log_probabilities(self) -> Tensor:
        """log P(class | key) (NUM_KEYS x num_classes): the key's votes smoothed toward all votes, so a key
        never seen in training falls back on the overall class frequencies."""
        votes = self.votes.double()
        prior = (votes.sum(dim=0) + 1) / (votes.sum() + self.num_classes)
        return ((votes + prior) / (votes.sum(dim=1, keepdim=True) + 1)).log().float()

    def classes_predicted(self) -> list[int]:
        """The classes some seen key would give: what the learned table can predict at all."""
        seen = self.votes.sum(dim=1) > 0
        return sorted(set(self.log_probabilities()[seen].argmax(dim=1).tolist())) if seen.any() else [0]

    def scores(self, keys: Tensor) -> Tensor:
        """Class log-probabilities (B x num_classes x H x W) of per-pixel ``keys``."""
        return self.log_probabilities().to(keys.device)[keys].permute(0, 3, 1, 2)

    def forward(self, images: Tensor) -> Tensor:
        """Class log-probabilities (B x num_classes x H x W) of a B x C x H x W batch in [0, 1]."""
        return self.scores(self.keys(images))
