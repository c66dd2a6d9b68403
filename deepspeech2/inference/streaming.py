"""Streaming recognition: audio pushed in pieces, partial transcripts out, the offline result at the end.

:class:`StreamingRecognizer` runs a unidirectional LSTM model incrementally: spectrogram frames are
computed as soon as their window is complete, the conv front end is re-run over a window that keeps
the left context its kernels need, each LSTM layer carries its ``(h, c)`` across pieces, and the
lookahead emits a frame only when its ``lookahead_context`` future frames exist (``finish`` flushes
the rest with the offline zero padding). Its greedy transcript equals the offline one of the whole
audio. :class:`RedecodingRecognizer` serves the other models (bidirectional, MINDIR): it re-decodes
everything received so far for each partial.
"""
from __future__ import annotations

import logging

import numpy as np

from deepspeech2.data.features import compute_features, hop_length, n_fft
from deepspeech2.data.shapes import conv_receptive_field, conv_stack, output_lengths
from deepspeech2.inference.acoustic import AcousticModel
from deepspeech2.inference.transcribe import DEFAULT_CHUNK_SECONDS, transcribe_audio, word_times

__all__ = ["StreamingRecognizer", "RedecodingRecognizer", "make_recognizer", "can_stream",
           "DEFAULT_STREAM_CHUNK_SECONDS"]

log = logging.getLogger(__name__)
DEFAULT_STREAM_CHUNK_SECONDS = 0.32   # audio per streaming step


def can_stream(model: AcousticModel) -> str:
    """"" if ``model`` can run incrementally, else the reason it cannot."""
    if model.network is None:
        return "an exported MINDIR is a fixed graph (serve the checkpoint to stream)"
    if model.model.bidirectional:
        return "the model is bidirectional (its backward RNN needs the whole utterance)"
    if model.model.rnn_type != "lstm":
        return "only LSTM models carry their state across chunks"
    if model.features.normalize:
        return "features.normalize needs the whole utterance"
    return ""


class _Recognizer:
    """What both recognisers share: the count of samples received and the finished flag."""

    model: AcousticModel
    _samples: int = 0
    finished: bool = False

    @property
    def seconds(self) -> float:
        """Audio received so far (s)."""
        return self._samples / self.model.features.sample_rate

    def _take(self, audio: np.ndarray) -> np.ndarray:
        if self.finished:
            raise ValueError("the stream is finished")
        audio = np.asarray(audio, np.float32)
        self._samples += audio.size
        return audio


class StreamingRecognizer(_Recognizer):
    """Incremental greedy recognition with a unidirectional LSTM checkpoint (see the module docstring)."""

    def __init__(self, model: AcousticModel):
        reason = can_stream(model)
        if reason:
            raise ValueError(f"cannot stream this model: {reason}")
        from mindspore import Tensor

        self.model, self.net, self._tensor = model, model.network, Tensor
        self.hop, self.half = hop_length(model.features), n_fft(model.features) // 2
        self.stack = conv_stack(model.model)
        self.field = conv_receptive_field(self.stack)
        self.context = model.model.lookahead_context
        hidden = model.model.hidden_size
        self._states = [(Tensor(np.zeros((1, 1, hidden), np.float32)),) * 2 for _ in range(model.model.num_layers)]
        self._audio, self._audio_start = np.zeros(0, np.float32), 0
        self._feats, self._feats_start = np.zeros((0, 0), np.float32), 0     # (F, frames kept)
        self._next_out = 0                                                     # next conv output frame
        self._rnn_out = np.zeros((0, hidden), np.float32)                      # frames awaiting lookahead
        self._log_probs: list[np.ndarray] = []

    def accept(self, audio: np.ndarray) -> str:
        """Push (n,) float32 samples at the model's rate; returns the partial transcript."""
        self._audio = np.concatenate([self._audio, self._take(audio)])
        self._step(final=False)
        return self.text()

    def finish(self) -> tuple[str, list[dict]]:
        """Flush the right context (zero padding, as offline); returns the final text and word times."""
        if not self.finished and self._samples:
            self._step(final=True)
        self.finished = True
        text, frames = self._greedy()
        return text, word_times(text, frames, self.model.frame_seconds, 0.0)

    def text(self) -> str:
        return self._greedy()[0]

    def _greedy(self) -> tuple[str, list[int]]:
        from deepspeech2.decoding.decoders import greedy_decode_with_frames

        if not self._log_probs:
            return "", []
        text, frames = greedy_decode_with_frames(np.concatenate(self._log_probs), self.model.vocab.labels,
                                                 self.model.vocab.blank)
        return text.strip(), frames

    def _step(self, final: bool) -> None:
        feats = self._new_features(final)
        if feats.shape[1]:
            self._feats = feats if not self._feats.size else np.concatenate([self._feats, feats], axis=1)
        conv = self._new_conv_frames(final)
        if conv is not None:
            self._rnn_out = np.concatenate([self._rnn_out, self._run_rnn(conv)])
        self._emit(final)

    def _new_features(self, final: bool) -> np.ndarray:
        """Spectrogram frames whose window is complete (all of them at the end), (F, n)."""
        first = self._feats_start + (self._feats.shape[1] if self._feats.size else 0)
        last = self._samples // self.hop if final else (self._samples - self.half) // self.hop
        if last < first:
            return np.zeros((0, 0), np.float32)
        seg_first = self._audio_start // self.hop          # the segment's frame m is frame seg_first + m
        feats = compute_features(self._audio, self.model.features)[:, first - seg_first:last - seg_first + 1]
        keep = max(0, ((last + 1) * self.hop - self.half) // self.hop * self.hop)   # left context of the next frame
        self._audio = self._audio[keep - self._audio_start:]
        self._audio_start = keep
        return feats

    def _new_conv_frames(self, final: bool):
        """Conv front end over the kept feature window → new output frames (t, 1, D) Tensor, or None."""
        total = self._feats_start + (self._feats.shape[1] if self._feats.size else 0)
        f = self.field
        last = int(output_lengths(total, self.stack)) - 1 if final else (total - 1 - f.right) // f.stride
        if last < self._next_out or not self._feats.size:
            return None
        window = self._feats
        x, _ = self.net.conv(self._tensor(window[None, None]), self._tensor(np.array([window.shape[1]], np.int32)))
        first_out = self._feats_start // f.stride                                # window output 0
        x = x[:, :, :, self._next_out - first_out:last - first_out + 1]          # (1, C, F', t)
        n, c, rows, t = x.shape
        self._next_out = last + 1
        start = max(0, self._next_out * f.stride - f.left) // f.stride * f.stride  # keep the left context
        self._feats = self._feats[:, start - self._feats_start:]
        self._feats_start = start
        return x.view(n, c * rows, t).transpose(2, 0, 1)                        # (t, 1, C*F')

    def _run_rnn(self, x) -> np.ndarray:
        """The LSTM stack from the carried states over (t, 1, D) → (t, H) numpy."""
        rnn = self.net.RNN
        t = x.shape[0]
        for i, layer in enumerate(getattr(rnn, rnn.layer_name)):
            if rnn.norms is not None and i > 0:
                x = rnn.norms[i - 1](x.view(t, -1)).view(t, 1, -1)
            x, h, c = layer.run_with_state(x, *self._states[i])
            self._states[i] = (h, c)
        return x.asnumpy()[:, 0, :]

    def _emit(self, final: bool) -> None:
        """Lookahead → output layer for the frames whose future context is available."""
        from mindspore import ops

        ready = len(self._rnn_out) if final else len(self._rnn_out) - self.context
        if ready <= 0:
            return
        x = self._tensor(self._rnn_out[:, None, :])                             # (t, 1, H)
        y = self.net.lookahead_act(self.net.lookahead(x))[:ready]                 # (ready, 1, H)
        self._log_probs.append(ops.log_softmax(self.net.fc(y), -1).asnumpy()[:, 0, :])
        self._rnn_out = self._rnn_out[ready:]


class RedecodingRecognizer(_Recognizer):
    """The streaming interface for models that cannot stream: each partial re-decodes all audio so far
    (at most once per ``partial_every`` seconds of new audio); the final result is the offline one."""

    def __init__(self, model: AcousticModel, partial_every: float = 1.0):
        self.model, self.partial_every = model, partial_every
        self._pieces: list[np.ndarray] = []
        self._decoded_at, self._partial = 0, ""

    def accept(self, audio: np.ndarray) -> str:
        self._pieces.append(self._take(audio))
        if self.seconds - self._decoded_at / self.model.features.sample_rate >= self.partial_every:
            self._partial = self._decode()[0]
            self._decoded_at = self._samples
        return self._partial

    def finish(self) -> tuple[str, list[dict]]:
        self.finished = True
        return self._decode() if self._samples else ("", [])

    def _decode(self) -> tuple[str, list[dict]]:
        return transcribe_audio(np.concatenate(self._pieces), self.model, None, DEFAULT_CHUNK_SECONDS,
                                timestamps=True)


def make_recognizer(model: AcousticModel):
    """A :class:`StreamingRecognizer` when the model can stream, else a :class:`RedecodingRecognizer`."""
    return StreamingRecognizer(model) if not can_stream(model) else RedecodingRecognizer(model)
