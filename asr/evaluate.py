"""Scoring a model on a manifest: WER and CER, and an errors file with each reference and hypothesis aligned."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import jiwer
from tqdm import tqdm

from asr.data import read_manifest
from asr.errors import AsrError
from asr.metrics import ErrorRate, char_error_rate, word_error_rate
from asr.transcribe import load_model

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
    recognizer = load_model(model_path, device=device, beam_size=beam_size)
    utterances = read_manifest(manifest)
    by_path = {}
    for utterance in utterances:
        by_path.setdefault(utterance.audio, []).append(utterance)
    hypotheses, unreadable = {}, 0
    results = recognizer.transcribe_files([u.audio for u in utterances], batch_size=batch_size)
    for utterance, (_, result) in tqdm(zip(utterances, results), total=len(utterances), unit="utt",
                                       desc="evaluating", disable=not show_progress):
        if isinstance(result, AsrError):
            log.warning("%s: %s", utterance.id, result)
            unreadable += 1
            hypotheses[utterance.id] = ""
        else:
            hypotheses[utterance.id] = result.text
    references = [u.text for u in utterances]
    hyps = [hypotheses[u.id] for u in utterances]
    report = EvaluationReport(word_error_rate(references, hyps), char_error_rate(references, hyps), len(utterances),
                              unreadable, tuple(references), tuple(hyps), tuple(u.id for u in utterances))
    if errors_path:
        write_errors_file(errors_path, report)
    return report


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
