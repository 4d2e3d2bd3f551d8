"""Scoring a model on a manifest: WER and CER, and an errors file with each reference and hypothesis aligned."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import jiwer
import torch
from tqdm import tqdm

from asr.audio import SAMPLE_RATE
from asr.data import Utterance, read_manifest
from asr.errors import AsrError
from asr.metrics import ErrorRate, char_error_rate, word_error_rate
from asr.transcribe import Recognizer, load_model, read_in_batches
from asr.transcript import Transcript
from asr.voting import vote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationReport:
    wer: ErrorRate
    cer: ErrorRate
    utterances: int
    unreadable: int  # utterances whose audio could not be read (scored as empty hypotheses)
    references: tuple[str, ...]
    hypotheses: tuple[str, ...]
    ids: tuple[str, ...]


def evaluate_manifest(model_path: str | os.PathLike, manifest: str | os.PathLike, device: str = "cpu",
                      beam_size: int | None = None, errors_path: str | os.PathLike | None = None,
                      batch_size: int = 16, show_progress: bool = True, lm=None, lm_weight: float | None = None,
                      word_bonus: float | None = None, unk_penalty: float | None = None,
                      blank_penalty: float | None = None, passes: int | None = None,
                      int8: bool = False) -> EvaluationReport:
    """Transcribe every utterance of `manifest` with the model and score against its text. `lm` as for
    `load_model`: a path, None for the model's tuned LM if it has one, False for none."""
    recognizer = load_model(model_path, device=device, lm=lm, lm_weight=lm_weight, word_bonus=word_bonus,
                            unk_penalty=unk_penalty, blank_penalty=blank_penalty, passes=passes, int8=int8)
    report = evaluate_beams(recognizer, manifest, [beam_size or recognizer.beam_size], batch_size, show_progress)[0]
    if errors_path:
        write_errors_file(errors_path, report)
    return report


@dataclass(frozen=True)
class ModelOutputs:
    """The acoustic model's log-probs for every readable utterance of a manifest, to decode in several ways."""

    utterances: tuple[Utterance, ...]
    log_probs: dict[str, torch.Tensor]  # by utterance id
    durations: dict[str, float]
    unreadable: int


def model_outputs(recognizer: Recognizer, manifest: str | os.PathLike, batch_size: int = 16,
                  show_progress: bool = True) -> ModelOutputs:
    return outputs_by_delay(recognizer, manifest, [0], batch_size, show_progress)[0]


def outputs_by_delay(recognizer: Recognizer, manifest: str | os.PathLike, delays: Sequence[int],
                     batch_size: int = 16, show_progress: bool = True) -> list[ModelOutputs]:
    """The model's outputs on every utterance of `manifest` delayed by each of `delays` samples (one
    `ModelOutputs` per delay, for voted passes), reading each file once."""
    utterances = read_manifest(manifest)
    log_probs, durations, unreadable = [{} for _ in delays], {}, 0
    bar = tqdm(total=len(utterances), unit="utt", desc="acoustic model", disable=not show_progress)
    in_order = iter(utterances)
    for batch in read_in_batches([u.audio for u in utterances], batch_size):
        chunk = [(next(in_order), samples) for _, samples in batch]
        for utterance, samples in chunk:
            if isinstance(samples, AsrError):
                log.warning("%s: %s", utterance.id, samples)
                unreadable += 1
        readable = [(u, w) for u, w in chunk if not isinstance(w, AsrError)]
        for utterance, waveform in readable:
            durations[utterance.id] = len(waveform) / SAMPLE_RATE
        for by_id, delay in zip(log_probs, delays):
            for (utterance, _), lp in zip(readable, recognizer.log_probs([w for _, w in readable], delay)):
                by_id[utterance.id] = lp
        bar.update(len(chunk))
    bar.close()
    return [ModelOutputs(tuple(utterances), by_id, durations, unreadable) for by_id in log_probs]


def transcripts_by_pass(recognizer: Recognizer, passes: Sequence[ModelOutputs], ids: Sequence[str], beam_size: int,
                        use_lm: bool = True, decoder=None) -> list[list[Transcript]]:
    """Each pass's transcripts of the utterances `ids`, in that order (what voting takes, one per pass)."""
    durations = [passes[0].durations[i] for i in ids]
    return [recognizer.decode_many([p.log_probs[i] for i in ids], durations, ids, beam_size, use_lm, decoder)
            for p in passes]


def score_outputs(recognizer: Recognizer, outputs: ModelOutputs | Sequence[ModelOutputs], beam_size: int,
                  use_lm: bool = True, decoder=None) -> EvaluationReport:
    """Decode `outputs` (with `decoder`, an `LmBeamSearchDecoder`, when given) and score against the references.
    Given the outputs of several passes (one per delay), each is decoded and their transcripts are voted."""
    passes = [outputs] if isinstance(outputs, ModelOutputs) else list(outputs)
    outputs = passes[0]
    ids = [u.id for u in outputs.utterances if u.id in outputs.log_probs]
    if len(passes) == 1 and decoder is not None:
        found = decoder.decode_batch([outputs.log_probs[i].numpy() for i in ids])
        texts = [recognizer.vocabulary.decode(h[0].tokens) if h else "" for h in found]
    elif len(passes) == 1:
        found = recognizer.hypotheses([outputs.log_probs[i] for i in ids], beam_size, use_lm)
        texts = [recognizer.vocabulary.decode(h.tokens) for h in found]
    else:
        per_pass = transcripts_by_pass(recognizer, passes, ids, beam_size, use_lm, decoder)
        texts = [vote(transcripts).text for transcripts in zip(*per_pass)]
    by_id = dict(zip(ids, texts))
    references = [u.text for u in outputs.utterances]
    hyps = [by_id.get(u.id, "") for u in outputs.utterances]  # unreadable audio scores as all deleted
    return EvaluationReport(word_error_rate(references, hyps), char_error_rate(references, hyps),
                            len(outputs.utterances), outputs.unreadable, tuple(references), tuple(hyps),
                            tuple(u.id for u in outputs.utterances))


def evaluate_beams(recognizer: Recognizer, manifest: str | os.PathLike, beam_sizes: Sequence[int],
                   batch_size: int = 16, show_progress: bool = True, use_lm: bool = True) -> list[EvaluationReport]:
    """Score `manifest` at each beam size (1 = greedy without an LM), running the model once (once per pass) for
    all of them."""
    outputs = outputs_by_delay(recognizer, manifest, recognizer.delays, batch_size, show_progress)
    return [score_outputs(recognizer, outputs, beam, use_lm) for beam in beam_sizes]


_UTTERANCE_LINE = re.compile(r"^(\S+)\s+errors (\d+)/(\d+)$")  # the first line of each block write_errors_file writes


def read_errors_file(path: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """Utterance id -> (word errors, reference words), from a file `write_errors_file` wrote."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeError) as error:
        raise AsrError(f"{path}: cannot read the errors file ({error})") from None
    errors = {}
    for line in lines:
        match = _UTTERANCE_LINE.match(line.strip())
        if match:
            errors[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    if not errors:
        raise AsrError(f"{path}: no 'ID  errors E/N' lines; give a file written by `asr evaluate --errors-file`")
    return errors


def write_errors_file(path: str | os.PathLike, report: EvaluationReport) -> None:
    """One block per utterance with reference and hypothesis aligned word by word; worst utterances first."""
    blocks = []
    for utt_id, reference, hypothesis in zip(report.ids, report.references, report.hypotheses):
        rate = word_error_rate([reference], [hypothesis])
        output = jiwer.process_words(reference or " ", hypothesis or " ")
        alignment = jiwer.visualize_alignment(output, show_measures=False, skip_correct=False)
        body = "\n".join(line for line in alignment.splitlines() if line.strip() and not line.startswith("==="))
        blocks.append((rate.errors, f"{utt_id}  errors {rate.errors}/{rate.reference_length}\n{body}\n"))
    blocks.sort(key=lambda block: -block[0])
    header = f"WER {report.wer}\nCER {report.cer}\n\n"
    Path(path).write_text(header + "\n".join(text for _, text in blocks), encoding="utf-8")
