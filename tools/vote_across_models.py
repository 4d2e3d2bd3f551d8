"""WER when several models' voted passes vote together (ROVER across models), beside each model's own vote.

Each `--model PATH[:PASSES]` transcribes the manifest with PASSES delayed passes (default 7) through the same LM and
search settings; every pass of every model then votes word by word (`asr.voting`), and the WER of the joint vote is
printed in all and by corpus (as `tools/wer_by_corpus.py` names them). It measures whether models of one lineage
make different enough mistakes for a multi-model package to pay (RESULTS.md: they did not).

    python tools/vote_across_models.py --manifest recipes/librispeech/data/natural/manifests/valid-mix.jsonl \
        --lm LM --model exp/natural7/model_avg.pt --model exp/natural8/model_avg.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wer_by_corpus import wer_by_corpus  # noqa: E402

from asr.data import read_manifest  # noqa: E402
from asr.errors import AsrError  # noqa: E402
from asr.evaluate import outputs_by_delay, transcripts_by_pass  # noqa: E402
from asr.transcribe import load_model  # noqa: E402
from asr.voting import vote  # noqa: E402


def model_spec(text: str) -> tuple[str, int]:
    path, _, passes = text.rpartition(":") if text.rpartition(":")[2].isdigit() else (text, "", "7")
    return path, int(passes)


def passes_of(path: str, passes: int, manifest: str, args) -> dict[str, list]:
    """Each readable utterance's transcripts by id, one per pass."""
    recognizer = load_model(path, lm=args.lm, lm_weight=args.lm_weight, word_bonus=args.word_bonus,
                            unk_penalty=args.unk_penalty, blank_penalty=args.blank_penalty,
                            beam_size=args.beam_size, passes=passes)
    outputs = outputs_by_delay(recognizer, manifest, recognizer.delays, show_progress=not args.no_progress)
    ids = [u.id for u in outputs[0].utterances if u.id in outputs[0].log_probs]
    return dict(zip(ids, map(list, zip(*transcripts_by_pass(recognizer, outputs, ids, args.beam_size)))))


def report(name: str, hypotheses: dict[str, str], utterances: dict) -> str:
    overall, by_corpus = wer_by_corpus(hypotheses, utterances)
    return f"{overall:6.2f}  " + "  ".join(f"{group} {wer:.2f}" for group, wer in by_corpus.items()) + f"  {name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--model", action="append", required=True, metavar="PATH[:PASSES]",
                        help="a model and its number of voted passes (default 7); give two or more")
    parser.add_argument("--lm", required=True, help="the LM every model decodes with")
    parser.add_argument("--lm-weight", type=float, default=0.9)
    parser.add_argument("--word-bonus", type=float, default=-2.0)
    parser.add_argument("--unk-penalty", type=float, default=-20.0)
    parser.add_argument("--blank-penalty", type=float, default=1.5)
    parser.add_argument("--beam-size", type=int, default=512)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    try:
        utterances = {u.id: u for u in read_manifest(args.manifest)}
        decoded = [(spec, passes_of(*model_spec(spec), args.manifest, args)) for spec in args.model]
    except AsrError as error:
        print(f"vote_across_models: error: {error}", file=sys.stderr)
        return 2
    print("WER %  by corpus  models voting")
    for spec, by_id in decoded:
        print(report(spec, {i: vote(t).text for i, t in by_id.items()}, utterances))
    joint = {}
    for i in utterances:  # an utterance no model could read scores as all deleted
        transcripts = [t for _, by_id in decoded for t in by_id.get(i, [])]
        joint[i] = vote(transcripts).text if transcripts else ""
    print(report(" + ".join(spec for spec, _ in decoded), joint, utterances))
    return 0


if __name__ == "__main__":
    sys.exit(main())
