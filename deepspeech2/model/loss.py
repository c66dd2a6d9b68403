"""CTC loss over the model's time-major log-probabilities: MindSpore's dense ``ops.ctc_loss`` or, on CPU
(``model.ctc_impl``: ``auto``'s choice there when g++ builds it), this package's kernel
(``kernels/ctc_loss.cc``: the forward-backward recursion in rescaled probabilities, one multiply-add per
state and frame instead of a log-sum-exp; MindSpore's forward + backward took 38 ms of a 0.45-s lab_small step).
Both give the same losses and, through the log-softmax before them, the same gradients (``tests/test_loss.py``).

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

from functools import lru_cache
from pathlib import Path

import mindspore
from mindspore import Tensor, nn, ops

from deepspeech2.core.config import CtcImpl, choices
from deepspeech2.model.custom_kernels import KERNEL_DIR, build_library, custom_op, resolve_kernel_impl

__all__ = ["CTC_IMPLS", "CTCLoss", "ctc_kernel_library", "resolve_ctc_impl"]

CTC_IMPLS = choices(CtcImpl)


@lru_cache(maxsize=None)
def ctc_kernel_library(blank: int) -> Path:
    """The CTC kernel compiled for one blank index (a compile-time constant: Custom ops take only tensors)."""
    return build_library(KERNEL_DIR / "ctc_loss.cc", (("DS2_CTC_BLANK", blank),), user="model.ctc_impl=custom",
                         fallback="model.ctc_impl=mindspore")


def resolve_ctc_impl(requested: str, device: str, blank: int) -> str:
    """``mindspore`` or ``custom`` for ``model.ctc_impl``: ``auto`` = ``custom`` on CPU when g++ builds the kernel
    (else ``mindspore``, logged), ``mindspore`` elsewhere; ``custom`` off CPU → ``mindspore``."""
    return resolve_kernel_impl("model.ctc_impl", requested, CTC_IMPLS, device, lambda: ctc_kernel_library(blank),
                               "mindspore")


class _KernelCTC(nn.Cell):
    """Per-utterance CTC losses (N,) from our kernel, differentiable in the log-probabilities."""

    def __init__(self, blank: int):
        super().__init__()
        library = ctc_kernel_library(blank)
        self.grad_op = custom_op(library, "CtcLossGrad",
                                 ("log_probs", "targets", "input_lengths", "target_lengths", "d_loss"))
        self.loss_op = custom_op(library, "CtcLoss", ("log_probs", "targets", "input_lengths", "target_lengths"),
                                 self._bprop)

    def _bprop(self, log_probs, targets, input_lengths, target_lengths, losses, d_losses):
        return (self.grad_op(log_probs, targets, input_lengths, target_lengths, d_losses),
                ops.zeros_like(targets), ops.zeros_like(input_lengths), ops.zeros_like(target_lengths))

    def construct(self, log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor) -> Tensor:
        return self.loss_op(log_probs, targets, input_lengths, target_lengths)


class CTCLoss(nn.Cell):
    """``(log_probs (T, N, C), targets (N, S) padded, input_lengths (N,), target_lengths (N,))``
    → scalar batch loss (see the module docstring)."""

    def __init__(self, blank: int, drop_nonfinite: bool = False, impl: str = "auto"):
        super().__init__()
        if blank < 0:
            raise ValueError(f"blank must be a label index >= 0, got {blank}")
        self.blank = blank
        self.drop_nonfinite = drop_nonfinite
        resolved = resolve_ctc_impl(impl, mindspore.get_context("device_target"), blank)
        self.kernel = _KernelCTC(blank) if resolved == "custom" else None

    def utterance_losses(self, log_probs: Tensor, targets: Tensor, input_lengths: Tensor,
                         target_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Per-utterance losses (N,) float32 (``inf`` when unalignable; its gradient is zero)
        and a (N,) bool mask of the finite ones."""
        log_probs = log_probs.astype(mindspore.float32)                           # amp may give fp16
        targets, input_lengths = targets.astype(mindspore.int32), input_lengths.astype(mindspore.int32)
        target_lengths = target_lengths.astype(mindspore.int32)
        if self.kernel is not None:
            losses = self.kernel(log_probs, targets, input_lengths, target_lengths)      # (N,)
        else:
            losses, _ = ops.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=self.blank,
                                     reduction="none", zero_infinity=True)        # (N,)
        return losses, ops.isfinite(losses)

    def construct(self, log_probs: Tensor, targets: Tensor, input_lengths: Tensor,
                  target_lengths: Tensor) -> Tensor:
        losses, finite = self.utterance_losses(log_probs, targets, input_lengths, target_lengths)
        if self.drop_nonfinite:
            losses = ops.where(finite, losses, ops.zeros_like(losses))         # (N,)
        return losses.mean()                                                   # = sum / N
