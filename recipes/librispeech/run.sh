#!/usr/bin/env bash
# LibriSpeech recipe for asr: numbered, idempotent stages; run all, or some with --stage N --stop-stage M.
#
#   0 data      download LibriSpeech (--corpus librispeech) or synthesise a corpus (--corpus synthetic)
#   1 prepare   JSONL manifests of every split (and of the real-speech measuring set, when present)
#   2 stats     feature normalisation statistics from the training manifest
#   3 shards    WebDataset shards of the training set, grouped by duration
#   4 train     asr train on the shards; several GPUs or nodes through torchrun
#   5 average   average the last N epoch checkpoints
#   6 lm        a word 4-gram LM (modified Kneser-Ney) from book text, or a given ARPA, as a KenLM binary
#   7 tune      LM weight, word bonus and unknown-word penalty searched on the dev set, stored with the model
#   8 decode    greedy, beam search, and beam search with the LM on every evaluation set; RESULTS.md
#   9 package   the tuned model in fp16 with its LM, in one folder (how asr/models/default.pt is made)
#
# A finished stage leaves a marker in $exp_dir/.done (data stages in $data_dir/.done) and is skipped when run
# again; training resumes from its last checkpoint. Only the installed `asr` package is imported.
set -euo pipefail
script=$(realpath "$0")
cd "$(dirname "$script")"

stage=0
stop_stage=9
corpus=synthetic                    # synthetic | librispeech
data_dir=data
exp_dir=exp/small
preset=small
overrides=()
train_splits=""                     # default: train (synthetic) / train-clean-100 (librispeech)
eval_splits=""                      # default: dev test dev-clean-text / dev-clean dev-other test-clean test-other
synth_hours=10
synth_eval_hours=1
synth_jobs=""
synth_skip_train_hours=0            # >0: leave out the train speech of the first H hours (grow with new sentences only)
synth_text=""                       # default: ../shared/data/text/books_norm.txt.gz
shard_mb=256
nproc_per_node=1
nnodes=1
node_rank=0
master_addr=127.0.0.1
master_port=29500
average_last=3
beam_size=8
device=auto
real_dev=../../../shared/data/real-dev
lm_text=../../../shared/data/text/books_norm.txt.gz  # public-domain books; evaluation transcripts are left out
lm_arpa=""                          # an existing ARPA (e.g. LibriSpeech's 4-gram.arpa.gz) instead of lm_text
lm_order=4
lm_prune="0 0 1 1"
lm_vocabulary_size=""               # default: every word of the LM text
# A word list (word, or word<TAB>count) that joins the LM's vocabulary, so the search can spell words the LM text
# lacks, e.g. ../../../shared/data/text/librispeech-train-words.count.txt.gz. Off by default: on the synthetic sets
# it moved WER by a few tenths either way and pushed the package past 50 MB (RESULTS.md).
lm_add_words=""
lm_add_words_min_count=1
lm_dir=""                           # default: $data_dir/lm
package_dir=""                      # default: $exp_dir/package
lm_weights="0.1 0.2 0.3 0.5 0.8"
word_bonuses="-1 0 1 2 3"
unk_penalties="-10 -20"
blank_penalties="0 1"
lm_beam_size=32

usage() { sed -n '2,13p' "$script" | sed 's/^# \{0,1\}//'; cat <<'USAGE'

options (defaults in brackets):
  --stage N / --stop-stage M      first and last stage to run [0 / 9]
  --corpus synthetic|librispeech  where the speech comes from [synthetic]
  --data-dir DIR / --exp-dir DIR  corpus and manifests / experiment [data / exp/small]
  --preset NAME                   tiny, small, base, medium or large [small]
  --set SECTION.KEY=VALUE         override one config value (repeatable), e.g. --set train.epochs=10
  --train-splits "A B" / --eval-splits "C D"
  --synth-hours H / --synth-eval-hours H / --synth-jobs N   size of the synthetic corpus [10 / 1 / all cores]
  --synth-text FILE               sentences to speak [../shared/data/text/books_norm.txt.gz]
  --synth-skip-train-hours H      leave out the train speech planned for the first H hours, so a corpus grows
                                  with new sentences only (its first part trained on and deleted) [0]
  --nproc-per-node N / --nnodes N / --node-rank R / --master-addr A / --master-port P   torchrun [1/1/0]
  --average-last N / --beam-size N / --device cpu|cuda|auto / --real-dev DIR
  --lm-text FILE / --lm-arpa FILE LM training text [../shared/data/text/books_norm.txt.gz] / existing ARPA
  --lm-order N / --lm-prune "COUNTS" / --lm-vocabulary-size N  [4 / "0 0 1 1" / all words]
  --lm-add-words FILE / --lm-add-words-min-count N   words to add to the LM's vocabulary (one a line, a count
                                  after a tab) and the count they need [none / 1]
  --lm-dir DIR                    where stage 6 writes the LM and stage 7 takes it from [data/lm]
  --package-dir DIR               where stage 9 writes the packaged model [exp_dir/package]
  --lm-weights "W.." / --word-bonuses "B.." / --unk-penalties "P.." / --blank-penalties "P.." / --lm-beam-size N
                                  tuning grid and beam [see run.sh / 32]
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --exp-dir) exp_dir=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --set) overrides+=(--set "$2"); shift 2 ;;
    --train-splits) train_splits=$2; shift 2 ;;
    --eval-splits) eval_splits=$2; shift 2 ;;
    --synth-hours) synth_hours=$2; shift 2 ;;
    --synth-eval-hours) synth_eval_hours=$2; shift 2 ;;
    --synth-jobs) synth_jobs=$2; shift 2 ;;
    --synth-text) synth_text=$2; shift 2 ;;
    --synth-skip-train-hours) synth_skip_train_hours=$2; shift 2 ;;
    --shard-mb) shard_mb=$2; shift 2 ;;
    --nproc-per-node) nproc_per_node=$2; shift 2 ;;
    --nnodes) nnodes=$2; shift 2 ;;
    --node-rank) node_rank=$2; shift 2 ;;
    --master-addr) master_addr=$2; shift 2 ;;
    --master-port) master_port=$2; shift 2 ;;
    --average-last) average_last=$2; shift 2 ;;
    --beam-size) beam_size=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --real-dev) real_dev=$2; shift 2 ;;
    --lm-text) lm_text=$2; shift 2 ;;
    --lm-arpa) lm_arpa=$2; shift 2 ;;
    --lm-order) lm_order=$2; shift 2 ;;
    --lm-prune) lm_prune=$2; shift 2 ;;
    --lm-vocabulary-size) lm_vocabulary_size=$2; shift 2 ;;
    --lm-add-words) lm_add_words=$2; shift 2 ;;
    --lm-add-words-min-count) lm_add_words_min_count=$2; shift 2 ;;
    --lm-dir) lm_dir=$2; shift 2 ;;
    --package-dir) package_dir=$2; shift 2 ;;
    --lm-weights) lm_weights=$2; shift 2 ;;
    --word-bonuses) word_bonuses=$2; shift 2 ;;
    --unk-penalties) unk_penalties=$2; shift 2 ;;
    --blank-penalties) blank_penalties=$2; shift 2 ;;
    --lm-beam-size) lm_beam_size=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

case "$corpus" in
  synthetic)
    corpus_root=$data_dir/synthetic
    train_splits=${train_splits:-train}
    eval_splits=${eval_splits:-"dev test dev-clean-text"} ;;
  librispeech)
    corpus_root=$data_dir/LibriSpeech
    train_splits=${train_splits:-train-clean-100}
    eval_splits=${eval_splits:-"dev-clean dev-other test-clean test-other"} ;;
  *) echo "run.sh: --corpus must be synthetic or librispeech" >&2; exit 2 ;;
esac
manifests=$data_dir/manifests
mkdir -p "$data_dir/.done" "$exp_dir/.done"

run_stage() {  # run_stage N NAME MARKER_DIR: whether stage N should run now
  local n=$1 name=$2 marker=$3/.done/stage$1
  [ "$n" -ge "$stage" ] && [ "$n" -le "$stop_stage" ] || return 1
  if [ -f "$marker" ]; then echo "stage $n ($name): done before, skipped ($marker)"; return 1; fi
  echo "stage $n ($name): $(date '+%F %T')"
}
done_stage() { touch "$2/.done/stage$1"; }

if run_stage 0 data "$data_dir"; then
  if [ "$corpus" = librispeech ]; then
    python local/download.py --root "$data_dir" --splits $train_splits $eval_splits
  else
    asr corpus synth --root "$corpus_root" --hours "$synth_hours" --dev-hours "$synth_eval_hours" \
      --test-hours "$synth_eval_hours" --dev-clean-hours "$synth_eval_hours" ${synth_jobs:+--jobs $synth_jobs} \
      ${synth_text:+--text "$synth_text"} --skip-train-hours "$synth_skip_train_hours" \
      --no-progress
  fi
  done_stage 0 "$data_dir"
fi

if run_stage 1 prepare "$data_dir"; then
  asr corpus prepare --root "$corpus_root" --splits $train_splits $eval_splits --output-dir "$manifests"
  cat $(for s in $train_splits; do echo "$manifests/$s.jsonl"; done) > "$manifests/train-all.jsonl"
  python local/make_valid_subset.py --manifest "$manifests/${eval_splits%% *}.jsonl" \
    --output "$manifests/valid-subset.jsonl" --utterances 300
  if [ -d "$real_dev" ]; then
    asr corpus real-dev --root "$real_dev" --output "$manifests/real-dev.jsonl"
  fi
  done_stage 1 "$data_dir"
fi

if run_stage 2 stats "$exp_dir"; then
  python local/compute_stats.py --manifest "$manifests/train-all.jsonl" --output "$exp_dir/feature_stats.pt"
  done_stage 2 "$exp_dir"
fi

if run_stage 3 shards "$data_dir"; then
  python local/make_shards.py --manifest "$manifests/train-all.jsonl" --output-dir "$data_dir/shards/train" \
    --shard-mb "$shard_mb"
  done_stage 3 "$data_dir"
fi

if run_stage 4 train "$exp_dir"; then
  train_args=(train --train-data "$data_dir/shards/train" --valid-manifest "$manifests/valid-subset.jsonl"
              --exp-dir "$exp_dir" --preset "$preset" --device "$device" "${overrides[@]}")
  if [ $((nproc_per_node * nnodes)) -gt 1 ]; then
    torchrun --nproc-per-node "$nproc_per_node" --nnodes "$nnodes" --node-rank "$node_rank" \
      --master-addr "$master_addr" --master-port "$master_port" -m asr "${train_args[@]}"
  else
    asr "${train_args[@]}"
  fi
  done_stage 4 "$exp_dir"
fi

if run_stage 5 average "$exp_dir"; then
  python local/average.py --exp-dir "$exp_dir" --last "$average_last" --output "$exp_dir/model_avg.pt" \
    --train-data "$data_dir/shards/train"
  done_stage 5 "$exp_dir"
fi

lm_dir=${lm_dir:-$data_dir/lm}
lm=$lm_dir/lm.bin
mkdir -p "$lm_dir/.done"
if run_stage 6 lm "$lm_dir"; then
  if [ -n "$lm_arpa" ]; then
    asr lm build --arpa "$lm_arpa" --binary "$lm"
  else
    # Evaluation transcripts are dropped from the LM text, so the LM has not seen the test sentences.
    asr lm build --text "$lm_text" --order "$lm_order" --prune $lm_prune --discount-fallback --output "$lm_dir/lm.arpa" \
      ${lm_vocabulary_size:+--vocabulary-size $lm_vocabulary_size} \
      ${lm_add_words:+--add-words "$lm_add_words" --add-words-min-count "$lm_add_words_min_count"} \
      --binary "$lm" --exclude $(for s in $eval_splits; do echo "$manifests/$s.jsonl"; done)
  fi
  done_stage 6 "$lm_dir"
fi

if run_stage 7 tune "$exp_dir"; then
  asr lm tune --model "$exp_dir/model_avg.pt" --lm "$lm" --manifest "$manifests/${eval_splits%% *}.jsonl" \
    --lm-weights $lm_weights --word-bonuses $word_bonuses --unk-penalties $unk_penalties \
    --blank-penalties $blank_penalties --beam-size "$lm_beam_size" \
    --output "$exp_dir/model_lm.pt" --plot "$exp_dir/lm_tuning.png" --no-progress
  done_stage 7 "$exp_dir"
fi

if run_stage 8 decode "$exp_dir"; then
  sets=()
  for s in $eval_splits; do sets+=("$s=$manifests/$s.jsonl"); done
  [ -f "$manifests/real-dev.jsonl" ] && sets+=("real-dev=$manifests/real-dev.jsonl")
  python local/decode_and_score.py --model "$exp_dir/model_lm.pt" --sets "${sets[@]}" --beam-size "$beam_size" \
    --output-dir "$exp_dir/decode" --results "$exp_dir/RESULTS.md" \
    --command "recipes/librispeech/run.sh --corpus $corpus --preset $preset ${overrides[*]:-}"
  done_stage 8 "$exp_dir"
fi

if run_stage 9 package "$exp_dir"; then
  # --package-dir ../../asr/models makes the model `asr transcribe` uses when given no --model.
  asr export --model "$exp_dir/model_lm.pt" --output-dir "${package_dir:-$exp_dir/package}" --name default
  done_stage 9 "$exp_dir"
fi
