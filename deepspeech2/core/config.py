"""One typed configuration tree for every DeepSpeech2 command.

Loaded from YAML (``configs/*.yaml``) with dotted command-line overrides
(``optim.lr=1e-4``); a preset may start from another with ``base: other.yaml``. Unknown keys are
errors that list the valid keys, and the effective configuration is written next to whatever a run
produces.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml

from deepspeech2.core.config_rules import range_errors

__all__ = [
    "choices", "DeviceTarget", "ExecMode", "JitLevel", "AmpLevel", "AmpDtype", "LossScale", "RnnType", "RnnImpl",
    "ConvImpl", "BnImpl", "CtcImpl", "ConvActivation", "NoiseColour", "FeatureType", "ConvStack", "DecoderKind", "ExportFormat",
    "ExportOutput",
    "AugmentConfig", "DataConfig", "FeatureConfig", "ModelConfig", "OptimConfig", "TrainConfig", "read_config_tree",
    "EvalConfig", "ExportConfig", "Config", "ConfigError",
    "load_config", "apply_overrides", "config_to_dict", "config_from_dict", "save_config",
]


class ConfigError(ValueError):
    """A configuration file or override is invalid."""


# Keys with a fixed set of values: checked when the config is loaded, and the single source of the
# valid values for the modules that use them (``choices(AmpLevel)``).
DeviceTarget = Literal["CPU", "GPU", "Ascend"]
ExecMode = Literal["graph", "pynative"]
JitLevel = Literal["O0", "O1"]                 # mindspore.jit: O1 adds automatic operator fusion
AmpLevel = Literal["O0", "O1", "O2", "O3"]
AmpDtype = Literal["float16", "bfloat16"]
LossScale = Literal["none", "static", "dynamic"]
RnnType = Literal["lstm", "gru"]
RnnImpl = Literal["auto", "fused", "portable", "custom"]  # deepspeech2.model.rnn_impl
ConvImpl = Literal["auto", "onednn", "matmul", "custom"]   # deepspeech2.model.conv
BnImpl = Literal["auto", "onednn", "custom"]               # deepspeech2.model.batch_norm
CtcImpl = Literal["auto", "mindspore", "custom"]           # deepspeech2.model.loss
ConvActivation = Literal["tanh", "hardtanh"]
DecoderKind = Literal["greedy", "beam"]
ExportFormat = Literal["MINDIR", "ONNX", "AIR"]
ExportOutput = Literal["log_probs", "probs"]
NoiseColour = Literal["white", "pink", "brown", "mixed"]  # mixed: one of the three per noisy utterance
FeatureType = Literal["spectrogram", "fbank"]  # log1p|STFT| (the zoo) | log mel filterbank
ConvStack = Literal["zoo", "zoo_t4", "small_t4", "small_t3"]  # named in deepspeech2.data.shapes.CONV_STACKS


def choices(literal: Any) -> tuple[str, ...]:
    """The valid values of one of the Literal types above."""
    return typing.get_args(literal)


@dataclass
class AugmentConfig:
    """Training-only augmentation (deepspeech2.data.augment); everything off by default."""
    speed_perturb: float = 0.0     # s > 0: each utterance's speed factor is drawn from (1 - s, 1, 1 + s)
    noise_prob: float = 0.0        # probability of adding noise to an utterance
    noise_snr_min: float = 10.0    # noise range, dB SNR vs the active speech (noise.speech_rms)
    noise_snr_max: float = 30.0
    noise_colour: NoiseColour = "white"  # white | pink | brown | mixed (one of the three per utterance)
    freq_masks: int = 0            # SpecAugment frequency masks per utterance
    freq_mask_width: int = 10      # widest frequency mask (feature bins)
    time_masks: int = 0            # SpecAugment time masks per utterance
    time_mask_width: int = 40      # widest time mask (frames)
    time_mask_max_ratio: float = 0.2  # a time mask covers at most this fraction of the utterance
    vtlp: float = 0.0              # v > 0: vocal tract length perturbation, fbank frequencies warped by a
                                   # factor drawn from [1 - v, 1 + v] (features.type fbank only)
    start_epoch: int = 0           # augmentation from this epoch on (0 = the first); earlier epochs train
                                   # on the recorded audio, as without augmentation


@dataclass
class DataConfig:
    train_manifest: str = ""       # V3 JSON or V2.1 CSV manifest for training (required to train)
    val_manifest: str = ""         # dev manifest: per-epoch loss/WER and best-checkpoint choice
    test_manifest: str = ""        # default manifest for evaluation
    labels: str = ""               # labels.json path; "" = the zoo's 29 labels (blank "_" last)
    batch_size: int = 8            # utterances per training batch
    eval_batch_size: int = 8       # utterances per evaluation batch
    num_workers: int = 2           # feature-extraction workers in the dataset pipeline
    python_multiprocessing: bool = True  # worker processes (True) or threads (False)
    prefetch_size: int = 4         # batches the pipeline keeps ready ahead of the model
    worker_nice: int = 0           # niceness added to the workers' threads (0-19): higher = they take
                                   # the CPU only when the step's threads leave it (CPU training)
    bucket_frames: int = 200       # padded time lengths are rounded up to a multiple of this
    sortagrad: bool = True         # first epoch in ascending length order (SortaGrad)
    shuffle: bool = True           # shuffle batches after the first epoch
    min_duration: float = 0.0      # drop training utterances shorter than this (s); 0 = keep
    max_duration: float = 0.0      # drop training utterances longer than this (s); 0 = keep
    feature_cache_dir: str = ""    # cache spectrograms as .npy here; "" = no cache
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training-time augmentation


@dataclass
class FeatureConfig:
    sample_rate: int = 16000       # Hz; audio at other rates is resampled
    window_size: float = 0.02      # STFT window length (s): n_fft = sample_rate * window_size
    window_stride: float = 0.01    # STFT hop (s)
    window: str = "hamming"        # scipy window name; the zoo trained with hamming
    normalize: bool = True         # per-utterance normalisation: whole spectrogram (zoo), per band (fbank)
    type: FeatureType = "spectrogram"  # spectrogram (zoo: log1p|STFT|, n_fft/2+1 bins) | fbank (log mel)
    n_mels: int = 80               # mel bands of fbank features


@dataclass
class ModelConfig:
    conv_channels: int = 32        # channels of both conv layers
    conv_stack: ConvStack = "zoo"  # conv kernels/strides: zoo (time stride 2) | zoo_t4 | small_t4 | small_t3
    conv_impl: ConvImpl = "auto"   # auto (CPU: custom for the zoo's kernels, and for 3×3 stacks on AVX-512, else
                                   # onednn; onednn off CPU) | onednn (nn.Conv2d) | matmul (patches @ weight) |
                                   # custom (our CPU kernel, model/conv.py); matmul, custom: oneDNN at AVX-512
    conv_activation: ConvActivation = "tanh"  # tanh (zoo) | hardtanh (deepspeech.pytorch, clamp 0..20)
    conv_bias: bool = False        # bias in the conv layers (zoo: none)
    rnn_type: RnnType = "lstm"         # lstm | gru
    rnn_impl: RnnImpl = "auto"     # auto (CPU: custom for an LSTM if g++ can build it, else fused;
                                   # portable elsewhere) | fused (both directions in one oneDNN call, CPU)
                                   # | portable (one LSTM per direction, any device) | custom (our CPU
                                   # recurrence kernel, model/lstm_kernel.py; LSTM; portable off CPU)
    hidden_size: int = 1024        # RNN hidden units per direction
    num_layers: int = 5            # stacked RNN layers
    bidirectional: bool = True     # False = unidirectional with a lookahead conv (streaming)
    lookahead_context: int = 20    # lookahead frames for unidirectional models
    rnn_batch_norm: bool = False   # BatchNorm before RNN layers 2..N (deepspeech.pytorch)
    rnn_dropout: float = 0.0       # dropout on the input of RNN layers 2..N while training (0 = none)
    fc_batch_norm: bool = False    # BatchNorm before the output layer
    bn_impl: BnImpl = "auto"       # those two BatchNorms: auto (CPU: custom if g++ can build it, else onednn;
                                   # onednn elsewhere) | onednn (nn.BatchNorm1d) | custom (our CPU kernel,
                                   # model/batch_norm.py)
    ctc_impl: CtcImpl = "auto"     # the CTC loss: auto (CPU: custom if g++ can build it, else mindspore;
                                   # mindspore elsewhere) | mindspore (ops.ctc_loss) | custom (our CPU kernel,
                                   # model/loss.py)


@dataclass
class OptimConfig:
    lr: float = 3e-4               # peak learning rate (Adam)
    weight_decay: float = 0.0      # decoupled weight decay (AdamWeightDecay) when > 0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    warmup_steps: int = 0          # linear warm-up from 0 to lr over this many steps
    anneal: float = 1.1            # lr is divided by this after every epoch
    min_lr: float = 1e-6           # floor of the annealed learning rate
    max_grad_norm: float = 400.0   # clip gradients to this global norm; 0 = no clipping


@dataclass
class TrainConfig:
    output_dir: str = ""           # checkpoints, logs and metrics go here (required to train)
    epochs: int = 70
    max_steps: int = 0             # stop after this many optimizer steps; 0 = no limit
    seed: int = 1
    device_target: DeviceTarget = "CPU"     # CPU | GPU | Ascend
    device_id: int = 0
    cpu_threads: int = 0           # CPU op threads; 0 = one per core
    mode: ExecMode = "graph"            # graph | pynative
    jit_level: JitLevel = "O0"          # GRAPH compile level: O0 | O1 (automatic op fusion; for GPU/Ascend)
    amp_level: AmpLevel = "O0"          # O0 (fp32) | O1 | O2 | O3
    amp_dtype: AmpDtype = "float16"     # float16 | bfloat16 (target permitting)
    loss_scale: LossScale = "none"       # none | static | dynamic
    loss_scale_value: float = 65536.0  # initial (dynamic) or fixed (static) loss scale
    loss_scale_window: int = 1000  # dynamic: finite steps before the scale is doubled
    log_interval: int = 10         # steps between log lines
    save_interval_steps: int = 500 # steps between checkpoints (also one per epoch)
    keep_last: int = 3             # step/epoch checkpoints kept besides the best
    max_nonfinite_in_row: int = 20 # stop when this many consecutive steps are non-finite
    eval_every_epoch: bool = True  # dev loss and greedy WER after each epoch
    pretrained: str = ""           # initial weights (ours or a zoo checkpoint)
    allow_partial_load: bool = False  # load matching names only, report the rest
    resume: str = ""               # checkpoint file or run directory to resume from
    is_distributed: bool = False   # data-parallel over mindspore.communication ranks


@dataclass
class EvalConfig:
    decoder: DecoderKind = "greedy"        # greedy | beam
    beam_width: int = 16
    lm_path: str = ""              # ARPA word n-gram LM for beam search; "" = none
    lm_alpha: float = 0.8          # LM weight
    lm_beta: float = 1.0           # word insertion bonus
    lexicon: bool = False          # beam search spells only the LM's words (lexicon-constrained)
    oov_penalty: float = math.inf  # with lexicon: cost per letter outside it (ln units); inf = never
    cutoff_prob: float = 0.99      # per-frame cumulative-probability pruning
    cutoff_top_n: int = 20         # per-frame candidate characters
    output_dir: str = ""           # recogs/errs/wer-summary files; "" = beside the checkpoint


@dataclass
class ExportConfig:
    file_name: str = "deepspeech2" # output path without extension
    file_format: ExportFormat = "MINDIR"    # MINDIR | ONNX | AIR
    output: ExportOutput = "log_probs"      # log_probs | probs


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _convert(value: Any, typ: Any, where: str) -> Any:
    """Coerce a YAML/CLI value to the declared field type, or raise ConfigError."""
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return config_from_dict(value, typ, where)
    if typing.get_origin(typ) is Literal:
        # case-insensitive (``--file_format mindir``); the canonical spelling is stored
        matches = [c for c in choices(typ) if str(c).lower() == str(value).lower()]
        if not matches:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices(typ))}")
        return matches[0]
    if isinstance(value, str) and typ is not str:
        value = yaml.safe_load(value) if value != "" else value
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        return "" if value is None else str(value)
    raise ConfigError(f"{where}: unsupported type {typ}")


def config_from_dict(data: dict, cls: type = Config, where: str = "config") -> Any:
    """Build a dataclass from a nested dict; unknown keys are errors listing the valid ones."""
    types = _field_types(cls)
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(types)}")
    kwargs = {k: _convert(v, types[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def config_to_dict(cfg: Any) -> dict:
    """The nested plain-dict form of a config (what is written to YAML)."""
    return dataclasses.asdict(cfg)


def apply_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """Apply ``section.key=value`` overrides (values parsed as YAML scalars), then check the numeric
    ranges of the result (:mod:`deepspeech2.core.config_rules`)."""
    tree = config_to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        node = tree
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                raise ConfigError(
                    f"override {item!r}: unknown section {'.'.join(parts[:depth + 1])!r}; "
                    f"valid sections: {sorted(k for k, v in node.items() if isinstance(v, dict))}")
            node = node[part]
        leaf = parts[-1]
        if leaf not in node or isinstance(node[leaf], dict):
            raise ConfigError(f"override {item!r}: unknown key {dotted!r}; valid keys: "
                              f"{sorted(k for k, v in node.items() if not isinstance(v, dict))}")
        node[leaf] = raw
    cfg = config_from_dict(tree)
    errors = range_errors(config_to_dict(cfg))
    if errors:
        raise ConfigError("; ".join(errors))
    return cfg


BASE_KEY = "base"  # a preset's ``base: other.yaml`` (relative to the preset) supplies the keys it does not set


def _merge(base: dict, top: dict) -> dict:
    """``top`` over ``base``, section by section (a section in both is merged key by key)."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config_tree(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """The YAML mapping of ``path`` with its ``base:`` chain resolved (bases first, this file last)."""
    path = Path(path)
    if not path.is_file():
        where = f" (base of {_chain[-1]})" if _chain else ""
        raise ConfigError(f"config file {path} does not exist{where}")
    if path.resolve() in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path.resolve()))
        raise ConfigError(f"config files include each other in a cycle: {cycle}")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where} ({getattr(err, 'problem', None) or err}); "
                          "fix the file's syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: {BASE_KEY!r} must be the path of another YAML file, got {base!r}")
    return _merge(read_config_tree(path.parent / base, (*_chain, path.resolve())), data)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Defaults < YAML file (after its ``base:`` chain) < dotted overrides."""
    data = read_config_tree(path) if path else {}
    cfg = config_from_dict(data, Config, where=str(path or "config"))
    return apply_overrides(cfg, overrides)


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the effective configuration as YAML; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config_to_dict(cfg), fh, sort_keys=False)
    return path
