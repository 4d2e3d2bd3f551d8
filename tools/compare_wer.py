"""Is one model's WER on a set really lower than another's, or is the difference noise? A paired bootstrap over
utterances (Bisani & Ney, 2004, "Bootstrap estimates for confidence intervals in ASR performance evaluation").

Reads two errors files of the same utterances (`asr evaluate --errors-file`), one per model. Each resample draws
the set's utterances with replacement, the same draw for both models, and takes the difference of the two WERs; the
spread of those differences is what the set's size allows one to conclude. Prints both WERs, the difference
(candidate minus baseline, in points), its 95% interval and how often the candidate came out better.

    python tools/compare_wer.py --baseline old/test.errors.txt --candidate new/test.errors.txt
    python tools/compare_wer.py --set test old/test.errors.txt new/test.errors.txt \\
        --set real-dev old/real-dev.errors.txt new/real-dev.errors.txt     # one row per set

An interval that holds 0 means the set cannot tell the two apart.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from asr.errors import AsrError
from asr.evaluate import read_errors_file


@dataclass(frozen=True)
class PairedComparison:
    utterances: int
    words: int
    baseline_wer: float  # %
    candidate_wer: float  # %
    low: float  # the difference's 95% interval, points
    high: float
    candidate_better: float  # fraction of resamples where the candidate's WER was lower

    @property
    def difference(self) -> float:
        """Candidate minus baseline, in points."""
        return self.candidate_wer - self.baseline_wer


def paired_arrays(baseline: dict[str, tuple[int, int]], candidate: dict[str, tuple[int, int]],
                  names: tuple[str, str] = ("baseline", "candidate")) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(baseline errors, candidate errors, reference words) per utterance, in one order. The two files must score
    the same utterances against the same references, or the comparison means nothing."""
    if baseline.keys() != candidate.keys():
        only_one = sorted(baseline.keys() ^ candidate.keys())
        raise AsrError(f"the {names[0]} and {names[1]} errors files score different utterances ({len(only_one)} in "
                       f"one only, e.g. {only_one[0]}); give two files of the same manifest")
    ids = sorted(baseline)
    mismatched = [i for i in ids if baseline[i][1] != candidate[i][1]]
    if mismatched:
        raise AsrError(f"utterance {mismatched[0]} has {baseline[mismatched[0]][1]} reference words in the "
                       f"{names[0]} file and {candidate[mismatched[0]][1]} in the {names[1]}; give two files of the "
                       "same manifest")
    return (np.array([baseline[i][0] for i in ids], dtype=np.int64),
            np.array([candidate[i][0] for i in ids], dtype=np.int64),
            np.array([baseline[i][1] for i in ids], dtype=np.int64))


def paired_bootstrap(baseline_errors: np.ndarray, candidate_errors: np.ndarray, words: np.ndarray,
                     resamples: int = 10_000, seed: int = 0) -> PairedComparison:
    """The paired bootstrap of the WER difference; resampled in chunks so memory stays small on large sets."""
    count, total_words = len(words), int(words.sum())
    if count == 0 or total_words == 0:
        raise AsrError("no reference words to compare; give errors files of a set with transcripts")
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    chunk = max(1, 2_000_000 // count)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        drawn = rng.integers(0, count, size=(stop - start, count))
        drawn_words = words[drawn].sum(axis=1)
        differences[start:stop] = 100 * (candidate_errors[drawn].sum(axis=1)
                                         - baseline_errors[drawn].sum(axis=1)) / np.maximum(drawn_words, 1)
    low, high = np.percentile(differences, [2.5, 97.5])
    baseline_wer = 100 * baseline_errors.sum() / total_words
    candidate_wer = 100 * candidate_errors.sum() / total_words
    return PairedComparison(count, total_words, baseline_wer, candidate_wer, float(low), float(high),
                            float(np.mean(differences < 0)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="errors file of the model to compare against")
    parser.add_argument("--candidate", help="errors file of the new model, same utterances")
    parser.add_argument("--set", nargs=3, action="append", default=[], metavar=("NAME", "BASELINE", "CANDIDATE"),
                        help="a named set and its two errors files; repeat for a row per set")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default: 10000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sets = [tuple(s) for s in args.set]
    if args.baseline or args.candidate:
        if not (args.baseline and args.candidate):
            parser.error("--baseline and --candidate go together")
        sets.insert(0, ("set", args.baseline, args.candidate))
    if not sets:
        parser.error("give --baseline and --candidate, or --set NAME BASELINE CANDIDATE")
    if args.resamples < 100:
        parser.error("--resamples: at least 100, or the interval's ends are guesses")
    print("| set | utterances | words | baseline WER % | candidate WER % | difference | 95% interval | "
          "candidate better |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for name, baseline_path, candidate_path in sets:
        try:
            arrays = paired_arrays(read_errors_file(baseline_path), read_errors_file(candidate_path),
                                   (baseline_path, candidate_path))
            result = paired_bootstrap(*arrays, resamples=args.resamples, seed=args.seed)
        except AsrError as error:
            print(f"compare_wer: {name}: {error}", file=sys.stderr)
            return 2
        print(f"| {name} | {result.utterances} | {result.words} | {result.baseline_wer:.2f} | "
              f"{result.candidate_wer:.2f} | {result.difference:+.2f} | {result.low:+.2f} to {result.high:+.2f} | "
              f"{100 * result.candidate_better:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
