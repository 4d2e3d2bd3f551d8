"""Benchmark: our LM beam search against pyctcdecode and torchaudio's flashlight decoder, on the same log-probs.

The acoustic model runs once over the manifest; then every decoder decodes the same (frames, vocab) log-probs
with the same ARPA/binary LM, LM weight and word bonus, at each beam width. For each it prints utterances per
second, the real-time factor (decoding seconds / audio seconds) and the WER. All decoders run on one thread; ours
is also timed on every core (`ours, N threads`), as `asr` uses it.

Flashlight's lexicon decoder only spells words of its lexicon, so it is compared with ours under the same
constraint (`ours, lexicon`); pyctcdecode, like ours by default, also allows unknown words at a penalty.

    python tools/bench_decoder.py --model exp/model.pt --manifest dev.jsonl --lm lm.bin --beams 10 50 100

pyctcdecode and flashlight-text are benchmark-only dependencies: `pip install pyctcdecode flashlight-text`.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asr.checkpoint import load_model_file
from asr.evaluate import model_outputs
from asr.lm import LanguageModel
from asr.lm_decoder import UNK_CHARS, DecoderOptions, LmBeamSearchDecoder
from asr.metrics import word_error_rate
from asr.transcribe import Recognizer

LN10 = math.log(10)


def timed(decode_all):
    started = time.perf_counter()
    texts = decode_all()
    return texts, time.perf_counter() - started


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
    parser.add_argument("--lm-weight", type=float, default=None, help="default: the model's tuned value, or 0.5")
    parser.add_argument("--word-bonus", type=float, default=None, help="default: the model's tuned value, or 1.0")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances only (0: all)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["pyctcdecode", "flashlight"],
                        help="leave a peer out (e.g. one too slow at large beams)")
    parser.add_argument("--output", help="also write the table (markdown) here")
    args = parser.parse_args()

    model_file = load_model_file(args.model)
    alpha = args.lm_weight if args.lm_weight is not None else float(model_file.decoding.get("lm_weight", 0.5))
    beta = args.word_bonus if args.word_bonus is not None else float(model_file.decoding.get("word_bonus", 1.0))
    lm = LanguageModel(args.lm)
    recognizer = Recognizer(model_file, lm=lm, lm_weight=alpha, word_bonus=beta)
    outputs = model_outputs(recognizer, args.manifest)
    utterances = [u for u in outputs.utterances if u.id in outputs.log_probs]
    if args.limit:
        utterances = utterances[:args.limit]
    batch = [outputs.log_probs[u.id].numpy().astype(np.float32) for u in utterances]
    references = [u.text for u in utterances]
    audio_seconds = sum(outputs.durations[u.id] for u in utterances)
    threads = os.cpu_count() or 1
    print(f"{len(batch)} utterances, {audio_seconds / 60:.1f} min of audio; LM {lm.path.name} (order {lm.order}, "
          f"{len(lm.words)} words); LM weight {alpha}, word bonus {beta}; "
          f"{platform.processor() or platform.machine()}, {threads} cores", flush=True)

    options = DecoderOptions(lm_weight=alpha, word_bonus=beta, beam_threshold=10.0, token_min_logp=-5.0)
    base = LmBeamSearchDecoder(recognizer.vocabulary, lm, options)
    base.decode(batch[0])  # load numba's cached machine code (or compile it, the first time) before timing
    lexicon_path = Path(tempfile.mkdtemp()) / "lexicon.txt"
    lexicon_path.write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in base.lexicon.words), encoding="utf-8")
    py_decoder = None if "pyctcdecode" in args.skip else pyctcdecode_decoder(recognizer.vocabulary, lm, alpha, beta,
                                                                              options)
    rows, decoded, disagreements = [], {}, []

    def report(name, beam, texts, seconds):
        decoded[name] = texts
        wer = word_error_rate(references, texts).rate
        rows.append((name, beam, len(batch) / seconds, seconds / audio_seconds, 100 * wer))
        print(f"beam {beam:>4}  {name:<28} {len(batch) / seconds:9.1f} utt/s   RTF {seconds / audio_seconds:.5f}   "
              f"WER {100 * wer:6.2f}%", flush=True)

    for beam in args.beams:
        decoder = base.with_options(beam_size=beam)
        report("ours, 1 thread", beam, *timed(lambda: ours(decoder, batch, 1)))
        report(f"ours, {threads} threads", beam, *timed(lambda: ours(decoder, batch, threads)))
        if py_decoder is not None:
            report("pyctcdecode", beam, *timed(lambda: pyctcdecode_decode(py_decoder, batch, beam, options)))
            counts = search_errors(batch, decoded["ours, 1 thread"], decoded["pyctcdecode"], recognizer.vocabulary,
                                   lm, options)
            disagreements.append(("pyctcdecode", beam, *counts))
        lexicon_decoder = decoder.with_options(lexicon_only=True)
        report("ours, lexicon, 1 thread", beam, *timed(lambda: ours(lexicon_decoder, batch, 1)))
        if "flashlight" not in args.skip:
            fl = flashlight_decoder(recognizer.vocabulary, lm, lexicon_path, alpha, beta, beam, options)
            report("flashlight (torchaudio)", beam, *timed(lambda: flashlight_decode(fl, batch)))
            counts = search_errors(batch, decoded["ours, lexicon, 1 thread"], decoded["flashlight (torchaudio)"],
                                   recognizer.vocabulary, lm, options)
            disagreements.append(("flashlight (vs ours, lexicon)", beam, *counts))

    table = ["| beam | decoder | utterances/s | real-time factor | WER % |", "| ---: | --- | ---: | ---: | ---: |"]
    table += [f"| {beam} | {name} | {speed:.1f} | {rtf:.5f} | {wer:.2f} |" for name, beam, speed, rtf, wer in rows]
    table += ["", "Where ours and a peer disagree, whose transcript scores higher under the objective both maximise:",
              "", "| peer | beam | same transcript | peer's higher | ours higher or equal |",
              "| --- | ---: | ---: | ---: | ---: |"]
    table += [f"| {name} | {beam} | {agree} | {theirs} | {mine} |" for name, beam, agree, theirs, mine in disagreements]
    print("\n".join(table))
    if args.output:
        Path(args.output).write_text("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
