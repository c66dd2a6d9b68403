"""CTC loss over the model's time-major log-probabilities (MindSpore's dense ``ops.ctc_loss``).

Batch loss = sum of per-utterance negative log-likelihoods / N (deepspeech.pytorch's
``CTCLoss(reduction="sum") / batch``): not normalised by transcript length.

An utterance whose transcript cannot be aligned (fewer frames than labels plus the blanks its
repeated labels need) has an infinite loss; MindSpore's ``zero_infinity`` then zeroes its
gradient but still returns ``inf``. By default that inf reaches the batch loss, so a training
step that checks ``isfinite(loss)`` skips the update; with ``drop_nonfinite=True`` such
utterances count 0 instead. Beware: an input length SHORTER than its target length is not
inf but a kernel error in MindSpore 2.10 — the dataset drops those utterances
(``deepspeech2.data.dataset.ctc_min_frames``).
"""
from __future__ import annotations

import mindspore
from mindspore import Tensor, nn, ops

__all__ = ["CTCLoss"]


class CTCLoss(nn.Cell):
    """``(log_probs (T, N, C), targets (N, S) padded, input_lengths (N,), target_lengths (N,))``
    → scalar batch loss (see the module docstring)."""

    def __init__(self, blank: int, drop_nonfinite: bool = False):
        super().__init__()
        if blank < 0:
            raise ValueError(f"blank must be a label index >= 0, got {blank}")
        self.blank = blank
        self.drop_nonfinite = drop_nonfinite

    def utterance_losses(self, log_probs: Tensor, targets: Tensor, input_lengths: Tensor,
                         target_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Per-utterance losses (N,) float32 (``inf`` when unalignable; its gradient is zero)
        and a (N,) bool mask of the finite ones."""
        losses, _ = ops.ctc_loss(log_probs.astype(mindspore.float32),             # amp may give fp16
                                 targets.astype(mindspore.int32), input_lengths.astype(mindspore.int32),
                                 target_lengths.astype(mindspore.int32), blank=self.blank,
                                 reduction="none", zero_infinity=True)            # (N,)
        return losses, ops.isfinite(losses)

    def construct(self, log_probs: Tensor, targets: Tensor, input_lengths: Tensor,
                  target_lengths: Tensor) -> Tensor:
        losses, finite = self.utterance_losses(log_probs, targets, input_lengths, target_lengths)
        if self.drop_nonfinite:
            losses = ops.where(finite, losses, ops.zeros_like(losses))         # (N,)
        return losses.mean()                                                   # = sum / N
