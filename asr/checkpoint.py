"""Model files and training-state files: self-describing, versioned, written atomically, loaded without code.

A model file holds everything `asr.load_model` needs: the model and feature configs (with the normalisation
statistics, as model buffers), the vocabulary, the weights, training metadata and default decoding options.
Files are read with `torch.load(weights_only=True)`, which refuses to run code, because a model file is untrusted
input. Only plain containers, numbers, strings and tensors are stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from asr import limits
from asr.errors import AsrError, CheckpointError, one_line
from asr.features import FeatureConfig
from asr.model import BiLstmCtc, ModelConfig
from asr.text import Vocabulary
from asr.widen import widen_lstm_state

MODEL_FORMAT = "asr-model"
TRAINING_STATE_FORMAT = "asr-training-state"
FORMAT_VERSION = 1  # bump on any change that an older reader would misread
# Files whose weight matrices are stored as int8 (`int8_scales` present): a version-1 reader would load the int8
# values as if they were weights, so these carry version 2 and older releases refuse them.
INT8_WEIGHTS_VERSION = 2
READABLE_VERSIONS = (FORMAT_VERSION, INT8_WEIGHTS_VERSION)


# What a model file may declare, checked before anything is built from it: a file of a few kB could otherwise ask
# for gigabytes of LSTM (the `large` preset has 1024 units and 5 layers; these leave room above it).
CONFIG_BOUNDS = {
    "model_config": {"n_mels": (1, 512), "vocab_size": (2, 4096), "conv_channels": (1, 1024),
                     "hidden_size": (1, 4096), "num_layers": (1, 16), "dropout": (0.0, 1.0)},
    "feature_config": {"sample_rate": (8000, 48000), "n_mels": (1, 512), "win_length": (16, 8192),
                       "hop_length": (1, 4096), "n_fft": (16, 16384), "f_min": (0.0, 24000.0),
                       "f_max": (1.0, 24000.0), "log_floor": (1e-20, 1.0)},
}


def check_config_fields(payload: dict, source) -> None:
    """Refuse a config field of the wrong type or outside its bounds, naming it (one line, before any allocation)."""
    for section, bounds in CONFIG_BOUNDS.items():
        values = payload.get(section)
        if not isinstance(values, dict):
            raise CheckpointError(f"{source}: model file has no {section}; it is damaged or of another kind")
        for name, (low, high) in bounds.items():
            value = values.get(name)
            kind = float if isinstance(low, float) else int
            if name not in values:
                continue  # the dataclass default applies
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    kind is int and value != int(value)) or not math.isfinite(value) or not low <= value <= high:
                raise CheckpointError(f"{source}: model file field {section}.{name} is {value!r}, not a "
                                      f"{kind.__name__} from {low} to {high}; the file is damaged")
    features = payload["feature_config"]
    if features.get("win_length", 400) > features.get("n_fft", 512):
        raise CheckpointError(f"{source}: model file's window ({features.get('win_length')}) is longer than its FFT "
                              f"({features.get('n_fft')}); the file is damaged")


def tensor_checksum(payload: dict) -> str:
    """SHA-256 over every stored tensor (weights, normalisation statistics, int8 scales): name, dtype, shape and
    bytes, in name order. Written with the file and checked on loading, so damage is never loaded silently."""
    digest = hashlib.sha256()
    for group in ("state_dict", "int8_scales"):
        for name, tensor in sorted((payload.get(group) or {}).items()):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{group}/{name}/{tensor.dtype}/{tuple(tensor.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


@dataclass
class ModelFile:
    """The contents of a model file, ready to use."""

    model: BiLstmCtc
    feature_config: FeatureConfig
    vocabulary: Vocabulary
    metadata: dict[str, Any] = field(default_factory=dict)  # how it was trained: data, steps, hardware
    decoding: dict[str, Any] = field(default_factory=dict)  # default decoding options (e.g. tuned LM weights)


def atomic_save(payload: dict, path: str | os.PathLike) -> None:
    """Write `payload` with torch.save so that `path` is either the old file or the complete new one. A model
    payload gets the checksum of its tensors (`tensor_checksum`)."""
    if payload.get("format") == MODEL_FORMAT:
        payload = {**payload, "tensor_sha256": tensor_checksum(payload)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_payload(path: str | os.PathLike, expected_format: str | tuple[str, ...], map_location="cpu") -> dict:
    """Read a file written by `atomic_save`, checking its format (one of `expected_format`) and version.
    Never executes code from the file."""
    path = Path(path)
    formats = (expected_format,) if isinstance(expected_format, str) else expected_format
    kind = "model" if MODEL_FORMAT in formats else "training-state"
    if not path.exists():
        raise CheckpointError(f"{path}: no such {kind} file; check the path")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a {kind} file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated, not a torch file, or contains objects that would need code to load
        text = str(error)
        if "Unsupported global" in text:  # the weights-only unpickler met an object that needs code to rebuild
            name = text.split("Unsupported global:")[1].split()[1] if "GLOBAL" in text else "a Python object"
            reason = f"it holds {name}, which would run code when loaded"
        elif "WeightsUnpickler error" in text:  # torch's advice (load with weights_only=False) must not reach users
            reason = "its bytes are not a PyTorch file"
        else:  # the first sentence: torch goes on about how files get corrupted
            reason = one_line(error).split(". ")[0].rstrip(".")
        raise CheckpointError(f"{path}: not a readable asr {kind} file ({reason}); it may be truncated, damaged "
                              "or of another kind: re-download or re-train it") from None
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: not an asr {kind} file (format {found!r}, expected {' or '.join(formats)})")
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"{path}: {kind} file format version {version}, but this asr reads versions "
                              f"{', '.join(map(str, READABLE_VERSIONS))}; use the asr release that wrote it, or "
                              "re-train")
    return payload


def model_payload(model: BiLstmCtc, feature_config: FeatureConfig, vocabulary: Vocabulary,
                  metadata: dict | None = None, decoding: dict | None = None) -> dict:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": dataclasses.asdict(model.config),
        "feature_config": dataclasses.asdict(feature_config),
        "vocabulary": list(vocabulary.tokens),
        "state_dict": state,
        "metadata": dict(metadata or {}),
        "decoding": dict(decoding or {}),
    }


def save_model(path: str | os.PathLike, model: BiLstmCtc, feature_config: FeatureConfig, vocabulary: Vocabulary,
               metadata: dict | None = None, decoding: dict | None = None) -> None:
    atomic_save(model_payload(model, feature_config, vocabulary, metadata, decoding), path)


def update_decoding(path: str | os.PathLike, output: str | os.PathLike, changes: dict) -> None:
    """Write the model file `path` again to `output` (may be the same) with its stored decoding options updated by
    `changes`, its tensors untouched (an fp16 or int8 export stays as it is)."""
    payload = load_payload(path, MODEL_FORMAT)
    model_from_payload(payload, path)  # checked before it is written anywhere
    atomic_save({**payload, "decoding": {**dict(payload.get("decoding") or {}), **changes}}, output)


def quantize_weights(payload: dict, names) -> dict:
    """The payload with the weight matrices `names` stored as int8, one scale per row (per output unit, or per
    LSTM gate unit): a quarter of fp32's size. Rounding moves each weight by at most half its row's largest
    magnitude over 127; loading widens them back to fp32 (`dequantized_state`)."""
    state, scales = dict(payload["state_dict"]), {}
    for name in names:
        weights = state[name].float()
        scale = weights.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # (rows,)
        state[name] = torch.round(weights / scale[:, None]).to(torch.int8)
        scales[name] = scale
    return {**payload, "format_version": INT8_WEIGHTS_VERSION, "state_dict": state, "int8_scales": scales}


def dequantized_state(payload: dict) -> dict:
    """The payload's state dict with int8-stored matrices widened back to fp32 (KeyError or ValueError if the
    scales do not match them)."""
    state, scales = dict(payload["state_dict"]), payload.get("int8_scales") or {}
    for name, scale in scales.items():
        weights = state[name]
        if weights.dtype != torch.int8 or weights.dim() != 2 or scale.shape != (weights.shape[0],):
            raise ValueError(f"int8 weights {name} do not match their scales")
        state[name] = weights.float() * scale.float()[:, None]
    return state


def model_from_payload(payload: dict, source: str | os.PathLike) -> ModelFile:
    """Rebuild the model from a payload of `model_payload`; `source` names it in errors. The fields are checked
    before anything is built, and the tensors against the checksum written with them (files from before checksums
    have none to check, and load as they did)."""
    check_config_fields(payload, source)
    stored = payload.get("tensor_sha256")
    if stored is not None:
        try:
            actual = tensor_checksum(payload)
        except (AttributeError, TypeError, RuntimeError) as error:
            raise CheckpointError(f"{source}: damaged model file ({one_line(error)}); re-download or re-train it") \
                from None
        if actual != stored:
            raise CheckpointError(f"{source}: damaged model file: its weights do not match the checksum written with "
                                  "them; re-download or re-train it")
    try:
        model_config = ModelConfig(**payload["model_config"])
        feature_config = FeatureConfig(**payload["feature_config"])
        vocabulary = Vocabulary(tuple(payload["vocabulary"]))
        state = dequantized_state(payload)
        # The config's shapes, on the meta device (no memory), must be the stored tensors' before the model is
        # built for real: a small file must not make us allocate what its config claims.
        with torch.device("meta"):
            wanted = {name: tuple(t.shape) for name, t in BiLstmCtc(model_config).state_dict().items()}
        stored = {name: tuple(t.shape) for name, t in state.items() if isinstance(t, torch.Tensor)}
        if wanted != stored:
            odd = sorted(set(wanted.items()) ^ set(stored.items()))[0][0]
            raise ValueError(f"its weights do not fit its model config (first difference: {odd})")
        model = BiLstmCtc(model_config)
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        reason = one_line(error)
        raise CheckpointError(f"{source}: damaged or inconsistent model file ({reason}); re-download or "
                              "re-train it") from None
    if len(vocabulary) != model_config.vocab_size:
        raise CheckpointError(f"{source}: vocabulary has {len(vocabulary)} tokens but the model emits "
                              f"{model_config.vocab_size}; the file is damaged")
    model.eval()
    decoding = payload.get("decoding", {})
    if not isinstance(decoding, dict):
        raise CheckpointError(f"{source}: model file's decoding options are a {type(decoding).__name__}, not a "
                              "table; the file is damaged")
    check_decoding_options(decoding, source)
    metadata = payload.get("metadata", {})
    return ModelFile(model, feature_config, vocabulary, metadata if isinstance(metadata, dict) else {}, decoding)


def check_decoding_options(decoding: dict, source) -> None:
    """The decoding options stored by `asr lm tune`, through the same limits as the CLI's (asr.limits)."""
    checks = {"lm_beam_size": limits.check_beam_size, "beam_size": limits.check_beam_size,
              "passes": limits.check_passes, "lm_weight": limits.check_lm_weight,
              "word_bonus": limits.check_word_bonus, "unk_penalty": limits.check_unk_penalty,
              "blank_penalty": limits.check_blank_penalty}
    for name, check in checks.items():
        if name in decoding:
            try:
                check(decoding[name])
            except AsrError as error:
                raise CheckpointError(f"{source}: stored decoding option {name}: {error}; the file is damaged") \
                    from None
    if "lm" in decoding and not isinstance(decoding["lm"], (str, type(None))):
        raise CheckpointError(f"{source}: stored LM path is a {type(decoding['lm']).__name__}; the file is damaged")


def load_model_file(path: str | os.PathLike) -> ModelFile:
    """Load a model file (on the CPU) and rebuild the model in eval mode."""
    return model_from_payload(load_payload(path, MODEL_FORMAT), path)


def load_model_or_checkpoint(path: str | os.PathLike) -> ModelFile:
    """Load the model of a model file or of a training-state checkpoint (which holds a model file's payload)."""
    payload = load_payload(path, (MODEL_FORMAT, TRAINING_STATE_FORMAT))
    return model_from_payload(payload["model"] if payload["format"] == TRAINING_STATE_FORMAT else payload, path)


def initialize_from(model: BiLstmCtc, source: ModelFile, feature_config: FeatureConfig,
                    source_path: str | os.PathLike) -> None:
    """Start `model` from the weights and feature normalisation of `source`, a model of the same shape that may
    emit fewer CTC frames per LSTM step, or have fewer LSTM units per direction.

    A widened output layer starts as copies of the source's, so the new model first emits each frame
    `outputs_per_step` times, which CTC reads as the same transcript; training then lets the copies differ.
    Added LSTM units start unread (`asr.widen`), so the model first emits what the source did.
    """
    if source.feature_config != feature_config or len(source.vocabulary) != model.config.vocab_size:
        raise CheckpointError(f"{source_path}: its features or vocabulary differ from this run's; initialise from a "
                              "model trained with the same feature settings")
    copies = model.config.outputs_per_step // source.model.config.outputs_per_step
    state = dict(source.model.state_dict())
    if copies > 1:
        state["output.weight"] = state["output.weight"].repeat(copies, 1)  # (copies * vocab, 2 * hidden)
        state["output.bias"] = state["output.bias"].repeat(copies)  # (copies * vocab,)
    wanted = model.state_dict()
    hidden, new_hidden = source.model.config.hidden_size, model.config.hidden_size
    grown_source = dataclasses.replace(source.model.config, hidden_size=new_hidden, dropout=model.config.dropout,
                                       outputs_per_step=model.config.outputs_per_step)
    if hidden < new_hidden and grown_source == model.config:
        state = widen_lstm_state(state, wanted, model.config.num_layers, hidden, new_hidden)
    if state.keys() != wanted.keys() or any(state[k].shape != wanted[k].shape for k in wanted):
        raise CheckpointError(f"{source_path}: its model ({source.model.config}) does not match this run's "
                              f"({model.config}); initialise from a model of the same size")
    model.load_state_dict(state)


def average_checkpoints(paths, output: str | os.PathLike, metadata: dict | None = None) -> ModelFile:
    """Average the weights of several training-state (or model) files of one model shape into a model file.

    Averaging the last few epochs' weights smooths out the noise of the final steps and usually lowers WER a
    little; the feature statistics and configs come from the last file.
    """
    if not paths:
        raise CheckpointError("no checkpoints to average; train first")
    models = [load_model_or_checkpoint(path) for path in paths]
    last = models[-1]
    for path, model_file in zip(paths, models):
        if model_file.model.config != last.model.config:
            raise CheckpointError(f"{path}: its model config differs from that of {paths[-1]}; average checkpoints "
                                  "of one model shape only")
    average = {}
    for name, tensor in last.model.state_dict().items():
        if tensor.is_floating_point():
            average[name] = sum(m.model.state_dict()[name].double() for m in models).div(len(models)).to(tensor.dtype)
        else:
            average[name] = tensor
    last.model.load_state_dict(average)
    # File names alone when all come from one folder (one run's epochs), else the paths, which tell runs apart.
    one_folder = len({Path(p).parent for p in paths}) == 1
    names = [Path(p).name if one_folder else str(p) for p in paths]
    metadata = {**last.metadata, **(metadata or {}), "averaged_checkpoints": names}
    save_model(output, last.model, last.feature_config, last.vocabulary, metadata, last.decoding)
    return load_model_file(output)

