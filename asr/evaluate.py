"""Scoring a model on a manifest: WER and CER, and an errors file with each reference and hypothesis aligned."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import jiwer
from tqdm import tqdm

from asr.audio import SAMPLE_RATE
from asr.data import read_manifest
from asr.errors import AsrError
from asr.metrics import ErrorRate, char_error_rate, word_error_rate
from asr.transcribe import Recognizer, load_model, read_in_batches

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
                      batch_size: int = 16, show_progress: bool = True) -> EvaluationReport:
    """Transcribe every utterance of `manifest` with the model and score against its text."""
    recognizer = load_model(model_path, device=device)
    report = evaluate_beams(recognizer, manifest, [beam_size or recognizer.beam_size], batch_size, show_progress)[0]
    if errors_path:
        write_errors_file(errors_path, report)
    return report


def evaluate_beams(recognizer: Recognizer, manifest: str | os.PathLike, beam_sizes: Sequence[int],
                   batch_size: int = 16, show_progress: bool = True) -> list[EvaluationReport]:
    """Score `manifest` at each beam size (1 = greedy), running the model once per utterance for all of them."""
    utterances = read_manifest(manifest)
    hypotheses = {beam: {} for beam in beam_sizes}
    unreadable = 0
    bar = tqdm(total=len(utterances), unit="utt", desc="evaluating", disable=not show_progress)
    in_order = iter(utterances)
    for batch in read_in_batches([u.audio for u in utterances], batch_size):
        chunk = [(next(in_order), samples) for _, samples in batch]
        for utterance, samples in chunk:
            if isinstance(samples, AsrError):
                log.warning("%s: %s", utterance.id, samples)
                unreadable += 1
        readable = [(u, w) for u, w in chunk if not isinstance(w, AsrError)]
        for (utterance, waveform), log_probs in zip(readable, recognizer.log_probs([w for _, w in readable])):
            for beam in beam_sizes:
                hypotheses[beam][utterance.id] = recognizer.decode(log_probs, len(waveform) / SAMPLE_RATE, "", beam).text
        bar.update(len(chunk))
    bar.close()
    references = [u.text for u in utterances]
    reports = []
    for beam in beam_sizes:
        hyps = [hypotheses[beam].get(u.id, "") for u in utterances]  # unreadable audio scores as all deleted
        reports.append(EvaluationReport(word_error_rate(references, hyps), char_error_rate(references, hyps),
                                        len(utterances), unreadable, tuple(references), tuple(hyps),
                                        tuple(u.id for u in utterances)))
    return reports


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
