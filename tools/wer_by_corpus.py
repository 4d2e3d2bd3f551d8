"""WER of a decoded mixed set (such as the recipe's validation mix) broken down by the corpus each utterance came
from, and by length: where an LM or a model change gained or lost.

Reads an errors file (`asr evaluate --errors-file`, one `ID  errors E/N` block per utterance) and the manifest it
scored. An utterance's corpus is the known corpus named in its audio path (speechocean762, fsdd, kokoro, synthetic
for the classic voices), else the folder above its file; `--short-words N` splits each corpus into utterances of at
most N words and longer ones.

    python tools/wer_by_corpus.py --errors valid.errors.txt \
        --manifest recipes/librispeech/data/natural/manifests/valid-mix.jsonl --short-words 6
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from asr.errors import AsrError
from asr.evaluate import read_errors_file
from asr.metrics import word_error_rate

KNOWN_CORPORA = ("speechocean762", "fsdd", "kokoro", "synthetic")


def corpus_of(audio: str) -> str:
    parts = Path(audio).parts
    return next((name for name in KNOWN_CORPORA if name in parts), Path(audio).parent.name)


def errors_by_group(errors: dict[str, tuple[int, int]], manifest_lines, short_words: int = 0) -> dict[str, list[int]]:
    """{group: [word errors, reference words, utterances]}, over the utterances of the errors file."""
    entries = {entry["id"]: entry for entry in map(json.loads, filter(str.strip, manifest_lines))}
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for utterance, (word_errors, words) in errors.items():
        if utterance not in entries:
            continue
        entry = entries[utterance]
        group = corpus_of(entry["audio"])
        if short_words:
            group += f", {'up to' if len(entry['text'].split()) <= short_words else 'over'} {short_words} words"
        totals = groups[group]
        totals[0] += word_errors
        totals[1] += words
        totals[2] += 1
    return dict(groups)


def wer_by_corpus(hypotheses: dict[str, str], utterances: dict) -> tuple[float, dict[str, float]]:
    """WER % of `hypotheses` (by utterance id; a missing one scores as all deleted) over all of `utterances` (an
    id -> `Utterance` dict), and by corpus."""
    groups = defaultdict(list)
    for utterance_id, utterance in utterances.items():
        groups[corpus_of(utterance.audio)].append(utterance_id)

    def wer(ids):
        return 100 * word_error_rate([utterances[i].text for i in ids], [hypotheses.get(i, "") for i in ids]).rate

    return wer(list(utterances)), {group: wer(ids) for group, ids in sorted(groups.items())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--errors", required=True, help="errors file of `asr evaluate --errors-file`")
    parser.add_argument("--manifest", required=True, help="the manifest that was scored")
    parser.add_argument("--short-words", type=int, default=0, metavar="N",
                        help="split each corpus at N words (default: 0, no split)")
    args = parser.parse_args(argv)
    try:
        groups = errors_by_group(read_errors_file(args.errors), Path(args.manifest).read_text().splitlines(),
                                 args.short_words)
    except (OSError, ValueError, KeyError, AsrError) as error:
        print(f"wer_by_corpus: {error}; give an errors file and its JSONL manifest", file=sys.stderr)
        return 2
    if not groups:
        print(f"wer_by_corpus: no utterance of {args.errors} is in {args.manifest}", file=sys.stderr)
        return 2
    print(f"{'corpus':<40} {'utterances':>10} {'words':>7} {'WER %':>7}")
    for group, (errors, words, count) in sorted(groups.items()):
        print(f"{group:<40} {count:>10} {words:>7} {100 * errors / max(words, 1):>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
