"""Would routing each utterance to one of two models beat either alone? WER of each model, of the best choice per
utterance (an oracle: the bound no router can pass) and of choosing by confidence, in all and by corpus.

Each `--model` is run as `asr transcribe` runs it (its own LM, tuning and voted passes). Per utterance the tool keeps
the transcript, its confidence (the mean probability of its characters) and the acoustic model's mean top
posterior per frame, and caches them in `--cache-dir` (an interrupted or repeated run decodes nothing twice). The
router takes the second model's transcript where its confidence exceeds the first's by more than a margin; the
table sweeps the margin, so choose it on a dev manifest and read the test ones at that margin.

    python tools/route_between_models.py --cache-dir /tmp/route --manifest valid-mix.jsonl \
        --model natural10=asr/models/default.pt --model synthetic-only=synthetic/default.pt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wer_by_corpus import corpus_of, wer_by_corpus  # noqa: E402

from asr.data import read_manifest  # noqa: E402
from asr.errors import AsrError  # noqa: E402
from asr.evaluate import outputs_by_delay, transcripts_by_pass  # noqa: E402
from asr.metrics import word_error_rate  # noqa: E402
from asr.transcribe import load_model  # noqa: E402
from asr.voting import vote  # noqa: E402

MARGINS = (-0.2, -0.1, -0.05, -0.02, 0.0, 0.02, 0.05, 0.1, 0.2)


def decoded(model: str, manifest: str, cache_dir: Path, show_progress: bool) -> dict[str, dict]:
    """{utterance id: {"text", "confidence", "frame_confidence"}} for every readable utterance, cached by the
    model's and the manifest's bytes."""
    key = hashlib.sha256(Path(model).read_bytes() + Path(manifest).read_bytes()).hexdigest()[:16]
    cached = cache_dir / f"{Path(model).stem}-{Path(manifest).stem}-{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    recognizer = load_model(model)
    outputs = outputs_by_delay(recognizer, manifest, recognizer.delays, show_progress=show_progress)
    ids = [u.id for u in outputs[0].utterances if u.id in outputs[0].log_probs]
    per_pass = transcripts_by_pass(recognizer, outputs, ids, recognizer.beam_size)
    result = {}
    for utterance_id, transcripts in zip(ids, zip(*per_pass)):
        joint = vote(transcripts)
        frame_confidence = float(outputs[0].log_probs[utterance_id].max(dim=-1).values.exp().mean())
        result[utterance_id] = {"text": joint.text, "confidence": joint.confidence,
                                "frame_confidence": frame_confidence}
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    partial.rename(cached)
    return result


def wer_row(name: str, chosen: dict[str, str], utterances: dict) -> str:
    overall, by_corpus = wer_by_corpus(chosen, utterances)
    return f"| {name} | {overall:.2f} | " + " | ".join(f"{wer:.2f}" for wer in by_corpus.values()) + " |"


def oracle(first: dict[str, dict], second: dict[str, dict], utterances: dict) -> dict[str, str]:
    """Per utterance, whichever model's transcript has fewer word errors (the first's on a tie)."""
    def errors(utterance_id, found):
        hypothesis = found.get(utterance_id, {}).get("text", "")
        return word_error_rate([utterances[utterance_id].text], [hypothesis]).errors
    return {i: (second if errors(i, second) < errors(i, first) else first).get(i, {}).get("text", "")
            for i in utterances}


def routed(first: dict[str, dict], second: dict[str, dict], feature: str, margin: float) -> dict[str, str]:
    """The second model's transcript where its `feature` exceeds the first's by more than `margin` (or where only
    it could read the audio), else the first's."""
    return {i: second[i]["text"] if i in second and (i not in first or second[i][feature] - first[i][feature] > margin)
            else first[i]["text"] for i in first.keys() | second.keys()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, action="append", help="a manifest to score; repeat for more")
    parser.add_argument("--model", required=True, action="append", metavar="NAME=PATH",
                        help="exactly two: the first is kept unless the router prefers the second")
    parser.add_argument("--cache-dir", required=True, type=Path)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if len(args.model) != 2 or not all("=" in spec for spec in args.model):
        parser.error("give exactly two --model NAME=PATH")
    models = [spec.split("=", 1) for spec in args.model]
    try:
        for manifest in args.manifest:
            utterances = {u.id: u for u in read_manifest(manifest)}
            (first_name, first), (second_name, second) = [
                (name, decoded(path, manifest, args.cache_dir, not args.no_progress)) for name, path in models]
            groups = sorted({corpus_of(u.audio) for u in utterances.values()})
            print(f"\n{manifest}\n\n| choice | all | " + " | ".join(groups) + " |")
            print("| --- | ---: |" + " ---: |" * len(groups))
            for name, found in ((first_name, first), (second_name, second)):  # each alone: unreadable is empty
                print(wer_row(name, {i: d["text"] for i, d in found.items()}, utterances))
            print(wer_row("oracle", oracle(first, second, utterances), utterances))
            for feature in ("confidence", "frame_confidence"):
                for margin in MARGINS:
                    print(wer_row(f"{second_name} where its {feature} is > {margin:+.2f} above",
                                  routed(first, second, feature, margin), utterances))
    except AsrError as error:
        print(f"route_between_models: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
