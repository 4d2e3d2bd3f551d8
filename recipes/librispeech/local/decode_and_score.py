"""Stage 8: decode each evaluation set greedily, with beam search, and with beam search and the word LM stored
in the model file by `asr lm tune` (if any); write errors files and RESULTS.md.

Each NAME=MANIFEST pair is scored; EXP_DIR/decode/NAME-MODE.errors.txt shows every utterance's reference and
hypothesis aligned, worst first; RESULTS.md summarises WER and CER per set with the model's size, training data and
hardware, and the command that produced it.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from asr.checkpoint import load_model_file
from asr.evaluate import model_outputs, score_outputs, write_errors_file
from asr.transcribe import Recognizer, stored_lm_path
from asr.model import count_parameters


def lm_summary(recognizer) -> str:
    lm = recognizer.lm_decoder.lm
    return f"order {lm.order}, {len(lm.words):,} words, {lm.path.stat().st_size / 1e6:.1f} MB"


def lm_options_summary(recognizer) -> str:
    options = recognizer.lm_decoder.options
    return (f"weight {options.lm_weight}, word bonus {options.word_bonus}, unknown-word penalty {options.unk_penalty}, "
            f"blank penalty {options.blank_penalty}")


def averaging_note(checkpoints: list[str]) -> str:
    if len(checkpoints) > 1:
        return f" Weights averaged over {', '.join(checkpoints)}."
    return f" Weights of {checkpoints[0]}, not averaged." if checkpoints else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--sets", nargs="+", required=True, metavar="NAME=MANIFEST")
    parser.add_argument("--beam-size", type=int, default=8, help="beam width for the beam-search row (0: skip)")
    parser.add_argument("--output-dir", required=True, help="errors files go here")
    parser.add_argument("--results", required=True, help="markdown summary to write, e.g. RESULTS.md")
    parser.add_argument("--command", default="", help="the command line to record in the summary")
    args = parser.parse_args()

    model_file = load_model_file(args.model)
    meta = model_file.metadata
    lm_path = stored_lm_path(args.model, model_file)
    recognizer = Recognizer(model_file, lm=lm_path)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    modes = [("greedy", 1, False)] + ([(f"beam {args.beam_size}", args.beam_size, False)] if args.beam_size > 1 else [])
    if lm_path is not None:
        beam = recognizer.lm_decoder.options.beam_size
        modes.append((f"beam {beam} + LM", beam, True))
        print(f"LM {lm_path}: {lm_options_summary(recognizer)}", flush=True)
    rows = []
    for item in args.sets:
        name, _, manifest = item.partition("=")
        started = time.perf_counter()
        outputs = model_outputs(recognizer, manifest)
        reports = [score_outputs(recognizer, outputs, beam, use_lm) for _, beam, use_lm in modes]
        seconds = time.perf_counter() - started
        for (mode, _, _), report in zip(modes, reports):
            write_errors_file(output / f"{name}-{mode.replace(' ', '').replace('+', '-')}.errors.txt", report)
            print(f"{name:>16} {mode:>8}: WER {report.wer}  CER {report.cer}", flush=True)
            rows.append((name, mode, report))
        print(f"{name:>16} decoded in {seconds:.0f} s", flush=True)

    size_mb = Path(args.model).stat().st_size / 1e6
    config = meta.get("config", {})
    epochs = meta.get("epochs", "?")
    lines = [
        "# Results", "",
        f"Model `{args.model}`: {count_parameters(model_file.model):,} parameters ({size_mb:.1f} MB file), "
        f"{model_file.model.config.num_layers} BiLSTM layers of {model_file.model.config.hidden_size}, "
        f"subsampling {model_file.model.config.subsampling}.",
        f"Trained on {meta.get('train_hours', '?')} h for "
        f"{epochs} epoch{'' if epochs == 1 else 's'}, {meta.get('steps', '?')} steps, "
        f"{meta.get('train_seconds', 0) / 3600:.2f} h of training time on {meta.get('device', '?')} "
        f"x {meta.get('processes', 1)} process(es); learning rate {config.get('train', {}).get('learning_rate')}."
        + averaging_note(meta.get("averaged_checkpoints", []))
        + (f" Training was stopped {meta['stopped_early']}." if "stopped_early" in meta else ""),
        f"Decoded on {platform.processor() or platform.machine()} ({os.cpu_count()} cores)."
        + (f" LM: `{os.path.normpath(lm_path)}` ({lm_summary(recognizer)}), {lm_options_summary(recognizer)}, tuned on "
           "the first set." if lm_path is not None else ""), "",
        "| set | utterances | decoding | WER % | CER % | substitutions / deletions / insertions (words) |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for name, mode, report in rows:
        w = report.wer
        lines.append(f"| {name} | {report.utterances} | {mode} | {100 * w.rate:.2f} | {100 * report.cer.rate:.2f} | "
                     f"{w.substitutions} / {w.deletions} / {w.insertions} |")
    if args.command:
        lines += ["", "Produced by:", "", "```", args.command, "```"]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
