"""Speak a few sentences with two offline TTS voices into FOLDER, with FOLDER/manifest.jsonl (used by quickstart)."""

import sys

from asr.synth_corpus import speak_to_manifest
from asr.tts import Voice

SENTENCES = ["The cat sat on the mat", "A dog ran in the park", "She read a good book",
             "We walked to the old house", "He likes green apples", "The sun is warm today"]

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/make_demo_data.py FOLDER")
    manifest = speak_to_manifest(sys.argv[1], SENTENCES, [Voice("espeak-ng", "m3", "en-us"), Voice("flite", "slt")])
    print(f"wrote {len(SENTENCES)} utterances and {manifest}")
