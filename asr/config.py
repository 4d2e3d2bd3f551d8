"""One configuration schema for an experiment: model, features, SpecAugment and training options.

Presets are plain Python values; `apply_overrides` takes `section.key=value` strings (the `--set` flag), converts
each value to the field's type and rejects unknown keys.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Sequence

from asr.errors import ConfigError
from asr.features import FeatureConfig, SpecAugmentConfig
from asr.model import ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    max_batch_frames: int = 40_000  # padded feature frames per batch (100 per second of audio)
    learning_rate: float = 1e-3  # peak, after warm-up
    weight_decay: float = 1e-2
    warmup_steps: int = 200
    final_lr_fraction: float = 0.05  # cosine decay ends at this fraction of the peak
    grad_clip: float = 5.0  # max gradient norm
    spec_augment: bool = True
    speed_perturbation: bool = False  # play each utterance at 0.9, 1.0 or 1.1 times its speed (Ko et al., 2015)
    # Up to this many seconds of the recording's background added before and after each utterance, so the model
    # does not learn where in a file speech starts (every synthetic utterance starts after the same short pause).
    pad_seconds: float = 0.0
    sortagrad: bool = True  # first epoch shortest utterances first
    seed: int = 0
    precision: str = "auto"  # fp32, bf16 or fp16; auto = bf16 on a GPU, fp32 on the CPU
    num_workers: int = 2  # data-loading processes
    checkpoint_every_steps: int = 0  # also checkpoint every N steps (0: at the end of each epoch only)
    keep_checkpoints: int = 5  # epoch checkpoints kept
    log_every_steps: int = 10
    # A model file whose weights start the run instead of random ones (fine-tuning, or going on with a wider
    # output layer: see `initialize_from`). Read once, when the run starts.
    init_from: str = ""

    def __post_init__(self):
        for name in ("learning_rate", "weight_decay", "final_lr_fraction", "grad_clip"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"train.{name} must be a finite number of 0 or more, not {value!r}")
        for name in ("epochs", "max_batch_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, not {getattr(self, name)}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"train.precision must be auto, fp32, bf16 or fp16, not {self.precision!r}")
        if not (math.isfinite(self.pad_seconds) and self.pad_seconds >= 0):
            raise ConfigError(f"train.pad_seconds must be 0 (off) or more, not {self.pad_seconds}")


@dataclass(frozen=True)
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "ExperimentConfig":
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(values) - set(sections)
        if unknown:
            raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
        kwargs = {}
        for section_field in dataclasses.fields(cls):
            section_type = type(getattr(cls(), section_field.name))
            kwargs[section_field.name] = section_type(**values.get(section_field.name, {}))
        return cls(**kwargs)


PRESETS: dict[str, ExperimentConfig] = {
    # A few seconds of speech on a CPU, for tests and the quick start.
    "tiny": ExperimentConfig(
        model=ModelConfig(subsampling=2, conv_channels=8, hidden_size=96, num_layers=2, dropout=0.0),
        train=TrainConfig(epochs=400, max_batch_frames=8_000, learning_rate=5e-3, weight_decay=0.0, warmup_steps=10,
                          final_lr_fraction=0.3, spec_augment=False, num_workers=0, log_every_steps=10),
    ),
    # About 10 hours of speech in about an hour on two CPU cores, or minutes on a GPU. Subsampling 4 keeps the
    # LSTMs at 25 steps a second (3x faster than 2; 99.5% of utterances still fit CTC), and small batches give
    # the many steps CTC needs to get past its all-blank start.
    "small": ExperimentConfig(
        model=ModelConfig(subsampling=4, conv_channels=16, hidden_size=192, num_layers=3, dropout=0.1),
        train=TrainConfig(epochs=5, max_batch_frames=12_000, learning_rate=3e-3, warmup_steps=100,
                          num_workers=1),
    ),
    # The bundled default model (asr/models/README.md: trained 12 epochs, taken on to 17, then 10 more from those
    # weights with model.outputs_per_step=2, then 8 more with train.pad_seconds=0.4, then 3 on 24.5 hours, 2 on
    # 48.9 and 1 on 97.8): about 10 minutes an epoch of 9.8 hours on two CPU cores, small enough for real-time
    # transcription on a laptop.
    "base": ExperimentConfig(
        model=ModelConfig(subsampling=4, conv_channels=32, hidden_size=256, num_layers=3, dropout=0.1),
        train=TrainConfig(epochs=16, max_batch_frames=16_000, learning_rate=3e-3, warmup_steps=200,
                          num_workers=1, checkpoint_every_steps=200),
    ),
    "medium": ExperimentConfig(
        model=ModelConfig(subsampling=2, conv_channels=32, hidden_size=512, num_layers=4, dropout=0.2),
        train=TrainConfig(epochs=40, max_batch_frames=120_000, learning_rate=1e-3, warmup_steps=1000,
                          speed_perturbation=True),
    ),
    # The Deep Speech 2 size: 2 convolutions and 5 BiLSTM layers of 1024 (Amodei et al., 2016).
    "large": ExperimentConfig(
        model=ModelConfig(subsampling=4, conv_channels=32, hidden_size=1024, num_layers=5, dropout=0.25),
        train=TrainConfig(epochs=50, max_batch_frames=240_000, learning_rate=6e-4, warmup_steps=2000,
                          speed_perturbation=True),
    ),
}


def preset(name: str) -> ExperimentConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def _convert(text: str, target_type, key: str):
    if target_type in (bool, "bool"):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true or false, not {text!r}")
    for kind in (int, float, str):
        if target_type in (kind, kind.__name__):
            try:
                return kind(text)
            except ValueError:
                raise ConfigError(f"{key}: expected {kind.__name__}, not {text!r}") from None
    raise ConfigError(f"{key}: cannot set a field of type {target_type}")


def apply_overrides(config: ExperimentConfig, overrides: Sequence[str]) -> ExperimentConfig:
    """Apply `section.key=value` overrides, e.g. ["model.hidden_size=512", "train.epochs=5"]."""
    for override in overrides:
        key, sep, value = override.partition("=")
        section_name, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {override!r}: expected section.key=value, e.g. train.epochs=5")
        if section_name not in {f.name for f in dataclasses.fields(config)}:
            raise ConfigError(f"--set {override!r}: unknown section {section_name!r}; sections: "
                              f"{', '.join(f.name for f in dataclasses.fields(config))}")
        section = getattr(config, section_name)
        fields = {f.name: f.type for f in dataclasses.fields(section)}
        if name not in fields:
            raise ConfigError(f"--set {override!r}: unknown key {name!r} in {section_name}; keys: "
                              f"{', '.join(fields)}")
        try:
            section = dataclasses.replace(section, **{name: _convert(value, fields[name], key)})
        except (TypeError, ValueError) as error:
            raise ConfigError(f"--set {override!r}: {error}") from None
        config = dataclasses.replace(config, **{section_name: section})
    return config
