"""Training-time data augmentation: speed perturbation, additive (coloured) noise, vocal tract length
perturbation (a warped filterbank), SpecAugment masks.

Every random choice for utterance ``position`` of global batch ``k`` comes from one generator
seeded by ``(seed, k, position)``, except the speed factor, which is drawn per utterance and epoch
(``(seed, epoch, utterance)``) before the epoch's batches are formed, so that the training batches
group utterances by their length at that speed (a batch then pads little; Kaldi and ESPnet reach the
same by making perturbed copies and sorting them). The same run gives the same augmented batches in
any worker, after a resume, and the training loop can count what was applied without touching
audio (:func:`draw`, :func:`speed_of`). Evaluation never augments, and neither do the training epochs
before ``start_epoch`` (their choices are :data:`UNCHANGED`).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable

import numpy as np
import scipy.signal

from deepspeech2.core.config import AugmentConfig
from deepspeech2.data.noise import NOISE_COLOURS, coloured_noise, noise_rms

__all__ = ["Choice", "UNCHANGED", "enabled", "active", "draw", "speed_of", "count", "speed_perturb", "add_noise",
           "spec_augment", "fastest_factor"]

SPEED_DENOMINATOR = 100      # speed factors are applied as rational resampling ratios p/q, q ≤ this
WARP_DECIMALS = 2            # VTLP factors are rounded to this many decimals (few distinct filterbanks)
AUGMENT_STREAM = 7           # RNG sub-stream tag: independent of every other use of the seed
SPEED_STREAM = 8             # ... of the per-utterance, per-epoch speed factors


@dataclass(frozen=True)
class Choice:
    """What is done to one training utterance."""

    speed: float                         # 1.0 = unchanged
    noise_snr_db: float | None           # None = no noise
    noise_seed: int
    noise_colour: str                    # white | pink | brown (data.noise.NOISE_COLOURS)
    freq_masks: tuple[tuple[int, int], ...]   # (start fraction ×1e6, width) drawn before sizes are known
    time_masks: tuple[tuple[int, int], ...]
    warp: float = 1.0                    # VTLP frequency warp factor; 1.0 = unchanged


def enabled(cfg: AugmentConfig) -> bool:
    """True when any augmentation is switched on."""
    return (cfg.speed_perturb > 0 or cfg.noise_prob > 0 or cfg.freq_masks > 0 or cfg.time_masks > 0
            or cfg.vtlp > 0)


def speed_factors(cfg: AugmentConfig) -> tuple[float, ...]:
    """The speed factors drawn from (uniformly): (1 - s, 1, 1 + s), or (1,) when off."""
    s = cfg.speed_perturb
    return (1.0 - s, 1.0, 1.0 + s) if s > 0 else (1.0,)


def fastest_factor(cfg: AugmentConfig) -> float:
    """The largest speed factor: the fewest frames an utterance can be given."""
    return max(speed_factors(cfg))


def active(cfg: AugmentConfig, epoch: int) -> bool:
    """Whether ``epoch`` (0 = the first) is augmented: from ``cfg.start_epoch`` on."""
    return epoch >= cfg.start_epoch


def speed_of(cfg: AugmentConfig, seed: int, epoch: int, utterance: int) -> float:
    """The speed factor of training utterance ``utterance`` in ``epoch`` (pure, cheap)."""
    factors = speed_factors(cfg)
    if len(factors) == 1 or not active(cfg, epoch):
        return 1.0
    rng = np.random.default_rng([seed, SPEED_STREAM, epoch, utterance])
    return float(factors[int(rng.integers(len(factors)))])


UNCHANGED = Choice(speed=1.0, noise_snr_db=None, noise_seed=0, noise_colour="white", freq_masks=(), time_masks=())


def draw(cfg: AugmentConfig, seed: int, k: int, position: int, speed: float = 1.0, epoch: int = 0) -> Choice:
    """The augmentation of utterance ``position`` in global batch ``k`` of ``epoch`` (pure, cheap), played
    at ``speed`` (its :func:`speed_of` factor); :data:`UNCHANGED` before ``cfg.start_epoch``."""
    if not active(cfg, epoch):
        return UNCHANGED
    rng = np.random.default_rng([seed, AUGMENT_STREAM, k, position])
    snr = None
    if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
        snr = float(rng.uniform(cfg.noise_snr_min, cfg.noise_snr_max))
    noise_seed = int(rng.integers(1 << 31))
    freq = tuple((int(rng.integers(1_000_000)), int(rng.integers(0, cfg.freq_mask_width + 1)))
                 for _ in range(cfg.freq_masks))
    time = tuple((int(rng.integers(1_000_000)), int(rng.integers(0, cfg.time_mask_width + 1)))
                 for _ in range(cfg.time_masks))
    colour = cfg.noise_colour
    if colour == "mixed":                # drawn after the others: they stay those of a single colour
        colour = list(NOISE_COLOURS)[int(rng.integers(len(NOISE_COLOURS)))]
    warp = 1.0
    if cfg.vtlp > 0:                     # drawn last: every other choice stays that of a run without VTLP
        warp = round(float(rng.uniform(1.0 - cfg.vtlp, 1.0 + cfg.vtlp)), WARP_DECIMALS)
    return Choice(speed, snr, noise_seed, colour, freq, time, warp)


def count(choices: Iterable[Choice]) -> dict:
    """What augmentation did, as counts for the training log: utterances per speed factor, noisy and
    warped utterances, masks drawn."""
    speeds: dict[str, int] = {}
    noisy = warped = freq = time = 0
    for choice in choices:
        speeds[f"{choice.speed:g}"] = speeds.get(f"{choice.speed:g}", 0) + 1
        noisy += choice.noise_snr_db is not None
        warped += choice.warp != 1.0
        freq += sum(1 for _, width in choice.freq_masks if width > 0)
        time += sum(1 for _, width in choice.time_masks if width > 0)
    return {"speed": dict(sorted(speeds.items())), "noisy": noisy, "warped": warped, "freq_masks": freq,
            "time_masks": time}


def speed_perturb(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play ``audio`` ``factor`` times faster (pitch moves too, as in Kaldi's speed perturbation):
    ``len / factor`` samples."""
    if factor == 1.0:
        return audio
    ratio = Fraction(factor).limit_denominator(SPEED_DENOMINATOR)
    return scipy.signal.resample_poly(audio, ratio.denominator, ratio.numerator).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, seed: int, colour: str = "white") -> np.ndarray:
    """Add ``colour`` noise (white, pink, brown) at ``snr_db`` relative to the utterance's active speech
    (``noise.speech_rms``: silence and padding do not count), the level the corpus maker's noisy splits use."""
    scale = noise_rms(audio, snr_db)
    if scale <= 0:
        return audio
    noise = coloured_noise(audio.size, colour, np.random.default_rng(seed), single=True)
    return (audio + scale * noise).astype(np.float32)


def _masks(spans: tuple[tuple[int, int], ...], size: int, max_ratio: float) -> list[tuple[int, int]]:
    """Concrete [start, end) intervals within ``size``; each width ≤ max_ratio × size."""
    out = []
    for start_frac, width in spans:
        width = min(width, int(max_ratio * size))
        if width <= 0:
            continue
        start = start_frac * (size - width + 1) // 1_000_000
        out.append((start, start + width))
    return out


def spec_augment(feats: np.ndarray, choice: Choice, max_time_ratio: float) -> np.ndarray:
    """Zero frequency bands and time spans of ``feats`` (F, T) (SpecAugment without warping).
    Masks stay inside the utterance; each time mask covers at most ``max_time_ratio`` of it."""
    if not choice.freq_masks and not choice.time_masks:
        return feats
    feats = feats.copy()
    for lo, hi in _masks(choice.freq_masks, feats.shape[0], 1.0):
        feats[lo:hi, :] = 0.0
    for lo, hi in _masks(choice.time_masks, feats.shape[1], max_time_ratio):
        feats[:, lo:hi] = 0.0
    return feats
