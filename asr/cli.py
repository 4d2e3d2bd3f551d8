"""The `asr` command: a thin shell over the Python API. Each flag maps to one keyword argument.

Bad input ends with one line on stderr naming the file and the problem, and exit status 2.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import textwrap
from pathlib import Path

from asr import limits
from asr.errors import AsrError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _recognizer(args):
    """The model `transcribe` and `serve` run: --model (default: the bundled one) with the decoding options."""
    from asr.transcribe import load_model

    return load_model(args.model, device=args.device, beam_size=args.beam_size, lm=_lm_choice(args),
                      lm_weight=args.lm_weight, word_bonus=args.word_bonus, unk_penalty=args.unk_penalty,
                      blank_penalty=args.blank_penalty, int8=args.int8, threads=args.threads, passes=args.passes)


def _lm_choice(args):
    """--lm PATH, --no-lm (False), or neither (None: the LM stored with the model, if any)."""
    if args.no_lm:
        if args.lm:
            raise AsrError("--lm and --no-lm contradict each other; give one")
        return False
    return args.lm


def _limited(check):
    """An argparse type from an `asr.limits` check: a bad value is argparse's one-line usage error, exit 2."""
    def convert(text: str):
        try:
            return check(text)
        except AsrError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    convert.__name__ = check.__name__.replace("check_", "").replace("_", " ")
    return convert


def _add_decoding_options(parser: argparse.ArgumentParser) -> None:
    """The LM and voting options that `transcribe` and `evaluate` share."""
    parser.add_argument("--lm", help="word n-gram LM (ARPA or KenLM binary) for beam search (default: the one "
                                     "`asr lm tune` stored with the model, if any)")
    parser.add_argument("--no-lm", action="store_true", help="decode without a language model")
    parser.add_argument("--lm-weight", type=_limited(limits.check_lm_weight),
                        help=f"LM weight, -{limits.MAX_WEIGHT:g} to {limits.MAX_WEIGHT:g} (default: the tuned value "
                             "stored with the model)")
    parser.add_argument("--word-bonus", type=_limited(limits.check_word_bonus),
                        help=f"bonus per word, -{limits.MAX_WEIGHT:g} to {limits.MAX_WEIGHT:g} (default: the tuned "
                             "value)")
    parser.add_argument("--unk-penalty", type=_limited(limits.check_unk_penalty),
                        help=f"added per word the LM does not know, -{limits.MAX_UNK_PENALTY:g} to 0; -20 or lower "
                             "spells almost only the LM's words (default: the tuned value)")
    parser.add_argument("--blank-penalty", type=_limited(limits.check_blank_penalty),
                        help="subtracted from the CTC blank's log-probability in every frame of the LM beam "
                             f"search, 0 to {limits.MAX_WEIGHT:g}; higher drops fewer letters (default: the tuned "
                             "value)")
    parser.add_argument("--passes", type=_limited(limits.check_passes), metavar="N",
                        help="transcribe N copies of the audio, each delayed a few milliseconds more, and keep "
                             "the words most of them agree on: fewer errors for N times the work; 3 to "
                             f"{limits.MAX_PASSES}, as two can only tie (default: the number stored with the model, "
                             "else 1)")


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3"}


def _audio_files(inputs: list[str]) -> tuple[list[str], list[str]]:
    """The files given, with each directory replaced by the audio files under it (sorted), and one error line for
    each folder that could not be listed (the files found elsewhere are still transcribed)."""
    files, problems = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found, unlisted = [], []
            for folder, _, names in os.walk(path, onerror=lambda error: unlisted.append(
                    f"{error.filename}: cannot be listed ({error.strerror.lower()}); its files were skipped")):
                found.extend(Path(folder) / name for name in names if Path(name).suffix.lower() in AUDIO_SUFFIXES)
            problems.extend(unlisted)
            if not found and not unlisted:
                raise AsrError(f"{path}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in this directory")
            files.extend(str(p) for p in sorted(found))
        else:
            files.append(item)
    return files, problems


def output_paths(files: list[str], output_dir: Path, suffix: str) -> dict[str, Path]:
    """Where each input's transcript goes: FILE's stem + suffix, or its whole name + suffix where two inputs share
    a stem (talk.wav and talk.flac give talk.wav.srt and talk.flac.srt), so no transcript overwrites another."""
    stems: dict[str, int] = {}
    for path in files:
        stems[Path(path).stem] = stems.get(Path(path).stem, 0) + 1
    targets: dict[str, Path] = {}
    taken: set[Path] = set()
    for path in files:
        name = Path(path).stem if stems[Path(path).stem] == 1 else Path(path).name
        target = output_dir / (name + suffix)
        number = 1
        while target in taken:  # the same name from two folders (a/talk.wav, b/talk.wav)
            number += 1
            target = output_dir / f"{name}-{number}{suffix}"
        taken.add(target)
        targets[path] = target
    return targets


def check_writable_folder(folder: Path) -> None:
    """Make `folder` if needed and prove a file can be written there, before any work is done."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        raise AsrError(f"{folder}: exists and is not a directory; give --output-dir a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".asr-write-test-"):
            pass
    except OSError as error:
        raise AsrError(f"{folder}: cannot write there ({error.strerror or error}); choose another --output-dir") \
            from None


def check_writable_file(path: Path, option: str) -> None:
    """Refuse, before any work, an output file that is a folder or whose folder cannot be written."""
    if path.is_dir():
        raise AsrError(f"{path}: is a directory; give {option} a file name")
    if not path.parent.is_dir():
        raise AsrError(f"{path.parent}: no such folder for {option}; create it first")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise AsrError(f"{path}: cannot be written (permission denied); choose another {option}")


def _transcribe(args) -> int:
    from tqdm import tqdm

    from asr.data import write_text_atomically
    from asr.subtitles import FORMATS

    files, problems = _audio_files(args.files)
    for problem in problems:
        print(f"asr: error: {problem}", file=sys.stderr)
    render, suffix = FORMATS[args.format]
    output_dir = Path(args.output_dir) if args.output_dir else None
    if output_dir:
        check_writable_folder(output_dir)
        targets = output_paths(files, output_dir, suffix)
    recognizer = _recognizer(args)
    failures = len(problems)
    written = 0
    collected = []
    # The bar is drawn on stderr only when that is a terminal, and tqdm.write clears it before each transcript line
    # and draws it again below, so bar and lines never share a line; it is cleared when done (leave=False).
    bar = tqdm(total=len(files), unit="file", desc="transcribing", file=sys.stderr, leave=False,
               disable=args.no_progress or len(files) < 2 or not sys.stderr.isatty())
    for path, result in recognizer.transcribe_files(files, batch_size=args.batch_size):
        if isinstance(result, AsrError):
            tqdm.write(f"asr: error: {result}", file=sys.stderr)
            failures += 1
            bar.update()
            continue
        if output_dir:
            try:
                write_text_atomically(targets[path], render(result))
                written += 1
            except OSError as error:
                tqdm.write(f"asr: error: {targets[path]}: cannot write the transcript of {path} ({error.strerror})",
                           file=sys.stderr)
                failures += 1
        elif args.format == "json":
            collected.append(result)
        elif len(files) == 1:
            print(render(result), end="")
        elif args.format == "text":
            tqdm.write(f"{path}\t{result.text}", file=sys.stdout)
        else:
            tqdm.write(f"==> {path} <==\n{render(result)}", file=sys.stdout)
        bar.update()
    bar.close()
    if collected:
        print(render(collected[0]) if len(files) == 1 else
              "[\n" + ",\n".join(render(t) for t in collected) + "\n]")
    if output_dir:
        print(f"wrote {written} {suffix} file(s) to {output_dir}", file=sys.stderr)
    return EXIT_BAD_INPUT if failures else 0


def _train(args) -> int:
    from asr.config import apply_overrides, preset
    from asr.train import TrainingStopped, train

    config = apply_overrides(preset(args.preset), args.set or [])
    try:
        model_path = train(config, args.train_data, args.exp_dir, valid_manifest=args.valid_manifest,
                           device=args.device, stop_after_steps=args.stop_after_steps,
                           show_progress=not args.no_progress)
    except TrainingStopped as stopped:
        print(f"asr: {stopped}", file=sys.stderr)
        return 0 if args.stop_after_steps else EXIT_INTERRUPTED
    print(model_path)
    return 0


def _evaluate(args) -> int:
    from asr.evaluate import evaluate_manifest
    from asr.models import default_model_path

    if args.errors_file:
        check_writable_file(Path(args.errors_file), "--errors-file")
    report = evaluate_manifest(args.model or default_model_path(), args.manifest, device=args.device,
                               beam_size=args.beam_size, errors_path=args.errors_file, batch_size=args.batch_size,
                               lm=_lm_choice(args), lm_weight=args.lm_weight, word_bonus=args.word_bonus,
                               unk_penalty=args.unk_penalty, blank_penalty=args.blank_penalty,
                               passes=args.passes, int8=args.int8, show_progress=not args.no_progress)
    print(f"WER {report.wer}")
    print(f"CER {report.cer}")
    if report.unreadable:
        print(f"asr: error: {report.unreadable} unreadable utterance(s) counted as fully deleted; see the warnings "
              "above", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _default_text() -> str:
    return str(Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "text" / "books_norm.txt.gz")


def synth_corpus_families() -> tuple[str, ...]:
    """The voice families `asr.synth_corpus` plans (`family=`): the Debian engines, or the Kokoro neural voices.
    Listed here so that --help does not import torch."""
    return ("classic", "kokoro")


def _corpus_synth(args) -> int:
    from asr import synth_corpus

    from asr.short_utterances import short_utterances

    texts = args.text or [_default_text()]
    shares = args.text_shares
    if shares and (len(shares) != len(texts) or min(shares) < 0 or not 0 < sum(shares)) or args.short_share < 0:
        print("asr: error: --text-shares needs one share of 0 or more per --text file", file=sys.stderr)
        return EXIT_BAD_INPUT
    sources = []
    for path in texts:
        sentences, counts = synth_corpus.read_sentences(path, args.min_words)
        print(f"text {path}: {len(sentences)} sentences usable of {counts['lines']} lines ({counts['normalised']} "
              f"normalised, {counts['dropped_length']} dropped for length, {counts['dropped_empty']} empty)")
        sources.append(sentences)
    shares = shares or [len(source) / sum(map(len, sources)) for source in sources]
    if args.short_share:
        sources.append(short_utterances(200_000, args.seed))
        shares = [*shares, args.short_share]
    sentences = sources[0] if len(sources) == 1 else synth_corpus.mix_sentences(sources, shares, args.seed)
    dev_clean = synth_corpus.read_librispeech_transcripts(args.dev_clean_text) if args.dev_clean_hours else []
    plan = synth_corpus.plan_corpus(sentences, {"train": args.hours, "dev": args.dev_hours, "test": args.test_hours},
                                    args.seed, dev_clean, args.dev_clean_hours, args.skip_train_hours, args.voices)
    report = synth_corpus.write_corpus(args.root, plan, args.seed, jobs=args.jobs, show_progress=not args.no_progress,
                                       family=args.voices)
    print(f"corpus {args.root}: {report.utterances} utterances, {report.hours:.3f} h in all; this run wrote "
          f"{report.written} ({report.hours_written:.3f} h) in {report.wall_seconds:.1f} s, real-time factor "
          f"{report.real_time_factor:.4f} ({1 / report.real_time_factor if report.real_time_factor else 0:.0f}x "
          f"faster than real time)")
    print(synth_corpus.summarize_metadata(Path(args.root) / "metadata.jsonl"))
    if report.failed:
        print(f"asr: error: {report.failed} utterance(s) failed (see warnings); rerun to retry them", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


MAX_SHORT_TEXT = 1_000_000  # about four minutes to make; more would swamp a 3 M-sentence LM text


def _corpus_short_text(args) -> int:
    from asr.short_utterances import write_short_text

    count = limits.check_int("--count", args.count, 1, MAX_SHORT_TEXT)
    output = Path(args.output)
    check_writable_file(output, "--output")
    words = write_short_text(output, count, args.seed, show_progress=not args.no_progress)
    print(f"short utterances: {count} lines, {words} words -> {output}")
    return 0


def _corpus_prepare(args) -> int:
    from asr.librispeech import prepare_split

    for split in args.splits:
        output = Path(args.output_dir) / f"{split}.jsonl"
        report = prepare_split(Path(args.root) / split, output)
        print(f"{split}: {report} -> {output}")
    return 0


def _corpus_real_dev(args) -> int:
    from asr.librispeech import prepare_real_dev

    report = prepare_real_dev(args.root, args.output)
    print(f"real-dev: {report} -> {args.output}")
    return 0


def _corpus_real_train(args) -> int:
    from asr import real_corpora

    for corpus in args.corpus:
        if args.download:
            source = real_corpora.download(corpus, args.download)
        else:
            source = Path(args.source or Path(_default_text()).parent.parent / "real-train") / corpus
        for split, report in real_corpora.prepare(corpus, source, args.output_dir).items():
            print(f"{corpus} {split}: {report} -> {Path(args.output_dir) / f'{corpus}-{split}.jsonl'}")
    return 0


def _lm_build(args) -> int:
    import math
    import time

    from asr import ngram
    from asr.data import read_manifest
    from asr.kenlm_binary import arpa_to_binary

    if bool(args.text) == bool(args.arpa):
        raise AsrError("give --text (to train a model) or --arpa (to convert an existing one), not both or neither")
    if args.add_words and not args.text:
        raise AsrError("--add-words works when training from --text; an existing ARPA file keeps its vocabulary")
    if args.mix and not args.text:
        raise AsrError("--mix weighs the --text files of a new model; an existing ARPA file cannot be reweighed")
    if args.exclude_min_words < 1:
        raise AsrError(f"--exclude-min-words {args.exclude_min_words}: give 1 or more (1 drops every transcript)")
    arpa = args.arpa
    if args.text:
        if not args.output:
            raise AsrError("--text needs --output, the ARPA file to write")
        started = time.perf_counter()
        if args.mix and len(args.mix) != len(args.text):
            raise AsrError(f"--mix gives {len(args.mix)} weights for {len(args.text)} --text groups; give one "
                           "weight per --text")
        if args.mix and not all(0 < weight < math.inf for weight in args.mix):
            raise AsrError(f"--mix {' '.join(map(str, args.mix))}: every weight must be above 0 (leave a text out "
                           "instead of weighing it 0)")
        excluded = [u.text for manifest in args.exclude or [] for u in read_manifest(manifest)]
        texts = []
        for group in args.text:
            texts.append([])
            for path in group:
                more, counts = ngram.read_text(path, excluded, args.exclude_min_words)
                texts[-1].extend(more)
                print(f"text {path}: {len(more)} sentences of {counts['lines']} lines ({counts['normalised']} "
                      f"normalised, {counts['excluded']} excluded as evaluation transcripts, {counts['empty']} empty)")
        if not args.mix:  # one model of all the text, as if it were one file
            texts, weights = [[sentence for text in texts for sentence in text]], (1.0,)
        else:
            weights = args.mix
        extra_words = ngram.read_word_list(args.add_words, args.add_words_min_count) if args.add_words else []
        summary = ngram.build_mixed_arpa(texts, weights, args.output, order=args.order, prune=args.prune or (),
                                         vocabulary_size=args.vocabulary_size,
                                         discount_fallback=ngram.FALLBACK_DISCOUNTS if args.discount_fallback else None,
                                         extra_words=extra_words)
        discounts = ["; ".join(" ".join(f"{d:.3f}" for d in order) for order in text) for text in summary.discounts]
        mixture = ("" if len(texts) == 1 else "; mixture weights " + " ".join(f"{w:.3f}" for w in summary.weights))
        print(f"{args.output}: order {summary.order}, {summary.words} words of text, vocabulary {summary.vocabulary}, "
              f"n-grams per order {', '.join(map(str, summary.ngrams))}{mixture}; discounts per order "
              + " | ".join(discounts) + f"; {time.perf_counter() - started:.0f} s")
        arpa = args.output
    if args.binary:
        arpa_to_binary(arpa, args.binary, quantize_bits=args.quantize)
        size = Path(args.binary).stat().st_size / 1e6
        print(f"{args.binary}: KenLM trie binary, {size:.1f} MB (word list in {args.binary}.words)")
    return 0


def _lm_perplexity(args) -> int:
    from asr import ngram
    from asr.data import read_manifest
    from asr.lm import LanguageModel, perplexity

    if not args.manifest and not args.text:
        raise AsrError("nothing to score: give --manifest (its transcripts) or --text (one sentence a line)")
    sets = [(path, [u.text for u in read_manifest(path)]) for path in args.manifest or []]
    sets += [(path, ngram.read_text(path, exclude_min_words=1)[0]) for path in args.text or []]
    lm = LanguageModel(args.lm)
    print(f"{'text':<50} {'sentences':>9} {'words':>8} {'unknown':>8} {'perplexity':>10}")
    for path, sentences in sets:
        result = perplexity(lm, sentences)
        print(f"{str(path)[-50:]:<50} {result.sentences:>9} {result.words:>8} {result.unknown_words:>8} "
              f"{result.perplexity:>10.1f}")
    return 0


def _lm_tune(args) -> int:
    from asr.checkpoint import load_model_file
    from asr.evaluate import model_outputs
    from asr.lm_tune import BEAM_TOLERANCE, plot_grid, store_weights, sweep_beams, sweep_passes, tune_weights
    from asr.transcribe import Recognizer

    recognizer = Recognizer(load_model_file(args.model), device=args.device, beam_size=args.beam_size, lm=args.lm)
    outputs = model_outputs(recognizer, args.manifest, show_progress=not args.no_progress)
    result = tune_weights(recognizer, outputs, args.lm_weights, args.word_bonuses, args.unk_penalties,
                          args.blank_penalties, show_progress=not args.no_progress)
    for blank, grids in zip(result.blank_penalties, result.wer):
        for penalty, grid in zip(result.unk_penalties, grids):
            print(f"blank penalty {blank:g}, unknown-word penalty {penalty:g}")
            print("LM weight \\ word bonus " + " ".join(f"{b:>7g}" for b in result.word_bonuses))
            for weight, row in zip(result.lm_weights, grid):
                print(f"{weight:>23g} " + " ".join(f"{100 * w:7.2f}" for w in row))
    print(f"best: LM weight {result.best_lm_weight:g}, word bonus {result.best_word_bonus:g}, unknown-word penalty "
          f"{result.best_unk_penalty:g}, blank penalty {result.best_blank_penalty:g}: WER {100 * result.best_wer:.2f}% "
          f"(same beam without the LM: {100 * result.no_lm_wer:.2f}%)")
    beam = recognizer.lm_decoder.options.beam_size
    if args.beam_sizes:
        sweep = sweep_beams(recognizer, outputs, result, args.beam_sizes, show_progress=not args.no_progress)
        print("beam   WER %   decoding s")
        for size, wer, seconds in zip(sweep.beams, sweep.wer, sweep.seconds):
            print(f"{size:>4}  {100 * wer:6.2f}  {seconds:8.1f}{'   <- chosen' if size == sweep.chosen else ''}")
        beam = sweep.chosen
        print(f"beam {beam}: the smallest within {100 * BEAM_TOLERANCE:.1f} WER points of the best")
    passes = None
    if args.passes:
        sweep = sweep_passes(recognizer, args.manifest, result, args.beam_sizes or [beam], args.passes,
                             show_progress=not args.no_progress)
        print("passes  beam   WER %   seconds (model + search)")
        for (i, count), (j, size) in itertools.product(enumerate(sweep.counts), enumerate(sweep.beams)):
            chosen = (count, size) == sweep.chosen
            print(f"{count:>6}  {size:>4}  {100 * sweep.wer[i, j]:6.2f}  {sweep.seconds[i, j]:8.1f}"
                  f"{'   <- chosen' if chosen else ''}")
        passes, beam = sweep.chosen
        print(f"{passes} voted passes at beam {beam}: the fastest within {100 * BEAM_TOLERANCE:.1f} WER points of "
              "the best")
    output = args.output or args.model
    store_weights(args.model, output, args.lm, result, beam, passes)
    print(f"stored in {output}: `asr transcribe --model {output}` now uses {args.lm} with these weights")
    if args.plot:
        plot_grid(result, args.plot)
        print(f"plot: {args.plot}")
    return 0


def _export(args) -> int:
    from asr.export import export_model, round_trip_error

    report = export_model(args.model, args.output_dir, name=args.name, weights=args.weights)
    for path in report.files:
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
    print(f"total {report.megabytes:.1f} MB" + ("" if report.has_lm else " (no LM: the model has none recorded; "
                                                "`asr lm tune` records one)"))
    if args.weights != "fp32":
        error = round_trip_error(args.model, report.files[0])
        print(f"{args.weights} weights: log-probs differ from the original's by at most {error:.4f}")
    return 0


def _serve(args) -> int:
    import uvicorn

    from asr.serve.app import ServeSettings, create_app

    api_key = args.api_key or os.environ.get("ASR_API_KEY") or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        logging.getLogger("asr.serve").warning("listening on %s without an API key: anyone who can reach this "
                                               "port can use the server (set --api-key or ASR_API_KEY)", args.host)
    recognizer = _recognizer(args)
    settings = ServeSettings(model_name=args.model_name, api_key=api_key,
                             max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                             max_audio_seconds=args.max_audio_seconds, request_timeout=args.request_timeout,
                             max_batch=args.max_batch, max_queue=args.max_queue)
    app = create_app(recognizer, settings)
    print(f"asr serve: http://{args.host}:{args.port}/ (model '{args.model_name}', "
          f"{'API key required' if api_key else 'no API key'}); Ctrl-C stops", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=5)
    return 0


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (the command, the problem, where to read more) and exit status 2, like every other
    bad input, rather than argparse's usage block."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="asr", description="Speech recognition with a deep bidirectional LSTM trained with CTC.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  asr transcribe speech.wav\n  asr transcribe talks/ --format srt --output-dir subtitles\n"
               "  asr transcribe speech.wav --model exp/model.pt\n"
               "  asr train --train-manifest train.jsonl --exp-dir exp/tiny --preset tiny\n"
               "  asr evaluate --model exp/model.pt --manifest dev.jsonl\n"
               "  asr export --model exp/model_lm.pt --output-dir package")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    transcribe = commands.add_parser(
        "transcribe", help="print the transcript of audio files",
        description="Transcribe audio files (WAV, FLAC, OGG, Opus, MP3; any sample rate from 1 to 384 kHz and "
                    "channel count; 25 ms to 3 hours long: files over 20 s are read in overlapping 20 s windows "
                    "joined at pauses, so memory does not grow with length). "
                    "Without --model, the model bundled with asr is used, with its tuned word LM. A file that "
                    "cannot be used is one line on stderr and exit status 2 at the end; the others are still "
                    "transcribed, and a truncated file is transcribed as far as it can be read.")
    transcribe.add_argument("files", nargs="+", metavar="FILE", help="audio files, or directories of them")
    transcribe.add_argument("--model", help="model file written by `asr train` (default: the bundled model)")
    transcribe.add_argument("--output-dir", help="write one FILE.txt/.json/.srt/.vtt per input here, not to stdout")
    transcribe.add_argument("--int8", action="store_true",
                            help="int8 weights for the LSTM and linear layers (CPU): smaller, faster")
    transcribe.add_argument("--threads", type=_limited(limits.check_threads),
                            help=f"CPU threads for the model and the decoder, 1 to {limits.MAX_THREADS} (default: all)")
    transcribe.add_argument("--no-progress", action="store_true", help="no progress bar")
    transcribe.add_argument("--beam-size", type=_limited(limits.check_beam_size), default=None,
                            help=f"CTC prefix beam search with this many beams, up to {limits.MAX_BEAM_SIZE}; 1 = "
                                 "greedy (default: with an LM, the beam it was tuned at, or 32; without, the "
                                 "model's)")
    transcribe.add_argument("--format", choices=("text", "json", "srt", "vtt"), default="text",
                            help="text: the transcript; json: words with start/end seconds and confidences; "
                                 "srt / vtt: subtitles (SubRip / WebVTT)")
    transcribe.add_argument("--device", default="cpu", type=_limited(limits.check_device),
                            help="cpu, cuda, cuda:N or auto (default: cpu)")
    transcribe.add_argument("--batch-size", type=_limited(limits.check_batch_size), default=8,
                            help=f"files decoded together, 1 to {limits.MAX_BATCH_SIZE} (default: 8)")
    _add_decoding_options(transcribe)
    transcribe.set_defaults(run=_transcribe)

    train = commands.add_parser(
        "train", help="train a model from a manifest or shards",
        description="Train a BiLSTM-CTC model. Checkpoints go to EXP_DIR/checkpoints; rerunning the same command "
                    "resumes exactly where it stopped. The final model is EXP_DIR/model.pt. For several GPUs or "
                    "nodes, launch it with torchrun: `torchrun --nproc-per-node 4 -m asr train ...`.")
    train.add_argument("--train-data", "--train-manifest", dest="train_data", required=True,
                       help="JSONL manifest of the training utterances, or a folder of WebDataset shards")
    train.add_argument("--valid-manifest", help="JSONL manifest scored (greedy WER/CER) after each epoch")
    train.add_argument("--exp-dir", required=True, help="experiment folder: config, checkpoints, logs, model")
    train.add_argument("--preset", default="small",
                       help="tiny, small, base (the bundled default model), medium or large (default: small)")
    train.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                       help="override one config value, e.g. --set train.epochs=5, or --set "
                            "train.init_from=MODEL.pt to start from a trained model's weights (repeatable)")
    train.add_argument("--device", default="auto", type=_limited(limits.check_device),
                       help="cpu, cuda, cuda:N or auto (default: auto)")
    train.add_argument("--stop-after-steps", type=int, default=None,
                       help="stop with a checkpoint after this many steps in this run; rerun to continue")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate", help="word and character error rates of a model on a manifest",
        description="Transcribe every utterance of a manifest and score it against the reference text.")
    evaluate.add_argument("--model", help="model file (default: the bundled default model, with its LM)")
    evaluate.add_argument("--manifest", required=True, help="JSONL manifest with reference transcripts")
    evaluate.add_argument("--beam-size", type=_limited(limits.check_beam_size), default=None,
                          help=f"1 = greedy, up to {limits.MAX_BEAM_SIZE} (default: the model's)")
    evaluate.add_argument("--errors-file", help="write each utterance's aligned reference and hypothesis here")
    evaluate.add_argument("--device", default="cpu", type=_limited(limits.check_device),
                          help="cpu, cuda, cuda:N or auto (default: cpu)")
    evaluate.add_argument("--batch-size", type=_limited(limits.check_batch_size), default=16,
                          help=f"utterances decoded together, 1 to {limits.MAX_BATCH_SIZE} (default: 16)")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    evaluate.add_argument("--int8", action="store_true",
                          help="int8 weights for the LSTM and linear layers (CPU), as `asr transcribe --int8`")
    _add_decoding_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    corpus = commands.add_parser("corpus", help="make, prepare and list speech corpora",
                                 description="Synthetic LibriSpeech-format corpora, and manifests from corpora.")
    corpus_commands = corpus.add_subparsers(dest="corpus_command", required=True, metavar="ACTION")
    synth = corpus_commands.add_parser(
        "synth", help="write a LibriSpeech-format corpus with offline text-to-speech",
        description="Speak sentences with espeak-ng, flite and festival voices (--voices classic) or Kokoro neural "
                    "voices and mixes of them (--voices kokoro) under varied conditions (speed, noise, babble, "
                    "reverberation, telephone band, gain; Kokoro corpora also microphone colouring and lossy codecs: "
                    "opus, mp3, 8 kHz mu-law and GSM) into ROOT/{train,dev,test}/, in LibriSpeech's layout. Dev and "
                    "test speakers never share a voice with train speakers. Deterministic for a seed; a rerun skips "
                    "files already written.")
    synth.add_argument("--root", required=True, help="corpus folder to write")
    synth.add_argument("--hours", type=float, default=1.0, help="hours of train speech (default: 1)")
    synth.add_argument("--dev-hours", type=float, default=0.1, help="hours of dev speech (default: 0.1)")
    synth.add_argument("--test-hours", type=float, default=0.1, help="hours of test speech (default: 0.1)")
    synth.add_argument("--dev-clean-hours", type=float, default=0.0,
                       help="also speak this many hours of LibriSpeech dev-clean transcripts, with their ids, into "
                            "ROOT/dev-clean-text (default: 0, none)")
    synth.add_argument("--voices", choices=synth_corpus_families(), default="classic",
                       help="classic: espeak-ng, flite, festival (Debian packages); kokoro: Kokoro-82M neural voices "
                            "(pip extra [tts]; about 0.6 s per second of speech per core) (default: classic)")
    synth.add_argument("--text", nargs="+", metavar="FILE",
                       help="sentences, one a line, .txt or .txt.gz; several files are mixed by --text-shares "
                            "(default: ../shared/data/text/books_norm.txt.gz)")
    synth.add_argument("--text-shares", type=float, nargs="+", metavar="SHARE",
                       help="weight of each --text file in the spoken sentences (default: their sizes)")
    synth.add_argument("--short-share", type=float, default=0.0, metavar="SHARE",
                       help="weight, beside the --text weights (which sum to 1 by default), of short everyday utterances made from templates: "
                            "digit strings, numbers, times, dates, names, single words, phone-menu phrases "
                            "(default: 0)")
    synth.add_argument("--min-words", type=int, default=4,
                       help="sentences of the text files shorter than this are not spoken (default: 4)")
    synth.add_argument("--dev-clean-text", default=str(Path(_default_text()).with_name(
        "librispeech-dev-clean.trans.txt")), help="LibriSpeech dev-clean transcripts for --dev-clean-hours")
    synth.add_argument("--seed", type=int, default=0, help="decides voices, texts and conditions (default: 0)")
    synth.add_argument("--skip-train-hours", type=float, default=0.0, metavar="H",
                       help="leave out the train speech planned for the first H hours, e.g. to grow a corpus "
                            "whose first part was trained on and deleted with only new sentences (default: 0)")
    synth.add_argument("--jobs", type=int, default=None, help="processes (default: all cores)")
    synth.add_argument("--no-progress", action="store_true", help="no progress bar")
    synth.set_defaults(run=_corpus_synth)

    short_text = corpus_commands.add_parser(
        "short-text", help="write short everyday utterances made from templates, as text for an LM",
        description="Write COUNT short utterances, one a line (.txt or .txt.gz), from the templates and word lists "
                    "that --short-share speaks (digit strings, numbers, times, dates, names, single words, "
                    "phone-menu phrases), for `asr lm build --text`: whole lines such as YES or CALL JOHN SMITH "
                    "are rare in books and talk. Deterministic for a seed; take another seed than the spoken "
                    "corpus's.",
        epilog="example: asr corpus short-text --count 30000 --seed 101 --output short.txt.gz")
    short_text.add_argument("--count", type=int, required=True,
                            help=f"how many utterances, 1 to {MAX_SHORT_TEXT:,} (about four minutes a million)")
    short_text.add_argument("--seed", type=int, default=101, help="decides the utterances (default: 101)")
    short_text.add_argument("--output", required=True, help="text file to write (.txt or .txt.gz)")
    short_text.add_argument("--no-progress", action="store_true", help="no progress bar")
    short_text.set_defaults(run=_corpus_short_text)

    prepare = corpus_commands.add_parser(
        "prepare", help="LibriSpeech-layout splits -> JSONL manifests",
        description="Read ROOT/SPLIT/<speaker>/<chapter>/ folders into OUTPUT_DIR/SPLIT.jsonl. Missing audio, "
                    "malformed transcript lines and unreadable files are reported, counted and skipped.")
    prepare.add_argument("--root", required=True, help="corpus root (LibriSpeech/ or a synthetic corpus)")
    prepare.add_argument("--splits", nargs="+", required=True, help="split folders, e.g. train dev test")
    prepare.add_argument("--output-dir", required=True, help="where the manifests go")
    prepare.set_defaults(run=_corpus_prepare)

    real_dev = corpus_commands.add_parser(
        "real-dev", help="manifest of the real-speech measuring set (never train on it)",
        description="Turn ../shared/data/real-dev (folders of audio/ and transcripts.txt) into a manifest.")
    real_dev.add_argument("--root", default=str(Path(_default_text()).parent.parent / "real-dev"),
                          help="default: ../shared/data/real-dev")
    real_dev.add_argument("--output", required=True, help="manifest to write")
    real_dev.set_defaults(run=_corpus_real_dev)

    real_train = corpus_commands.add_parser(
        "real-train", help="real recorded speech to train on (speechocean762, FSDD) -> train and dev manifests",
        description="Prepare speechocean762 (OpenSLR 101: 5.6 h of read English, 250 speakers whose first "
                    "language is Mandarin) and the Free Spoken Digit Dataset (single digits, 6 speakers) into "
                    "OUTPUT_DIR/<corpus>-train.jsonl and <corpus>-dev.jsonl, split by speaker (the dev speakers are "
                    "fixed: never train on them). Reads each corpus as published or as ../shared/data/real-train "
                    "has it; --download fetches the published archives first (resumable).")
    real_train.add_argument("--corpus", nargs="+", choices=("speechocean762", "fsdd"),
                            default=["speechocean762", "fsdd"], help="which corpora (default: both)")
    real_train.add_argument("--source", help="folder holding a <corpus>/ folder per corpus, in either layout "
                                             "(default: ../shared/data/real-train)")
    real_train.add_argument("--download", metavar="DIR", help="download and unpack the corpora into DIR first")
    real_train.add_argument("--output-dir", required=True, help="where the manifests go")
    real_train.set_defaults(run=_corpus_real_train)

    lm = commands.add_parser("lm", help="build, score and tune word n-gram language models for decoding",
                             description="Word n-gram language models: build one from text, measure its "
                                         "perplexity on a dev set, or tune its weights.")
    lm_commands = lm.add_subparsers(dest="lm_command", required=True, metavar="ACTION")
    lm_build = lm_commands.add_parser(
        "build", help="train an ARPA n-gram (modified Kneser-Ney) from text; convert ARPA to KenLM binary",
        description="Train an interpolated modified Kneser-Ney n-gram from a text file of one sentence per line "
                    "(normalised to the recogniser's alphabet where needed) and write it as ARPA; optionally also a "
                    "KenLM binary, which loads faster and is smaller. With --arpa instead of --text, convert an "
                    "existing ARPA file (e.g. LibriSpeech's 3-gram.arpa.gz or 4-gram.arpa.gz).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  asr lm build --text books.txt.gz --order 4 --prune 0 0 1 1 --output lm.arpa --binary lm.bin\n"
               "  asr lm build --text books.txt.gz --text talk.txt.gz --mix 0.6 0.4 --output lm.arpa\n"
               "  asr lm build --arpa 4-gram.arpa.gz --binary 4-gram.bin")
    lm_build.add_argument("--text", nargs="+", action="append", metavar="FILE",
                          help="training text, .txt or .txt.gz, one sentence a line; several files are joined. "
                               "Repeat --text for texts to weigh with --mix")
    lm_build.add_argument("--mix", type=float, nargs="+", metavar="WEIGHT",
                          help="one model per --text, mixed with these weights (normalised to sum to one) into one "
                               "LM: say how much of each kind of speech to expect (default: all text pooled into one "
                               "model, each text weighing what its size gives)")
    lm_build.add_argument("--arpa", help="an existing ARPA file to convert with --binary")
    lm_build.add_argument("--output", help="ARPA file to write (with --text)")
    lm_build.add_argument("--order", type=int, default=4, help="n-gram order, 3 to 5 usual (default: 4)")
    lm_build.add_argument("--prune", type=int, nargs="+", metavar="COUNT",
                          help="per order from unigrams up, drop n-grams seen at most COUNT times, e.g. 0 0 1 1 "
                               "(default: no pruning); the first must be 0")
    lm_build.add_argument("--vocabulary-size", type=int, help="keep the N most frequent words; others become <unk>")
    lm_build.add_argument("--add-words", metavar="FILE",
                          help="also put these words in the vocabulary, seen in the text or not (one a line, .txt or "
                               ".txt.gz; a count may follow a tab), so beam search can spell them")
    lm_build.add_argument("--add-words-min-count", type=int, default=0, metavar="N",
                          help="with --add-words, only words whose count is at least N (default: all)")
    lm_build.add_argument("--exclude", nargs="+", metavar="MANIFEST",
                          help="drop text lines equal to a transcript of these manifests (keep test text out)")
    lm_build.add_argument("--exclude-min-words", type=int, default=3, metavar="N",
                          help="drop only the transcripts of at least N words: shorter ones (YES, NO, FIVE) identify "
                               "no utterance, and dropping them teaches the LM nobody says them (default: 3)")
    lm_build.add_argument("--discount-fallback", action="store_true",
                          help="on text too small to estimate discounts, use 0.5 1 1.5 (as lmplz does)")
    lm_build.add_argument("--binary", help="also write a KenLM trie binary here (compiles KenLM's build_binary once)")
    lm_build.add_argument("--quantize", type=int, default=8, help="bits per binary probability, 0 = none (default: 8)")
    lm_build.set_defaults(run=_lm_build)

    lm_perplexity = lm_commands.add_parser(
        "perplexity", help="how well an LM predicts the transcripts of a manifest or the lines of a text",
        description="Score each sentence with the LM (from <s> to </s>) and print the perplexity per word and "
                    "sentence end, as KenLM counts it, and how many words the LM does not know: a quick comparison "
                    "of LMs (or of LM texts) on a dev set before decoding with them.",
        epilog="example:\n  asr lm perplexity --lm lm.bin --manifest dev.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    lm_perplexity.add_argument("--lm", required=True, help="ARPA or KenLM binary language model")
    lm_perplexity.add_argument("--manifest", nargs="+", metavar="MANIFEST", help="score these manifests' transcripts")
    lm_perplexity.add_argument("--text", nargs="+", metavar="FILE",
                               help="score these texts, one sentence a line (.txt or .txt.gz)")
    lm_perplexity.set_defaults(run=_lm_perplexity)

    from asr.lm_tune import DEFAULT_BLANK_PENALTIES, DEFAULT_LM_WEIGHTS, DEFAULT_UNK_PENALTIES, DEFAULT_WORD_BONUSES

    lm_tune = lm_commands.add_parser(
        "tune", help="grid-search the LM weight, word bonus, unknown-word and blank penalties on a dev set; store "
                     "the best with the model",
        description=textwrap.fill(
            "Run the acoustic model once over a dev manifest, then beam-search it with the LM at every (blank "
            "penalty, unknown-word penalty, LM weight, word bonus) setting and print the WER grids. The best "
            "setting, the beam size (and with --passes, the number of voted passes) and the LM's path (relative to "
            "the model) are written into the model file, so `asr transcribe --model M` decodes with them by "
            "default.", 100),
        epilog="example:\n  asr lm tune --model exp/model.pt --lm lm.bin --manifest dev.jsonl --beam-sizes 64 128 256 "
               "512 --passes 1 3 5 7",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    lm_tune.add_argument("--model", required=True, help="model file")
    lm_tune.add_argument("--lm", required=True, help="ARPA or KenLM binary language model")
    lm_tune.add_argument("--manifest", required=True, help="dev manifest (never the test set)")
    lm_tune.add_argument("--lm-weights", type=float, nargs="+", default=DEFAULT_LM_WEIGHTS,
                         help=f"values to try (default: {' '.join(map(str, DEFAULT_LM_WEIGHTS))})")
    lm_tune.add_argument("--word-bonuses", type=float, nargs="+", default=DEFAULT_WORD_BONUSES,
                         help=f"values to try (default: {' '.join(map(str, DEFAULT_WORD_BONUSES))})")
    lm_tune.add_argument("--unk-penalties", type=float, nargs="+", default=DEFAULT_UNK_PENALTIES,
                         help="penalties per unknown word to try, each at most 0 (default: "
                              f"{' '.join(map(str, DEFAULT_UNK_PENALTIES))})")
    lm_tune.add_argument("--blank-penalties", type=float, nargs="+", default=DEFAULT_BLANK_PENALTIES,
                         help="penalties on the CTC blank to try, each at least 0 (default: "
                              f"{' '.join(map(str, DEFAULT_BLANK_PENALTIES))})")
    lm_tune.add_argument("--beam-size", type=_limited(limits.check_beam_size), default=None,
                         help=f"beam width, up to {limits.MAX_BEAM_SIZE} (default: 32)")
    lm_tune.add_argument("--beam-sizes", type=_limited(limits.check_beam_size), nargs="+", metavar="N",
                         help="then decode the best setting at each of these beams and store the smallest within 0.1 "
                              "WER points of the best (default: store --beam-size)")
    lm_tune.add_argument("--passes", type=_limited(limits.check_passes), nargs="+", metavar="N",
                         help="then decode the best setting with each of these numbers of voted passes "
                              "(`asr transcribe --passes`) at each of --beam-sizes, and store the fastest pair "
                              "within 0.1 WER points of the best (default: keep the model's stored number, else 1)")
    lm_tune.add_argument("--output", help="write the tuned model here (default: update --model in place)")
    lm_tune.add_argument("--plot", help="also draw the WER grid as a heat map (PNG)")
    lm_tune.add_argument("--device", default="cpu", type=_limited(limits.check_device),
                          help="cpu, cuda, cuda:N or auto (default: cpu)")
    lm_tune.add_argument("--no-progress", action="store_true", help="no progress bars")
    lm_tune.set_defaults(run=_lm_tune)

    serve = commands.add_parser(
        "serve", help="a transcription server speaking OpenAI's audio API, with a page to try it at /",
        description="Serve the model over HTTP. POST /v1/audio/transcriptions answers like OpenAI's API "
                    "(response_format json, text, srt, vtt, verbose_json; word times with "
                    "timestamp_granularities=word), so the official openai client works with "
                    "base_url=http://HOST:PORT/v1; GET /v1/models and /health too. The page at / transcribes a "
                    "file or the microphone in the browser. The model is loaded once; requests that arrive together "
                    "are decoded as one batch.",
        epilog="example:\n  asr serve --port 8000 --api-key SECRET\n  curl -H 'Authorization: Bearer SECRET' "
               "-F file=@speech.wav -F model=asr http://127.0.0.1:8000/v1/audio/transcriptions",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--model", help="model file (default: the bundled model with its LM)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for all, "
                            "with an API key)")
    serve.add_argument("--port", type=_limited(limits.check_port), default=8000, help="port (default: 8000)")
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on every /v1 request (default: the "
                                         "ASR_API_KEY environment variable, else none)")
    serve.add_argument("--model-name", default="asr",
                       help="the model id clients name (default: asr; 'whisper-1' is accepted too)")
    serve.add_argument("--max-upload-mb", type=_limited(limits.check_upload_mb), default=25.0,
                       help="largest request body in MB; bigger ones get 413 before they are read (default: 25, "
                            "OpenAI's)")
    serve.add_argument("--max-audio-seconds", type=_limited(limits.check_audio_seconds), default=3600.0,
                       help="longest audio accepted (default: 3600)")
    serve.add_argument("--request-timeout", type=_limited(limits.check_timeout), default=600.0,
                       help="seconds a request may take before it is answered 504 (default: 600)")
    serve.add_argument("--max-batch", type=_limited(limits.check_batch_size), default=8,
                       help="requests transcribed together as one batch (default: 8)")
    serve.add_argument("--max-queue", type=_limited(limits.check_queue), default=32,
                       help="requests that may wait beyond those; more get 503 with Retry-After (default: 32)")
    serve.add_argument("--int8", action="store_true", help="int8 weights (CPU): smaller, faster")
    serve.add_argument("--threads", type=_limited(limits.check_threads),
                       help=f"CPU threads, 1 to {limits.MAX_THREADS} (default: all)")
    serve.add_argument("--device", default="cpu", type=_limited(limits.check_device),
                       help="cpu, cuda, cuda:N or auto (default: cpu)")
    serve.add_argument("--beam-size", type=_limited(limits.check_beam_size), default=None,
                       help="beam size (default: the model's)")
    _add_decoding_options(serve)
    serve.set_defaults(run=_serve)

    export = commands.add_parser(
        "export", help="pack a tuned model with its LM into one folder, weights in fp16 or int8",
        description="Write OUTPUT_DIR/NAME.pt with fp16 (or int8) weights, widened back to fp32 on loading, and "
                    "copy the LM that `asr lm tune` stored with the model beside it as NAME-lm.bin (+ .words), so the "
                    "folder works wherever it is moved. `--output-dir asr/models --name default` makes the "
                    "bundled default model.")
    export.add_argument("--model", required=True, help="model file, usually tuned by `asr lm tune`")
    export.add_argument("--output-dir", required=True, help="folder to write into")
    export.add_argument("--name", default="model", help="file name stem (default: model)")
    export.add_argument("--weights", choices=("fp16", "int8", "fp32"), default="fp16",
                        help="how to store the weights: fp16 (half of fp32, no measurable cost), int8 (a quarter, "
                             "one scale per matrix row; check the WER after), or fp32 (default: fp16)")
    export.set_defaults(run=_export)
    return parser


class DamageCounter(logging.Handler):
    """Counts the files reported as transcribed only in part (`asr.audio.warn_damaged`), so the command can end
    with status 2 as it does for other bad files."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "damaged", False):
            from tqdm import tqdm

            self.count += 1
            tqdm.write(f"asr: error: {record.getMessage()}", file=sys.stderr)  # clears a progress bar first


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, its line already printed): a status, as below
        return stop.code if isinstance(stop.code, int) else EXIT_BAD_INPUT
    logging.basicConfig(level=logging.INFO if args.command in ("train", "corpus", "lm", "serve") else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    damage = DamageCounter()
    logging.getLogger("asr").addHandler(damage)
    for handler in logging.getLogger().handlers:  # damaged files are reported by `damage`, in the CLI's own format
        handler.addFilter(lambda record: not getattr(record, "damaged", False))
    try:
        code = args.run(args)
        return EXIT_BAD_INPUT if damage.count and code == 0 else code
    except AsrError as error:
        print(f"asr: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("asr: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        logging.getLogger("asr").removeHandler(damage)


if __name__ == "__main__":
    sys.exit(main())
