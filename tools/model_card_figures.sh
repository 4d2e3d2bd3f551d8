#!/usr/bin/env bash
# Measure every figure of the model card (asr/models/README.md) for the bundled default model, one log per figure.
#
#   bash tools/model_card_figures.sh [OUTPUT_DIR]      (default: model-card-figures/)
#   EXP_DIR=recipes/librispeech/exp/natural10           the bundled model's training run, for the WER-by-source
#                                                       curve (default: that one)
#   START=recipes/librispeech/data/natural/start-d187bfa.pt   the weights that run started from (natural.sh
#                                                       writes them as start-<commit>.pt; default: that one)
#   POCKETSPHINX=no                                     leave out PocketSphinx (its figures do not change with
#                                                       our model; it is the slowest step of the first part)
#
# Needs the recipe's corpora and manifests (recipes/librispeech: ./natural.sh --stop-stage 3) and, for the
# comparison, PocketSphinx (pip install pocketsphinx). The first part (the model card's tables) takes about an
# hour on 2 CPU cores with the bundled model's seven voted passes; --all adds int8, long audio, frame phase and the
# lineage of bundled models (about 100 minutes more). Each step's log is written when it finishes, and a step whose
# log exists is skipped, so an interrupted run goes on where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
all=false
if [ "${1:-}" = --all ]; then all=true; shift; fi
out=${1:-model-card-figures}
manifests=recipes/librispeech/data/manifests
natural=recipes/librispeech/data/natural/manifests
metadata=recipes/librispeech/data/synthetic/metadata.jsonl
for file in "$manifests"/{dev,test,dev-clean-text}.jsonl "$metadata" \
            "$natural"/{real-dev,speechocean762-dev,fsdd-dev,kokoro/test}.jsonl; do
  [ -f "$file" ] || { echo "model_card_figures: $file is missing; make the corpora first (recipes/librispeech:" \
                           "./natural.sh --stop-stage 3)" >&2; exit 2; }
done
mkdir -p "$out"
python=.venv/bin/python
asr=.venv/bin/asr

step() {  # step NAME COMMAND...: run COMMAND into $out/NAME.txt unless that log exists
  local name=$1; shift
  if [ -f "$out/$name.txt" ]; then echo "== $name: done before ($out/$name.txt)"; return; fi
  echo "== $name: $*"
  "$@" > "$out/$name.txt.tmp" 2>&1 || { echo "model_card_figures: $name failed, see $out/$name.txt.tmp" >&2; exit 1; }
  mv "$out/$name.txt.tmp" "$out/$name.txt"
  tail -n 3 "$out/$name.txt"
}

declare -A sets=([dev]=$manifests/dev.jsonl [test]=$manifests/test.jsonl
                 [dev-clean-text]=$manifests/dev-clean-text.jsonl [real-dev]=$natural/real-dev.jsonl
                 [speechocean762-dev]=$natural/speechocean762-dev.jsonl [fsdd-dev]=$natural/fsdd-dev.jsonl
                 [kokoro-test]=$natural/kokoro/test.jsonl)
for set in real-dev speechocean762-dev fsdd-dev kokoro-test test dev dev-clean-text; do
  step "$set-lm" "$asr" evaluate --manifest "${sets[$set]}" --errors-file "$out/$set-lm.errors.txt" --no-progress
  step "$set-greedy" "$asr" evaluate --manifest "${sets[$set]}" --no-lm --no-progress
  step "$set-lm-1-pass" "$asr" evaluate --manifest "${sets[$set]}" --passes 1 --no-progress  # the fast way
done
[ "${POCKETSPHINX:-yes}" = no ] || step pocketsphinx "$python" tools/compare_pocketsphinx.py \
  --pocketsphinx-cache "$out/pocketsphinx-cache.json" --sets real-dev="${sets[real-dev]}" \
  speechocean762-dev="${sets[speechocean762-dev]}" fsdd-dev="${sets[fsdd-dev]}" kokoro-test="${sets[kokoro-test]}"
step speed-real-dev "$python" tools/bench_transcribe.py --manifest "${sets[real-dev]}" --limit 0
step wer-by-source "$python" tools/plot_wer_by_source.py --exp-dir "${EXP_DIR:-recipes/librispeech/exp/natural10}" \
  --start "${START:-recipes/librispeech/data/natural/start-d187bfa.pt}" --output "$out/wer_by_source.png" \
  --sets real-dev="${sets[real-dev]}" speechocean762-dev="${sets[speechocean762-dev]}" \
  fsdd-dev="${sets[fsdd-dev]}" kokoro-dev=$natural/kokoro/dev.jsonl
step by-condition "$python" tools/wer_by_condition.py --errors "$out/test-lm.errors.txt" --metadata "$metadata"
step kokoro-by-condition "$python" tools/wer_by_condition.py --errors "$out/kokoro-test-lm.errors.txt" \
  --metadata recipes/librispeech/data/natural/kokoro/metadata.jsonl
du -b asr/models/default* > "$out/size.txt"
if ! $all; then echo "model_card_figures: every log is in $out/ (--all for the slower figures)"; exit 0; fi

step test-lm-int8 "$asr" evaluate --manifest "$manifests/test.jsonl" --int8 --no-progress
step speed "$python" tools/bench_transcribe.py --manifest "$manifests/test.jsonl" --limit 200 --passes 1 7
step long-audio-same "$python" tools/bench_long_audio.py --manifest "$manifests/test.jsonl" --same-content \
  --seeds 0 1 2
step long-audio "$python" tools/bench_long_audio.py --manifest "$manifests/test.jsonl"
step frame-phase-silence "$python" tools/bench_frame_phase.py --manifest "$manifests/test.jsonl" --limit 150 \
  --shifts-ms 0 400
step frame-phase "$python" tools/bench_frame_phase.py --manifest "$manifests/test.jsonl" --limit 300
# Every bundled default since the synthetic-only one, each with its own LM and tuning (about 4 minutes a model);
# append each new default's commit here.
step lineage "$python" tools/plot_model_lineage.py --output "$out/lineage.png" --work-dir "$out/lineage-models" \
  --models synthetic-only=0cc2a80 natural2=880414c natural3=a45850f natural4=90752d6 natural5=722bee7 \
  natural6=4b7137a natural7=d187bfa natural7-voted=59b5af7 natural10=6f12de4 \
  --sets real-dev="${sets[real-dev]}" speechocean762-dev="${sets[speechocean762-dev]}" \
  fsdd-dev="${sets[fsdd-dev]}" kokoro-test="${sets[kokoro-test]}" synthetic-test="${sets[test]}" \
  --goal real-dev=27.2 kokoro-test=10 synthetic-test=10.84
echo "model_card_figures: every log is in $out/"
