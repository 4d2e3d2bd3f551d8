import pytest

from asr.config import PRESETS, ExperimentConfig, apply_overrides, preset
from asr.errors import ConfigError


def test_overrides_are_typed():
    config = apply_overrides(preset("small"), ["model.hidden_size=128", "train.learning_rate=2e-4",
                                               "train.spec_augment=false", "train.precision=bf16"])
    assert config.model.hidden_size == 128 and config.train.learning_rate == 2e-4
    assert config.train.spec_augment is False and config.train.precision == "bf16"


@pytest.mark.parametrize("override,message", [
    ("model.hidden=3", "unknown key"), ("optim.lr=1", "unknown section"), ("train.epochs=ten", "expected int"),
    ("train.spec_augment=maybe", "true or false"), ("epochs=3", "section.key=value"),
    ("model.subsampling=3", "subsampling"), ("train.pad_seconds=-0.5", "pad_seconds must be 0"),
])
def test_bad_overrides_are_rejected(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(preset("tiny"), [override])


def test_presets_round_trip_through_dicts():
    for name, config in PRESETS.items():
        assert ExperimentConfig.from_dict(config.to_dict()) == config, name
    assert PRESETS["large"].model.hidden_size == 1024 and PRESETS["large"].model.num_layers == 5


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")
