"""When a task's ``tta`` option applies: at test and predict (``task.predict`` too), never in training or validation."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from visiontasks.models.tta import averaged, tta_views


def active_views(task: Any) -> tuple[str, ...]:
    """The views of ``task.hparams.tta`` in use now: at test and predict, or outside a trainer's fit/validate."""
    views = tta_views(task.hparams.get("tta"))
    trainer = getattr(task, "_trainer", None)
    stage = trainer.state.stage if trainer is not None else None
    return views if stage is None or stage.value in ("test", "predict") else ()


def evaluation_scores(task: Any, images: Tensor, per_pixel: bool = False, multilabel: bool = False) -> Tensor:
    """``task(images)``, averaged over the TTA views when they apply now (log-probabilities then)."""
    views = active_views(task)
    return averaged(task, images, views, per_pixel, multilabel) if views else task(images)
