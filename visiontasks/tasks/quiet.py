"""Lightning's messages about what every visiontasks run does on purpose, filtered where they arise, so that
what the console shows means something (the ones left are for the user to act on)."""

from __future__ import annotations

import logging
import warnings

EXPECTED_LIGHTNING_MESSAGES = (
    "The following callbacks returned in `LightningModule.configure_callbacks` will override",  # ours, by design
    "💡 Tip:",  # product advertisements
)


class _ExpectedMessages(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(EXPECTED_LIGHTNING_MESSAGES)


def quiet_expected_lightning_messages() -> None:
    """Lightning's notes on what every visiontasks run does on purpose (the checkpoint callbacks come from
    :meth:`BaseTask.configure_callbacks`, so resuming needs no callbacks in the Trainer) and its product tips:
    filtered, so that what the console shows means something."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _ExpectedMessages) for f in logger.filters):
        logger.addFilter(_ExpectedMessages())
    warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`, callbacks used to create the checkpoint")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")  # Lightning's own code
    # the classic segmentation methods are not trained by gradient: no optimiser, by design
    warnings.filterwarnings("ignore", message=r"`LightningModule.configure_optimizers` returned `None`")
