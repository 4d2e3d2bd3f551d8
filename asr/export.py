"""Packing a tuned model to ship: its weights in fp16 (or int8) and its word LM beside it, in one folder.

The LM that `asr lm tune` recorded is copied next to the model as `<name>-lm.bin` (with its `.words` list), and the
model file is rewritten to name that copy, so the folder can move anywhere (into the package, as
`asr/models/default.pt`, for one). fp16 halves the weights at no measurable cost: they are widened back to fp32 on
loading, and only the rounding of the weights differs. int8 (one scale per row of each weight matrix) quarters
them, for a larger model in the same download; `round_trip_error` and the WER say what it cost.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.checkpoint import (MODEL_FORMAT, atomic_save, load_model_file, load_payload, model_from_payload,
                            model_payload, quantize_weights)
from asr.errors import AsrError


@dataclass
class ExportReport:
    files: list[Path]  # the model file first, then the LM's files
    has_lm: bool

    @property
    def megabytes(self) -> float:
        return sum(f.stat().st_size for f in self.files) / 1e6


WEIGHT_FORMATS = ("fp16", "int8", "fp32")


def export_model(model_path: str | os.PathLike, output_dir: str | os.PathLike, name: str = "model",
                 weights: str = "fp16") -> ExportReport:
    """Write `output_dir/<name>.pt` with its weights stored as `weights` (fp16, int8 or fp32) and its LM, if it has
    one."""
    if weights not in WEIGHT_FORMATS:
        raise AsrError(f"weights must be one of {', '.join(WEIGHT_FORMATS)}, not {weights!r}")
    model_path, output_dir = Path(model_path), Path(output_dir)
    payload = load_payload(model_path, MODEL_FORMAT)
    model_file = model_from_payload(payload, model_path)  # checks the file is whole before anything is written
    # Start from fp32 weights, so that a file exported before can be exported again in another form.
    payload = dict(payload, **model_payload(model_file.model, model_file.feature_config, model_file.vocabulary,
                                            payload.get("metadata"), payload.get("decoding")))
    payload.pop("int8_scales", None)
    # Parameters only: the feature statistics are buffers, and they stay exact.
    parameters = {key for key, _ in model_file.model.named_parameters()}
    if weights == "fp16":
        payload["state_dict"] = {key: value.half() if key in parameters else value
                                 for key, value in payload["state_dict"].items()}
    elif weights == "int8":
        # The matrices (nearly all the bytes) as int8; the small convolution kernels and the biases in fp16.
        matrices = {key for key in parameters if payload["state_dict"][key].dim() == 2}
        payload["state_dict"] = {key: value.half() if key in parameters - matrices else value
                                 for key, value in payload["state_dict"].items()}
        payload = quantize_weights(payload, sorted(matrices))
    output_dir.mkdir(parents=True, exist_ok=True)
    files = [output_dir / f"{name}.pt"]
    decoding = dict(payload.get("decoding", {}))
    recorded = decoding.get("lm")
    if recorded:
        source = model_path.parent / recorded
        if not source.is_file():
            raise AsrError(f"{model_path}: its LM {source} is missing; rerun `asr lm tune`, or export a model "
                           "without one")
        target = output_dir / f"{name}-lm{source.suffix}"
        copies = [(source, target)]
        words = Path(f"{source}.words")
        if words.is_file():
            copies.append((words, Path(f"{target}.words")))
        for origin, destination in copies:
            if origin.resolve() != destination.resolve():
                shutil.copyfile(origin, destination)
            files.append(destination)
        decoding["lm"] = target.name
    payload["decoding"] = decoding
    payload["metadata"] = dict(payload.get("metadata", {}), exported_from=model_path.name,
                               weights=weights)
    atomic_save(payload, files[0])
    return ExportReport(files, has_lm=bool(recorded))


def round_trip_error(model_path: str | os.PathLike, exported_path: str | os.PathLike, frames: int = 300) -> float:
    """The largest difference in log-probability between two model files on the same random features."""
    original, exported = load_model_file(model_path), load_model_file(exported_path)
    model = original.model  # features at the training set's own mean and spread
    noise = torch.randn(1, frames, original.feature_config.n_mels, generator=torch.Generator().manual_seed(0))
    features = model.feature_mean + model.feature_std * noise
    lengths = torch.tensor([frames])
    with torch.no_grad():
        a, _ = original.model(features, lengths)
        b, _ = exported.model(features, lengths)
    return float((a - b).abs().max())
