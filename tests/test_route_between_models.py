"""tools/route_between_models.py: choosing one of two models' transcripts per utterance."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from asr.data import Utterance

TOOLS = Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))  # the tool imports wer_by_corpus from beside it
spec = importlib.util.spec_from_file_location("route_between_models", TOOLS / "route_between_models.py")
route = importlib.util.module_from_spec(spec)
spec.loader.exec_module(route)

UTTERANCES = {
    "a": Utterance(id="a", audio="data/synthetic/a.flac", duration=2.0, text="THE CAT SAT"),
    "b": Utterance(id="b", audio="data/fsdd/b.wav", duration=0.5, text="SEVEN"),
}
# The first model is right on the real recording, the second on the synthetic one, and more confident on both.
FIRST = {"a": {"text": "THE HAT SAT", "confidence": 0.80, "frame_confidence": 0.90},
         "b": {"text": "SEVEN", "confidence": 0.70, "frame_confidence": 0.85}}
SECOND = {"a": {"text": "THE CAT SAT", "confidence": 0.95, "frame_confidence": 0.93},
          "b": {"text": "HEAVEN", "confidence": 0.75, "frame_confidence": 0.80}}


def test_the_oracle_takes_the_fewer_errors_of_each_utterance():
    assert route.oracle(FIRST, SECOND, UTTERANCES) == {"a": "THE CAT SAT", "b": "SEVEN"}


def test_the_margin_decides_how_much_more_confident_the_second_model_must_be():
    assert route.routed(FIRST, SECOND, "confidence", 0.0) == {"a": "THE CAT SAT", "b": "HEAVEN"}
    assert route.routed(FIRST, SECOND, "confidence", 0.1) == {"a": "THE CAT SAT", "b": "SEVEN"}
    assert route.routed(FIRST, SECOND, "frame_confidence", 0.0) == {"a": "THE CAT SAT", "b": "SEVEN"}
    assert route.routed(FIRST, SECOND, "confidence", float("inf")) == {"a": "THE HAT SAT", "b": "SEVEN"}


def test_an_utterance_only_one_model_could_read_takes_that_models_transcript():
    assert route.routed({"a": FIRST["a"]}, {"b": SECOND["b"]}, "confidence", 1.0) == {"a": "THE HAT SAT",
                                                                                     "b": "HEAVEN"}


def test_the_table_row_gives_the_wer_in_all_and_by_corpus():
    row = route.wer_row("both right", {"a": "THE CAT SAT", "b": "HEAVEN"}, UTTERANCES)
    assert row == "| both right | 25.00 | 100.00 | 0.00 |"  # 1 of 4 words; fsdd 1/1, synthetic 0/3
