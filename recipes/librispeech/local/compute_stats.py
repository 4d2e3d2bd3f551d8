"""Stage 2: feature normalisation statistics from the training manifest, into the experiment folder.

Training reads EXP_DIR/feature_stats.pt and stores the statistics in every model it saves.
"""

import argparse
import sys
from pathlib import Path

from asr.checkpoint import atomic_save
from asr.config import ExperimentConfig
from asr.data import read_manifest
from asr.train import STATS_UTTERANCES
from asr.audio import load_audio
from asr.errors import AsrError
from asr.features import FeatureStatistics, log_mel
from tqdm import tqdm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--output", required=True, help="e.g. exp/small/feature_stats.pt")
    parser.add_argument("--utterances", type=int, default=STATS_UTTERANCES, help="sampled evenly")
    args = parser.parse_args()
    features = ExperimentConfig().features
    utterances = read_manifest(args.manifest)
    step = max(1, len(utterances) // args.utterances)
    statistics = FeatureStatistics(features.n_mels)
    for utterance in tqdm(utterances[::step], desc="statistics", unit="utt"):
        try:
            statistics.add(log_mel(load_audio(utterance.audio), features))
        except AsrError as error:
            print(f"skipped: {error}", file=sys.stderr)
    mean, std = statistics.mean_std()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    atomic_save({"mean": mean, "std": std}, args.output)
    print(f"statistics of {statistics.count} frames -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
