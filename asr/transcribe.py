"""The Python transcription API: `asr.load_model(path).transcribe(audio)` -> typed transcripts.

A `Recognizer` holds a loaded model; it reads audio, batches utterances by length, runs the model, decodes, and
turns the CTC alignment into words with start and end times and confidences.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from asr import limits
from asr.audio import AudioSource, audio_duration, fill_silent_edges, load_audio, raise_quiet_level
from asr.checkpoint import ModelFile, load_model_file
from asr.decode import Hypothesis, beam_search, greedy_decode
from asr.errors import AsrError
from asr.features import log_mel
from asr.lm import LanguageModel
from asr.long_audio import LongAudioFile, WindowConfig, pause_segments, rerun_on_segments, windowed_log_probs
from asr.transcript import Transcript, Word, shifted
from asr.voting import vote

log = logging.getLogger(__name__)

DEFAULT_LM_BEAM = 32  # beam width when an LM is used and neither the caller nor the model file names one


def resolve_device(device: str | None) -> torch.device:
    device = limits.check_device(device)
    if device == "auto":
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
    """A loaded acoustic model with its features, vocabulary and default decoding options, and optionally a word
    n-gram LM for beam search (`lm`: a path or a `LanguageModel`; the LM weight, word bonus, unknown-word penalty
    and blank penalty default to those `asr lm tune` stored in the model file). `passes` > 1 transcribes that many
    copies of the audio, each delayed a little more, and keeps what most of them agree on (`asr.voting`): fewer
    errors for `passes` times the work; by default, the number stored in the model file, else 1."""

    def __init__(self, model_file: ModelFile, device: str | None = "cpu", beam_size: int | None = None,
                 lm: str | os.PathLike | LanguageModel | None = None, lm_weight: float | None = None,
                 word_bonus: float | None = None, int8: bool = False, threads: int | None = None,
                 window: WindowConfig = WindowConfig(), unk_penalty: float | None = None,
                 blank_penalty: float | None = None, passes: int | None = None):
        from asr.lm_decoder import DecoderOptions, LmBeamSearchDecoder

        self.device = resolve_device(device)
        if threads is not None:
            threads = limits.check_threads(threads)
            torch.set_num_threads(threads)
        if beam_size is not None:
            beam_size = limits.check_beam_size(beam_size)
        self.threads = threads
        self.window = window
        self.model = model_file.model.to(self.device).eval()
        if int8:
            if self.device.type != "cpu":
                raise AsrError("int8 weights are for the CPU; drop --int8 or use --device cpu")
            self.model = quantize_int8(self.model)
        self.int8 = int8
        self.feature_config = model_file.feature_config
        self.vocabulary = model_file.vocabulary
        self.metadata = model_file.metadata
        decoding = model_file.decoding
        self.lm_decoder = None
        if lm is not None:
            lm = lm if isinstance(lm, LanguageModel) else LanguageModel(lm)
            defaults = DecoderOptions()

            def chosen(name: str, given: float | None) -> float:
                """The caller's value, else the one `asr lm tune` stored with the model, else the decoder's."""
                return float(decoding.get(name, getattr(defaults, name)) if given is None else given)

            options = DecoderOptions(beam_size=beam_size or int(decoding.get("lm_beam_size", DEFAULT_LM_BEAM)),
                                     lm_weight=chosen("lm_weight", lm_weight),
                                     word_bonus=chosen("word_bonus", word_bonus),
                                     unk_penalty=chosen("unk_penalty", unk_penalty),
                                     blank_penalty=chosen("blank_penalty", blank_penalty))
            self.lm_decoder = LmBeamSearchDecoder(self.vocabulary, lm, options)
            self.beam_size = options.beam_size
        else:
            self.beam_size = beam_size or int(decoding.get("beam_size", 1))
        # Seconds per model output frame: the feature hop times the feature frames per output frame.
        self.frame_seconds = self.model.config.input_frames_per_output / self.feature_config.frames_per_second
        self.delays = self.pass_delays(decoding.get("passes", 1) if passes is None else passes)

    def pass_delays(self, passes: int) -> list[int]:
        """The delays in samples of `passes` voted passes: even steps across one LSTM step (40 ms for the default
        model), the phases at which its mistakes differ most (asr.voting)."""
        passes = limits.check_passes(passes)
        step_samples = self.frame_seconds * self.model.config.outputs_per_step * self.feature_config.sample_rate
        return [int(round(k * step_samples / passes)) for k in range(passes)]

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
        if isinstance(audio, (str, os.PathLike)) and self._is_long(audio):
            return self.transcribe_long(audio, beam_size=beam_size)
        samples = load_audio(audio, sample_rate)
        source = str(audio) if isinstance(audio, (str, os.PathLike)) else ""
        return self._transcribe_samples([samples], [source], beam_size)[0]

    def transcribe_files(self, paths: Iterable[str | os.PathLike], *, beam_size: int | None = None,
                         batch_size: int = 8) -> Iterator[tuple[str, Transcript | AsrError]]:
        """Yield (path, transcript) in order, or (path, error) for a file that could not be read, so one bad file
        among many is reported without losing the others. Reads at most `batch_size` files at a time."""
        short: list[str] = []
        for path in paths:
            if self._is_long(path):
                yield from self._flush_short(short, beam_size, batch_size)
                short = []
                try:
                    yield str(path), self.transcribe_long(path, beam_size=beam_size)
                except AsrError as error:
                    yield str(path), error
            else:
                short.append(str(path))
                if len(short) == batch_size:
                    yield from self._flush_short(short, beam_size, batch_size)
                    short = []
        yield from self._flush_short(short, beam_size, batch_size)

    def transcribe_waveforms(self, waveforms: Sequence[np.ndarray], beam_size: int | None = None) -> list[Transcript]:
        """16 kHz mono float32 waveforms (as `asr.audio.load_audio` returns them) -> one transcript each, run as one
        padded batch; each should be at most `self.window.window_seconds` long (longer audio: `transcribe_long`)."""
        return self._transcribe_samples(list(waveforms), [""] * len(waveforms), beam_size)

    def _flush_short(self, paths, beam_size, batch_size):
        for pending in read_in_batches(paths, batch_size):
            yield from self._flush(pending, beam_size)

    def _is_long(self, path) -> bool:
        """Whether a file is long enough to be read in windows (unreadable files take the short path, which
        reports them)."""
        try:
            return audio_duration(path) > self.window.window_seconds
        except AsrError:
            return False

    def transcribe_long(self, path: str | os.PathLike, beam_size: int | None = None) -> Transcript:
        """Transcribe a file of any length: the acoustic model runs on windows cut at pauses (see
        `asr.long_audio`), their log-probs are joined, split at pauses, and the pieces are decoded in parallel; word
        times are from the start of the file."""
        with LongAudioFile(path) as audio:
            joined = windowed_log_probs(audio, lambda samples: self.log_probs([samples])[0], self.vocabulary.blank,
                                        self.frame_seconds, self.window, self.model.config.outputs_per_step)
            segments = pause_segments(joined.numpy(), self.vocabulary.blank, self.frame_seconds)
            transcripts = []
            for delay in self.delays:  # one pass at a time, so memory does not grow with the passes
                # A delay moves each rerun segment's frames by under two; decoded apart at pauses, they need no
                # realigning, and the words' times are moved back below.
                refined = rerun_on_segments(audio, joined, segments, self.vocabulary.blank,
                                            lambda waveforms: self.log_probs(waveforms, delay),
                                            self.frame_seconds, self.window.window_seconds)
                transcript = self._segments_transcript(refined, segments, audio.seconds, str(path), beam_size)
                transcripts.append(shifted(transcript, delay / self.feature_config.sample_rate, audio.seconds))
        return vote(transcripts)

    def _segments_transcript(self, joined: torch.Tensor, segments: list[tuple[int, int]], duration: float,
                             source: str, beam_size: int | None) -> Transcript:
        """Decode each pause segment of a file's log-probs apart and join the words."""
        pieces = self.hypotheses([joined[begin:end] for begin, end in segments], beam_size)
        tokens, times, score = [], [], 0.0
        for (begin, _), piece in zip(segments, pieces):
            if not piece.tokens:
                continue
            if tokens:
                tokens.append(self.vocabulary.space)
                times.append(begin)
            tokens.extend(piece.tokens)
            times.extend(begin + t for t in piece.timesteps)
            score += piece.score
        return self._transcript(Hypothesis(tuple(tokens), tuple(times), score), joined, duration, source)

    def _flush(self, pending, beam_size):
        readable = [(path, samples) for path, samples in pending if not isinstance(samples, AsrError)]
        transcripts = iter(self._transcribe_samples([s for _, s in readable], [p for p, _ in readable], beam_size))
        for path, samples in pending:
            yield path, samples if isinstance(samples, AsrError) else next(transcripts)

    @torch.inference_mode()
    def log_probs(self, waveforms: Sequence[np.ndarray], delay: int = 0) -> list[torch.Tensor]:
        """Per-utterance (frames, vocab) log-probs for 16 kHz waveforms, computed as one padded batch, each
        delayed by `delay` samples; digital silence around them is heard as background (`fill_silent_edges`), and a
        recording quieter than any the model trained on is raised to their level (`raise_quiet_level`)."""
        if not waveforms:
            return []
        silence = np.zeros(delay, dtype=np.float32)
        feats = [log_mel(fill_silent_edges(raise_quiet_level(np.concatenate([silence, w]) if delay else w)),
                         self.feature_config) for w in waveforms]
        lengths = torch.tensor([f.shape[0] for f in feats])
        batch = pad_sequence(feats, batch_first=True).to(self.device)
        log_probs, out_lens = self.model(batch, lengths.to(self.device))
        return [log_probs[i, :n].float().cpu() for i, n in enumerate(out_lens.tolist())]

    def _transcribe_samples(self, waveforms, sources, beam_size) -> list[Transcript]:
        """One transcript per waveform; with several passes, the vote of one per delay."""
        order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))  # similar lengths pad less
        ordered = [waveforms[i] for i in order]
        rate = self.feature_config.sample_rate
        durations = [len(w) / rate for w in ordered]
        all_log_probs = [lp for delay in self.delays for lp in self.log_probs(ordered, delay)]
        # Every pass in one decoding batch, which keeps the decoder's threads evenly busy.
        decoded = self.decode_many(all_log_probs, [d + delay / rate for delay in self.delays for d in durations],
                                   [sources[i] for i in order] * len(self.delays), beam_size)
        n = len(ordered)
        per_delay = [[shifted(t, delay / rate, d) for t, d in zip(decoded[k * n:(k + 1) * n], durations)]
                     for k, delay in enumerate(self.delays)]
        results: list[Transcript | None] = [None] * len(waveforms)
        for i, transcripts in zip(order, zip(*per_delay)):
            results[i] = vote(transcripts)
        return results

    def hypotheses(self, all_log_probs: Sequence[torch.Tensor], beam_size: int | None = None,
                   use_lm: bool = True, decoder=None) -> list[Hypothesis]:
        """The best hypothesis of each utterance: greedy at beam 1 without an LM, else beam search (with the LM
        when there is one and `use_lm`, or with `decoder`, an `LmBeamSearchDecoder`, as it is); LM searches run on
        every core."""
        beam = beam_size or self.beam_size
        if decoder is None and self.lm_decoder is not None and use_lm:
            decoder = self.lm_decoder
            if beam != decoder.options.beam_size:
                decoder = decoder.with_options(beam_size=beam)
        if decoder is not None:
            return [found[0] if found else Hypothesis((), (), -math.inf)
                    for found in decoder.decode_batch([lp.numpy() for lp in all_log_probs], workers=self.threads)]
        if beam <= 1:
            return [greedy_decode(lp) for lp in all_log_probs]
        return [beam_search(lp, beam_size=beam)[0] for lp in all_log_probs]

    def decode_many(self, all_log_probs: Sequence[torch.Tensor], durations: Sequence[float],
                    sources: Sequence[str], beam_size: int | None = None, use_lm: bool = True,
                    decoder=None) -> list[Transcript]:
        hypotheses = self.hypotheses(all_log_probs, beam_size, use_lm, decoder)
        return [self._transcript(h, lp, d, s) for h, lp, d, s in zip(hypotheses, all_log_probs, durations, sources)]

    def decode(self, log_probs: torch.Tensor, duration: float, source: str = "",
               beam_size: int | None = None, use_lm: bool = True) -> Transcript:
        """One utterance's (frames, vocab) log-probs -> `Transcript`; greedy when the beam size is 1 and there is
        no LM."""
        return self.decode_many([log_probs], [duration], [source], beam_size, use_lm)[0]

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


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of the LSTM and linear layers: int8 weights, activations quantised on the fly;
    about 4x smaller and faster matrix products on the CPU."""
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch 2.11 still has eager dynamic quantization but announces torchao's
        warnings.simplefilter("ignore", DeprecationWarning)
        return quantize_dynamic(model, {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8)


def stored_lm_path(model_path: str | os.PathLike, model_file: ModelFile) -> Path | None:
    """The LM `asr lm tune` recorded in the model file (relative to the model's folder), if it is still there."""
    recorded = model_file.decoding.get("lm")
    if not recorded:
        return None
    path = Path(model_path).parent / recorded
    if not path.is_file():
        log.warning("%s: its language model %s is missing; decoding without it (put the file back, or pass --lm)",
                    model_path, path)
        return None
    return path


def load_model(path: str | os.PathLike | None = None, device: str | None = "cpu", beam_size: int | None = None,
               lm: str | os.PathLike | LanguageModel | bool | None = None, lm_weight: float | None = None,
               word_bonus: float | None = None, int8: bool = False, threads: int | None = None,
               unk_penalty: float | None = None, blank_penalty: float | None = None,
               passes: int | None = None) -> Recognizer:
    """Load a model file into a `Recognizer`. Raises `CheckpointError` for a missing, damaged or foreign file.

    `path`: None loads the bundled default model, as `asr transcribe` does without --model.
    `lm`: a language model path (or loaded `LanguageModel`); None uses the one `asr lm tune` stored with the model,
    if any; False decodes without one."""
    if path is None:
        from asr.models import default_model_path

        path = default_model_path()
    model_file = load_model_file(path)
    if lm is None:
        lm = stored_lm_path(path, model_file)
    elif lm is False:
        lm = None
    return Recognizer(model_file, device=device, beam_size=beam_size, lm=lm, lm_weight=lm_weight,
                      word_bonus=word_bonus, int8=int8, threads=threads, unk_penalty=unk_penalty,
                      blank_penalty=blank_penalty, passes=passes)


@functools.lru_cache(maxsize=2)
def _cached_recognizer(path: str | None) -> Recognizer:
    return load_model(path)


def transcribe(audio: AudioSource | Sequence[str | os.PathLike], sample_rate: int | None = None,
               model: str | os.PathLike | None = None) -> Transcript | list[Transcript]:
    """One call: `load_model(model).transcribe(audio, sample_rate)`, the loaded model kept for the next call.
    `model` None is the bundled default with its LM."""
    return _cached_recognizer(None if model is None else str(model)).transcribe(audio, sample_rate)
