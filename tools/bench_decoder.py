"""Benchmark: our LM beam search against pyctcdecode and torchaudio's flashlight decoder, on the same log-probs,
over a grid of LM weights, word bonuses and penalties, at each beam.

The acoustic model runs once over the manifest; then in every cell each decoder decodes the same (frames, vocab)
log-probs with the same LM and weights, on one thread. Each row prints the WERs, how often each side's transcript
scores higher under the objective both maximise where the two disagree (search errors: "peer better / ours"), and
how many times faster ours is (ours keeps an LM-score cache across utterances, warmed first on other utterances of
the manifest, see --warmup, and every cell starts from that same cache, so no cell gains from what an earlier one
asked about the same utterances; the peers' caches last one utterance). Flashlight's lexicon decoder only spells
words of its lexicon, so it is compared with ours under the same constraint (`ours, lexicon`); pyctcdecode, like
ours by default, also allows unknown words at a penalty. The last line names every cell where ours loses.

    python tools/bench_decoder.py --model asr/models/default.pt --lm asr/models/default-lm.bin \
        --manifest recipes/librispeech/data/manifests/test.jsonl --limit 160 \
        --lm-weights 0.5 0.9 1.3 --word-bonuses -2 0 2 --penalties off on --beams 10 50 100

pyctcdecode and flashlight-text are benchmark-only: `pip install flashlight-text pygtrie hypothesis` and
`pip install --no-deps pyctcdecode` (pyctcdecode 0.5 pins numpy below 2, which it runs well without, and the
Kokoro engine needs numpy 2).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import queue
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asr.checkpoint import load_model_file
from asr.evaluate import model_outputs
from asr.lm import LanguageModel
from asr.lm_decoder import UNK_CHARS, DecoderOptions, LmBeamSearchDecoder, _SearchState
from asr.metrics import word_error_rate
from asr.transcribe import Recognizer

LN10 = math.log(10)


def timed(decode_all):
    started = time.perf_counter()
    texts = decode_all()
    return texts, time.perf_counter() - started


def from_cache(decoder: LmBeamSearchDecoder, warmed: _SearchState) -> LmBeamSearchDecoder:
    """`decoder` with its own copy of the LM-score cache in `warmed` (its working memory otherwise shared)."""
    state = warmed.copy()
    decoder = decoder.with_options()
    decoder._idle_states = queue.SimpleQueue()
    decoder._idle_states.put(state)
    return decoder


def ours(decoder: LmBeamSearchDecoder, batch, threads: int):
    vocabulary = decoder.vocabulary
    results = decoder.decode_batch(batch, workers=threads)
    return [vocabulary.decode(found[0].tokens) if found else "" for found in results]


def fused_score(log_probs, text, vocabulary, lm: LanguageModel, options: DecoderOptions) -> float:
    """The quantity every decoder here maximises, for one transcript: CTC log-likelihood (all alignments) +
    LM weight * LM log-prob + word bonus * words + unknown-word penalty * unknown words (once per 6 letters)."""
    import torch

    target = torch.tensor(vocabulary.encode(text), dtype=torch.long)
    acoustic = -torch.nn.functional.ctc_loss(torch.from_numpy(log_probs).double()[:, None], target[None],
                                             torch.tensor([len(log_probs)]), torch.tensor([len(target)]),
                                             reduction="sum").item()
    words = text.split()
    known = set(lm.words)
    unknown = sum(max(1.0, len(w) / UNK_CHARS) for w in words if w not in known)
    return (acoustic + options.lm_weight * lm.model.score(" ".join(words)) * LN10
            + options.word_bonus * len(words) + options.unk_penalty * unknown)


def search_errors(batch, ours_texts, their_texts, vocabulary, lm, options) -> tuple[int, int, int]:
    """Where two decoders disagree, whose transcript scores higher under the shared objective:
    (agree, theirs higher, ours higher or equal)."""
    agree = theirs_higher = ours_higher = 0
    for log_probs, mine, theirs in zip(batch, ours_texts, their_texts):
        if mine == theirs:
            agree += 1
        elif fused_score(log_probs, theirs, vocabulary, lm, options) > fused_score(log_probs, mine, vocabulary, lm,
                                                                                   options) + 1e-6:
            theirs_higher += 1
        else:
            ours_higher += 1
    return agree, theirs_higher, ours_higher


def pyctcdecode_decoder(vocabulary, lm: LanguageModel, alpha, beta, options: DecoderOptions):
    from pyctcdecode import build_ctcdecoder

    labels = ["" if i == vocabulary.blank else token for i, token in enumerate(vocabulary.tokens)]
    return build_ctcdecoder(labels, kenlm_model_path=str(lm.path), unigrams=lm.words, alpha=alpha, beta=beta,
                            unk_score_offset=options.unk_penalty)


def pyctcdecode_decode(decoder, batch, beam, options: DecoderOptions):
    return [" ".join(decoder.decode(lp, beam_width=beam, beam_prune_logp=-options.beam_threshold,
                                    token_min_logp=options.token_min_logp).split()) for lp in batch]


def flashlight_decoder(vocabulary, lm: LanguageModel, lexicon_path: Path, alpha, beta, beam, options: DecoderOptions):
    from torchaudio.models.decoder import ctc_decoder

    tokens = ["-" if i == vocabulary.blank else "|" if token == " " else token
              for i, token in enumerate(vocabulary.tokens)]
    # Flashlight's KenLM wrapper returns log10 scores, where ours and pyctcdecode's are natural logs.
    return ctc_decoder(lexicon=str(lexicon_path), tokens=tokens, lm=str(lm.path), nbest=1, beam_size=beam,
                       beam_threshold=options.beam_threshold, lm_weight=alpha * LN10, word_score=beta,
                       unk_word="<unk>", sil_score=0.0, log_add=True, blank_token="-", sil_token="|")


def flashlight_decode(decoder, batch):
    import torch

    texts = []
    for lp in batch:
        emissions = torch.from_numpy(np.ascontiguousarray(lp))[None]
        found = decoder(emissions)[0]
        texts.append(" ".join(found[0].words) if found else "")
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="acoustic model file")
    parser.add_argument("--manifest", required=True, help="utterances to decode, with references")
    parser.add_argument("--lm", required=True, help="ARPA or KenLM binary (with its .words list)")
    parser.add_argument("--beams", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--lm-weights", type=float, nargs="+", default=None,
                        help="LM weights of the grid (default: the model's tuned value, or 0.5)")
    parser.add_argument("--word-bonuses", type=float, nargs="+", default=None,
                        help="word bonuses of the grid (default: the model's tuned value, or 1.0)")
    parser.add_argument("--penalties", nargs="+", choices=["off", "on"], default=["off"],
                        help="off: unknown-word penalty -10 (pyctcdecode's default) and no blank penalty; on: the "
                             "model's tuned unknown-word and blank penalties, given to every decoder (the blank "
                             "penalty by lowering the blank's log-probs they all read)")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances only (0: all)")
    parser.add_argument("--warmup", type=int, default=160,
                        help="decode this many other utterances of the manifest (those after the first --limit) "
                             "with ours at every LM weight and bonus before timing, so that no cell is timed while "
                             "it fills ours' LM-score cache, as a long-running process has it filled (0: none)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["pyctcdecode", "flashlight"],
                        help="leave a peer out (e.g. one too slow at large beams)")
    parser.add_argument("--output", help="also write the tables (markdown) here")
    args = parser.parse_args()

    model_file = load_model_file(args.model)
    tuned = model_file.decoding
    weights = args.lm_weights or [float(tuned.get("lm_weight", 0.5))]
    bonuses = args.word_bonuses or [float(tuned.get("word_bonus", 1.0))]
    lm = LanguageModel(args.lm)
    recognizer = Recognizer(model_file, lm=lm)
    outputs = model_outputs(recognizer, args.manifest)
    utterances = [u for u in outputs.utterances if u.id in outputs.log_probs]
    warmup = utterances[args.limit:args.limit + args.warmup] if args.limit else []
    if args.limit:
        utterances = utterances[:args.limit]
    plain_batch = [outputs.log_probs[u.id].numpy().astype(np.float32) for u in utterances]
    references = [u.text for u in utterances]
    audio_seconds = sum(outputs.durations[u.id] for u in utterances)
    blank = recognizer.vocabulary.blank
    print(f"{len(plain_batch)} utterances, {audio_seconds / 60:.1f} min of audio; LM {lm.path.name} (order "
          f"{lm.order}, {len(lm.words)} words); {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          "every decoder on one thread", flush=True)

    base = LmBeamSearchDecoder(recognizer.vocabulary, lm, DecoderOptions(beam_threshold=10.0, token_min_logp=-5.0))
    warmup_batch = [outputs.log_probs[u.id].numpy().astype(np.float32) for u in warmup]
    base.decode((warmup_batch or plain_batch)[0])  # load numba's machine code (or compile it) before timing
    for alpha in weights if warmup_batch else []:
        for beta in bonuses:
            ours(base.with_options(lm_weight=alpha, word_bonus=beta, beam_size=max(args.beams)), warmup_batch, 1)
    if warmup_batch:
        print(f"ours' LM-score cache warmed on {len(warmup_batch)} other utterances", flush=True)
    warmed = base._take_state()  # the cache every cell starts from
    lexicon_path = Path(tempfile.mkdtemp()) / "lexicon.txt"
    lexicon_path.write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in base.lexicon.words), encoding="utf-8")
    rows, losses = [], []
    for penalties in args.penalties:
        unk_penalty = float(tuned.get("unk_penalty", -10.0)) if penalties == "on" else -10.0
        blank_penalty = float(tuned.get("blank_penalty", 0.0)) if penalties == "on" else 0.0
        batch = plain_batch
        if blank_penalty:  # applied once, to what every decoder reads: the peers have no such option
            batch = [lp.copy() for lp in plain_batch]
            for lp in batch:
                lp[:, blank] -= blank_penalty
        for alpha in weights:
            for beta in bonuses:
                options = DecoderOptions(lm_weight=alpha, word_bonus=beta, unk_penalty=unk_penalty,
                                         beam_threshold=10.0, token_min_logp=-5.0)
                py_decoder = (None if "pyctcdecode" in args.skip
                              else pyctcdecode_decoder(recognizer.vocabulary, lm, alpha, beta, options))
                for beam in args.beams:
                    row = {"penalties": penalties, "alpha": alpha, "beta": beta, "beam": beam}
                    decoder = base.with_options(**{k: getattr(options, k) for k in
                                                   ("lm_weight", "word_bonus", "unk_penalty")}, beam_size=beam)
                    decoder = from_cache(decoder, warmed)
                    mine, row["ours_s"] = timed(lambda: ours(decoder, batch, 1))
                    row["ours"] = 100 * word_error_rate(references, mine).rate
                    if py_decoder is not None:
                        theirs, row["py_s"] = timed(lambda: pyctcdecode_decode(py_decoder, batch, beam, options))
                        row["py"] = 100 * word_error_rate(references, theirs).rate
                        row["py_errors"] = search_errors(batch, mine, theirs, recognizer.vocabulary, lm, options)
                    lexicon_decoder = from_cache(decoder.with_options(lexicon_only=True), warmed)
                    mine, row["lex_s"] = timed(lambda: ours(lexicon_decoder, batch, 1))
                    row["lex"] = 100 * word_error_rate(references, mine).rate
                    if "flashlight" not in args.skip:
                        fl = flashlight_decoder(recognizer.vocabulary, lm, lexicon_path, alpha, beta, beam, options)
                        theirs, row["fl_s"] = timed(lambda: flashlight_decode(fl, batch))
                        row["fl"] = 100 * word_error_rate(references, theirs).rate
                        row["fl_errors"] = search_errors(batch, mine, theirs, recognizer.vocabulary, lm, options)
                    rows.append(row)
                    print(format_row(row), flush=True)
                    losses += [f"{name} at {penalties}/{alpha:g}/{beta:g}/{beam}" for name, lost in (
                        ("pyctcdecode WER", row.get("py", 1e9) < row["ours"] - 1e-9),
                        ("pyctcdecode search", "py_errors" in row and row["py_errors"][1] > row["py_errors"][2]),
                        ("flashlight WER", row.get("fl", 1e9) < row["lex"] - 1e-9),
                        ("flashlight search", "fl_errors" in row and row["fl_errors"][1] > row["fl_errors"][2]))
                        if lost]
    table = [HEADER, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    table += [format_row(row) for row in rows]
    table.append("")
    table.append(f"Cells where ours loses (WER higher, or the peer's transcript scores higher more often): "
                 f"{', '.join(losses) if losses else 'none'}")
    print("\n".join(table))
    if args.output:
        Path(args.output).write_text("\n".join(table) + "\n")
    return 0


HEADER = ("| penalties | LM weight | word bonus | beam | ours WER | pyctcdecode WER | search: peer better / ours "
          "| speed vs pyctcdecode | ours, lexicon WER | flashlight WER | search: peer better / ours "
          "| speed vs flashlight |")


def format_row(row: dict) -> str:
    def cell(key, errors, speed_of, ours_key, ours_speed):
        if key not in row:
            return "– | – | –"
        return (f"{row[key]:.2f} | {row[errors][1]} / {row[errors][2]} | "
                f"{row[speed_of] / row[ours_speed]:.1f}x")
    return (f"| {row['penalties']} | {row['alpha']:g} | {row['beta']:g} | {row['beam']} | {row['ours']:.2f} | "
            f"{cell('py', 'py_errors', 'py_s', 'ours', 'ours_s')} | {row['lex']:.2f} | "
            f"{cell('fl', 'fl_errors', 'fl_s', 'lex', 'lex_s')} |")


if __name__ == "__main__":
    sys.exit(main())
