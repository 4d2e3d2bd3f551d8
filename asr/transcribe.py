"""The Python transcription API: `asr.load_model(path).transcribe(audio)` -> typed transcripts.

A `Recognizer` holds a loaded model; it reads audio, batches utterances by length, runs the model, decodes, and
turns the CTC alignment into words with start and end times and confidences.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from asr.audio import AudioSource, load_audio
from asr.checkpoint import ModelFile, load_model_file
from asr.decode import Hypothesis, beam_search, greedy_decode
from asr.errors import AsrError
from asr.features import log_mel


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the audio
    end: float  # seconds
    confidence: float  # mean probability of the word's characters, 0..1


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[Word, ...]
    confidence: float  # mean probability of the emitted characters, 0..1
    duration: float  # seconds of audio
    source: str = ""  # the path, or "" for arrays and bytes


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AsrError("--device cuda was asked for, but no CUDA GPU is available; use --device cpu")
    return torch.device(device)


def read_in_batches(paths: Iterable[str | os.PathLike],
                    batch_size: int) -> Iterator[list[tuple[str, np.ndarray | AsrError]]]:
    """Read audio files `batch_size` at a time -> [(path, samples or the AsrError that file raised)], in order, so
    one unreadable file among many is reported without losing the others."""
    batch: list[tuple[str, np.ndarray | AsrError]] = []
    for path in paths:
        try:
            batch.append((str(path), load_audio(path)))
        except AsrError as error:
            batch.append((str(path), error))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


class Recognizer:
    """A loaded acoustic model with its features, vocabulary and default decoding options."""

    def __init__(self, model_file: ModelFile, device: str | None = "cpu", beam_size: int | None = None):
        self.device = resolve_device(device)
        self.model = model_file.model.to(self.device).eval()
        self.feature_config = model_file.feature_config
        self.vocabulary = model_file.vocabulary
        self.metadata = model_file.metadata
        self.beam_size = beam_size or int(model_file.decoding.get("beam_size", 1))
        # Seconds per model output frame: the feature hop times the front end's subsampling.
        self.frame_seconds = self.model.config.subsampling / self.feature_config.frames_per_second

    def transcribe(self, audio: AudioSource | Sequence[str | os.PathLike], sample_rate: int | None = None, *,
                   beam_size: int | None = None, batch_size: int = 8) -> Transcript | list[Transcript]:
        """Transcribe a path, the bytes of a file, or a waveform with its `sample_rate` -> `Transcript`;
        or a list of paths -> list of `Transcript`, in order. Raises `AudioError` on unusable audio."""
        if isinstance(audio, (list, tuple)):
            results = []
            for _, result in self.transcribe_files(audio, beam_size=beam_size, batch_size=batch_size):
                if isinstance(result, AsrError):
                    raise result
                results.append(result)
            return results
        samples = load_audio(audio, sample_rate)
        source = str(audio) if isinstance(audio, (str, os.PathLike)) else ""
        return self._transcribe_samples([samples], [source], beam_size)[0]

    def transcribe_files(self, paths: Iterable[str | os.PathLike], *, beam_size: int | None = None,
                         batch_size: int = 8) -> Iterator[tuple[str, Transcript | AsrError]]:
        """Yield (path, transcript) in order, or (path, error) for a file that could not be read, so one bad file
        among many is reported without losing the others. Reads at most `batch_size` files at a time."""
        for pending in read_in_batches(paths, batch_size):
            yield from self._flush(pending, beam_size)

    def _flush(self, pending, beam_size):
        readable = [(path, samples) for path, samples in pending if not isinstance(samples, AsrError)]
        transcripts = iter(self._transcribe_samples([s for _, s in readable], [p for p, _ in readable], beam_size))
        for path, samples in pending:
            yield path, samples if isinstance(samples, AsrError) else next(transcripts)

    @torch.inference_mode()
    def log_probs(self, waveforms: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Per-utterance (frames, vocab) log-probs for 16 kHz waveforms, computed as one padded batch."""
        if not waveforms:
            return []
        feats = [log_mel(w, self.feature_config) for w in waveforms]
        lengths = torch.tensor([f.shape[0] for f in feats])
        batch = pad_sequence(feats, batch_first=True).to(self.device)
        log_probs, out_lens = self.model(batch, lengths.to(self.device))
        return [log_probs[i, :n].float().cpu() for i, n in enumerate(out_lens.tolist())]

    def _transcribe_samples(self, waveforms, sources, beam_size) -> list[Transcript]:
        order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))  # similar lengths pad less
        results: list[Transcript | None] = [None] * len(waveforms)
        all_log_probs = self.log_probs([waveforms[i] for i in order])
        for i, log_probs in zip(order, all_log_probs):
            results[i] = self.decode(log_probs, len(waveforms[i]) / self.feature_config.sample_rate, sources[i],
                                     beam_size)
        return results

    def decode(self, log_probs: torch.Tensor, duration: float, source: str = "",
               beam_size: int | None = None) -> Transcript:
        """One utterance's (frames, vocab) log-probs -> `Transcript`; greedy when the beam size is 1."""
        beam = beam_size or self.beam_size
        hypothesis = greedy_decode(log_probs) if beam <= 1 else beam_search(log_probs, beam_size=beam)[0]
        return self._transcript(hypothesis, log_probs, duration, source)

    def _transcript(self, hypothesis: Hypothesis, log_probs: torch.Tensor, duration: float, source: str) -> Transcript:
        probs = log_probs.exp().numpy()
        best_label = probs.argmax(axis=1)
        words, current = [], []
        # Group (character, emission frame) by spaces into words.
        for token, frame in zip(hypothesis.tokens, hypothesis.timesteps):
            if self.vocabulary.tokens[token] == " ":
                if current:
                    words.append(current)
                current = []
            else:
                current.append((token, frame))
        if current:
            words.append(current)
        timed = []
        for characters in words:
            last_token, last_frame = characters[-1]
            end_frame = last_frame
            while end_frame + 1 < len(best_label) and best_label[end_frame + 1] == last_token:
                end_frame += 1  # a character spans the frames the best path keeps repeating it
            timed.append(Word(
                text=self.vocabulary.decode(token for token, _ in characters),
                start=round(characters[0][1] * self.frame_seconds, 3),
                end=round(min(duration, (end_frame + 1) * self.frame_seconds), 3),
                confidence=round(float(np.mean([probs[frame, token] for token, frame in characters])), 4),
            ))
        if hypothesis.tokens:
            confidence = float(np.mean([probs[f, t] for t, f in zip(hypothesis.tokens, hypothesis.timesteps)]))
        else:
            confidence = float(probs.max(axis=1).mean()) if len(probs) else 0.0
        return Transcript(text=" ".join(word.text for word in timed), words=tuple(timed),
                          confidence=round(confidence if math.isfinite(confidence) else 0.0, 4),
                          duration=round(duration, 3), source=source)


def load_model(path: str | os.PathLike, device: str | None = "cpu", beam_size: int | None = None) -> Recognizer:
    """Load a model file into a `Recognizer`. Raises `CheckpointError` for a missing, damaged or foreign file."""
    return Recognizer(load_model_file(path), device=device, beam_size=beam_size)
