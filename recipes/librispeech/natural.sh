#!/usr/bin/env bash
# A model that hears real and natural voices, meant to become the bundled default: every command from the corpora to
# `asr export`, in numbered, idempotent stages (run all, or some with --stage N --stop-stage M). It starts from the
# weights of an earlier bundled model (taken from git at a fixed commit; by default the last synthetic-only one) and
# trains on a mix of real recorded speech, Kokoro neural voices and the classic synthetic corpus.
#
#   0 classic   the classic synthetic corpus: 3 h of train speech and the evaluation sets (run.sh stages 0-1), and
#               with --classic-more-hours, new classic train speech from further on in its plan
#   1 kokoro    Kokoro neural voices: train, dev and the held-out test set (voices no train speaker contains), and
#               with --kokoro-more-hours, more train speech in a second corpus (new sentences and speakers)
#   2 real      speechocean762 and FSDD manifests (train and dev speakers), and real-dev (measuring only)
#   3 mix       the training mix (small real corpora repeated) and the validation mix
#   4 train     asr train from the weights of --start-commit's bundled model (or --start-model's), widened first
#               when --hidden-size asks for more LSTM units than they have
#   5 lm        a word 4-gram LM from the public-domain books and the modern English text
#   6 tune      (with --average-with-start: the last epoch's weights averaged with the start's first, half each
#               or as --start-weight says)
#               LM weight, word bonus and beam chosen on the dev mix (never a test set)
#   7 package   asr export with int8 weights (--package-dir ../../asr/models makes the bundled default)
#
# A finished stage leaves a marker in $exp_dir/.done and is skipped when run again; training resumes from its last
# checkpoint and corpus synthesis skips every file already written.
set -euo pipefail
script=$(realpath "$0")
cd "$(dirname "$script")"

stage=0
stop_stage=7
data_dir=data
natural_dir=data/natural
exp_dir=exp/natural
start_commit=bef74fc                  # the last commit whose asr/models/default.pt was synthetic-only
start_model=""                        # a model file to start from instead of a commit's bundled model
hidden_size=384                       # LSTM units per direction; more than the start's widens it (asr/widen.py)
classic_train_hours=3
kokoro_train_hours=1.0
kokoro_more_hours=0                   # grow the Kokoro train speech to this many hours (0: no second corpus)
kokoro_more_from=""                   # where in the plan the second corpus starts (empty: where the first ends)
kokoro_dev_hours=0.1
kokoro_test_hours=0.35
real_repeats=3                        # speechocean762 and FSDD heard this many times an epoch
kokoro_repeats=5
kokoro_more_repeats=""                # the second Kokoro corpus (empty: as often as the first)
classic_repeats=2                     # one pass an epoch cost the synthetic test 6.7 points (RESULTS.md)
classic_more_hours=0                  # a second classic corpus up to this hour of the plan (0: none)
classic_more_from=280.0               # ... from this hour: the synthetic-only models heard hours 0-280
classic_more_repeats=1
epochs=2                              # "2 4": train to 2 epochs, then on to 4 (see stage 4)
learning_rate=5e-4
text=../../../shared/data/text
real_train=../../../shared/data/real-train
real_dev=../../../shared/data/real-dev
lm_books="$text/books_norm.txt.gz"
lm_modern="$text/modern_conversation.txt.gz $text/modern_dialogue.txt.gz $text/modern_short.txt.gz"
lm_prune="0 1 1 1"                    # 47.5 MB; 0 0 1 1 makes a 64 MB LM (natural7 on: RESULTS.md)
lm_short_utterances=0                 # template utterances added to the LM text (natural7-short: 30000)
lm_exclude_min_words=1                # 1: every evaluation transcript left out of the LM text, as the bundled LM's
lm_mix=""                             # "P B M": the pooled text's model, the books', the modern's mixed P:B:M
lm_weights="0.5 0.7 0.9 1.1"
word_bonuses="-2 -1 0 1"
decode_beams="32 64 128 256 512"     # stage 6 stores the smallest within 0.1 WER points of the best
tune_passes="1"                       # numbers of voted passes stage 6 tries with those beams
package_dir=""
average_with_start=false
start_weight=1                        # with --average-with-start: the start weights count this many times

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$script"; cat <<'USAGE'

options (defaults in brackets):
  --stage N / --stop-stage M    first and last stage to run [0 / 7]
  --exp-dir DIR                 experiment folder [exp/natural]
  --start-commit C              train from the bundled model of this git commit [bef74fc, the last synthetic-only]
  --start-model FILE            train from this model file instead, e.g. an earlier run's package that was not
                                bundled (its run's command belongs in the lineage before this one)
  --hidden-size N               LSTM units per direction; a start with fewer is widened to N, its added units
                                unread at first, so training starts from the start's own outputs [384]. Cannot
                                be combined with --average-with-start (the added units have no start weights)
  --epochs "N [M ...]"          train to N epochs, then resume on to M, ... [2]
  --learning-rate LR            peak learning rate [5e-4]
  --kokoro-train-hours H        hours of Kokoro train speech [1.0]
  --kokoro-more-hours H         grow it to H hours in a second corpus, data/natural/kokoro-more: the first
                                corpus stays what earlier runs heard; a later, larger H grows the second one
                                (its manifest takes every file there) [0, none]
  --kokoro-more-from H0         start the second corpus at hour H0 of the plan instead, in its own folder
                                data/natural/kokoro-from-H0h: a run after one that heard the plan up to H0 hears
                                new sentences and speakers only [the first corpus's end, data/natural/kokoro-more]
  --real-repeats N / --kokoro-repeats N / --classic-repeats N   times each is heard per epoch [3 / 5 / 2];
                                with --kokoro-repeats 0 only the first corpus's dev and test sets are made
  --kokoro-more-repeats N       times the second Kokoro corpus is heard per epoch [as --kokoro-repeats]
  --classic-more-hours H        new classic train speech: the classic plan from hour --classic-more-from up to
                                hour H, in data/natural/classic-from-H0h (the 3 h every natural run heard stay
                                as they are; --classic-repeats 0 leaves them out of the mix) [0, none]
  --classic-more-from H0        [280.0: the synthetic-only models heard the plan's first 280 h]; a later run
                                with a larger H and the same H0 grows that folder, and with it the mix of an
                                earlier run made again: give each run of a lineage its own H0
  --classic-more-repeats N      times the new classic speech is heard per epoch [1]
  --average-with-start          stage 6 tunes the last epoch averaged with the start weights (natural5: it kept
                                the gains on real voices and lost nothing on the synthetic test) [off]
  --start-weight N              ... with the start weights counted N times, the epoch once (natural6: 2, where
                                half and half lost 0.14 points on the synthetic test) [1]
  --lm-prune "N N N N"          stage 5's n-gram pruning, a count per order (0: keep all), the LM's folder
                                data/natural/lm-prune-NNNN [0 1 1 1]
  --lm-short-utterances N       add N short everyday utterances made from templates (`asr corpus short-text`,
                                seed 101) to the LM text; the LM's folder gets -shortN [0, none]
  --lm-exclude-min-words N      leave out of the LM text only the evaluation transcripts of N words or more
                                (`asr lm build --exclude-min-words`; 3 keeps lines such as YES and FIVE, which
                                identify no utterance); the LM's folder gets -excludeN [1: all, as the bundled LM]
  --lm-mix "P B M"              mix a model of all the LM text pooled, one of the books and one of the modern
                                English (with the template utterances) with weights P, B and M, a weight of 0
                                leaving that model out (`asr lm build --mix`); the LM's folder gets -mixP-B-M
                                [empty: the pooled model alone]
  --lm-weights "W ..." / --word-bonuses "B ..."   stage 6's grid (at beam 64, one pass)
                                ["0.5 0.7 0.9 1.1" / "-2 -1 0 1"]
  --beams "N ..."               the beams stage 6 then tries with the best setting ["32 64 128 256 512"]
  --passes "N [M ...]"          numbers of voted passes (`asr transcribe --passes`) stage 6 tries at each beam; it
                                stores the fastest pair of passes and beam within 0.1 WER points of the best
                                (natural7: "1 3 5 7") [1: one pass]
  --package-dir DIR             where stage 7 writes the model [exp_dir/package]
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --exp-dir) exp_dir=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --learning-rate) learning_rate=$2; shift 2 ;;
    --kokoro-train-hours) kokoro_train_hours=$2; shift 2 ;;
    --kokoro-more-hours) kokoro_more_hours=$2; shift 2 ;;
    --kokoro-more-from) kokoro_more_from=$2; shift 2 ;;
    --start-commit) start_commit=$2; shift 2 ;;
    --start-model) start_model=$2; shift 2 ;;
    --hidden-size) hidden_size=$2; shift 2 ;;
    --real-repeats) real_repeats=$2; shift 2 ;;
    --kokoro-repeats) kokoro_repeats=$2; shift 2 ;;
    --kokoro-more-repeats) kokoro_more_repeats=$2; shift 2 ;;
    --classic-repeats) classic_repeats=$2; shift 2 ;;
    --classic-more-hours) classic_more_hours=$2; shift 2 ;;
    --classic-more-from) classic_more_from=$2; shift 2 ;;
    --classic-more-repeats) classic_more_repeats=$2; shift 2 ;;
    --package-dir) package_dir=$2; shift 2 ;;
    --lm-prune) lm_prune=$2; shift 2 ;;
    --lm-short-utterances) lm_short_utterances=$2; shift 2 ;;
    --lm-exclude-min-words) lm_exclude_min_words=$2; shift 2 ;;
    --lm-mix) lm_mix=$2; shift 2 ;;
    --passes) tune_passes=$2; shift 2 ;;
    --lm-weights) lm_weights=$2; shift 2 ;;
    --word-bonuses) word_bonuses=$2; shift 2 ;;
    --beams) decode_beams=$2; shift 2 ;;
    --average-with-start) average_with_start=true; shift ;;
    --start-weight) start_weight=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "natural.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -n "$start_model" ] && [ ! -f "$start_model" ]; then
  echo "natural.sh: --start-model $start_model: no such file; give a model file (e.g. an earlier run's package/default.pt)" >&2
  exit 2
fi
if ! [[ "$hidden_size" =~ ^[0-9]+$ ]] || [ "$hidden_size" -lt 384 ]; then
  echo "natural.sh: --hidden-size $hidden_size: give a whole number of units, at least the bundled models' 384" >&2
  exit 2
fi
if [ "$hidden_size" != 384 ] && [ "$average_with_start" = true ]; then
  echo "natural.sh: --average-with-start with --hidden-size $hidden_size: a widened run's added units have no start weights to average with; drop one of the two" >&2
  exit 2
fi

manifests=$natural_dir/manifests
mkdir -p "$exp_dir/.done" "$manifests"
run_stage() {  # run_stage N NAME: whether stage N should run now
  local n=$1 name=$2 marker=$exp_dir/.done/stage$1
  [ "$n" -ge "$stage" ] && [ "$n" -le "$stop_stage" ] || return 1
  if [ -f "$marker" ]; then echo "stage $n ($name): done before, skipped ($marker)"; return 1; fi
  echo "stage $n ($name): $(date '+%F %T')"
}
done_stage() { touch "$exp_dir/.done/stage$1"; }

classic_more=classic-from-${classic_more_from}h
if run_stage 0 classic; then
  ./run.sh --data-dir "$data_dir" --synth-hours "$classic_train_hours" --synth-eval-hours 1 --stop-stage 1
  if [ "$classic_more_hours" != 0 ]; then
    # Sentences go to train, dev or test by a hash of their text, so new train hours never hold a test sentence.
    asr corpus synth --root "$natural_dir/$classic_more" --hours "$classic_more_hours" \
      --skip-train-hours "$classic_more_from" --dev-hours 0 --test-hours 0 --dev-clean-hours 0 \
      --text "$text/books_norm.txt.gz" --no-progress
    asr corpus prepare --root "$natural_dir/$classic_more" --splits train --output-dir "$manifests/$classic_more"
  fi
  done_stage 0
fi

if [ -z "$kokoro_more_from" ]; then
  kokoro_more_skip=$kokoro_train_hours kokoro_more=kokoro-more
else
  kokoro_more_skip=$kokoro_more_from kokoro_more=kokoro-from-${kokoro_more_from}h
fi
# A run that leaves the first corpus out of its mix needs only its dev and test sets (their plan does not depend on
# the train hours).
first_train_hours=$kokoro_train_hours first_splits="train dev test"
[ "$kokoro_repeats" != 0 ] || first_train_hours=0 first_splits="dev test"

kokoro_text="--text $text/books_norm.txt.gz $text/modern_conversation.txt.gz $text/modern_dialogue.txt.gz
  $text/modern_short.txt.gz --text-shares 0.3 0.2 0.15 0.15 --short-share 0.2 --min-words 1 --seed 0 --no-progress"
if run_stage 1 kokoro; then
  asr corpus synth --voices kokoro --root "$natural_dir/kokoro" --hours "$first_train_hours" \
    --dev-hours "$kokoro_dev_hours" --test-hours "$kokoro_test_hours" $kokoro_text
  asr corpus prepare --root "$natural_dir/kokoro" --splits $first_splits --output-dir "$manifests/kokoro"
  if [ "$kokoro_more_hours" != 0 ]; then
    # The plan for more hours starts with the plan for fewer, so skipping the first corpus's hours leaves new
    # sentences and, as the plan goes on, new speakers; dev and test stay as they were.
    asr corpus synth --voices kokoro --root "$natural_dir/$kokoro_more" --hours "$kokoro_more_hours" \
      --skip-train-hours "$kokoro_more_skip" --dev-hours 0 --test-hours 0 $kokoro_text
    asr corpus prepare --root "$natural_dir/$kokoro_more" --splits train --output-dir "$manifests/$kokoro_more"
  fi
  done_stage 1
fi

if run_stage 2 real; then
  asr corpus real-train --source "$real_train" --output-dir "$manifests"
  asr corpus real-dev --root "$real_dev" --output "$manifests/real-dev.jsonl"
  done_stage 2
fi

train_mix=$exp_dir/train-mix.jsonl
if run_stage 3 mix; then
  kokoro_inputs=""
  [ "$kokoro_repeats" = 0 ] || kokoro_inputs="kokoro=$manifests/kokoro/train.jsonl:$kokoro_repeats"
  [ "$kokoro_more_hours" = 0 ] || [ "${kokoro_more_repeats:-$kokoro_repeats}" = 0 ] \
    || kokoro_inputs+=" $kokoro_more=$manifests/$kokoro_more/train.jsonl:${kokoro_more_repeats:-$kokoro_repeats}"
  classic_inputs=""
  [ "$classic_repeats" = 0 ] || classic_inputs="classic=$data_dir/manifests/train.jsonl:$classic_repeats"
  [ "$classic_more_hours" = 0 ] \
    || classic_inputs+=" $classic_more=$manifests/$classic_more/train.jsonl:$classic_more_repeats"
  python local/mix_manifests.py --output "$train_mix" --summary "$exp_dir/data_mix.json" --input \
    speechocean762="$manifests/speechocean762-train.jsonl:$real_repeats" fsdd="$manifests/fsdd-train.jsonl:$real_repeats" \
    $kokoro_inputs $classic_inputs
  python local/make_valid_subset.py --manifest "$manifests/fsdd-dev.jsonl" --output "$manifests/fsdd-valid.jsonl" \
    --utterances 100
  python local/mix_manifests.py --output "$manifests/valid-mix.jsonl" --input \
    speechocean762="$manifests/speechocean762-dev.jsonl" fsdd="$manifests/fsdd-valid.jsonl" \
    kokoro="$manifests/kokoro/dev.jsonl" classic="$data_dir/manifests/valid-subset.jsonl"
  done_stage 3
fi

start=${start_model:-$natural_dir/start-$start_commit.pt}
if run_stage 4 train; then
  [ -f "$start" ] || git show "$start_commit:asr/models/default.pt" > "$start"
  # Each planned count resumes the run and trains on to it. Raising the count stretches the cosine decay over the
  # new total, so the learning rate jumps back to where the longer schedule is (a warm restart): exp/natural3 was
  # exp/natural2's run taken on from 2 epochs to 4 (RESULTS.md).
  for planned_epochs in $epochs; do
    bash ../../tools/snapshot_checkpoints.sh "$exp_dir" &   # checkpoints kept for the WER-by-source curve
    asr train --train-data "$train_mix" --valid-manifest "$manifests/valid-mix.jsonl" \
      --exp-dir "$exp_dir" --preset base --device cpu --no-progress --set model.hidden_size="$hidden_size" \
      --set model.outputs_per_step=2 --set train.init_from="$start" --set train.epochs="$planned_epochs" \
      --set train.learning_rate="$learning_rate" --set train.warmup_steps=100 --set train.pad_seconds=0.4
    wait  # the snapshot loop ends with the run
  done
  done_stage 4
fi

lm_dir=$natural_dir/lm-prune-${lm_prune// /}
[ "$lm_exclude_min_words" = 1 ] || lm_dir=$lm_dir-exclude$lm_exclude_min_words
[ "$lm_short_utterances" = 0 ] || lm_dir=$lm_dir-short$lm_short_utterances
[ -z "$lm_mix" ] || lm_dir=$lm_dir-mix${lm_mix// /-}
if run_stage 5 lm; then
  if [ -f "$lm_dir/lm.bin" ]; then
    echo "$lm_dir/lm.bin is there from an earlier run: reused (delete it to rebuild)"
  else
    mkdir -p "$lm_dir"
    modern=$lm_modern
    if [ "$lm_short_utterances" != 0 ]; then
      # Another seed than the spoken corpus's (0): a new sample of the same templates.
      asr corpus short-text --count "$lm_short_utterances" --seed 101 --no-progress \
        --output "$lm_dir/short-utterances.txt.gz"
      modern="$modern $lm_dir/short-utterances.txt.gz"
    fi
    texts=(--text $lm_books $modern)
    if [ -n "$lm_mix" ]; then
      read -r pooled_weight books_weight modern_weight <<< "$lm_mix"
      texts=() weights=()
      for part in "pooled $lm_books $modern" "books $lm_books" "modern $modern"; do
        read -r name files <<< "$part"
        weight_of=${name}_weight
        if [ "${!weight_of:-0}" != 0 ]; then texts+=(--text $files); weights+=("${!weight_of}"); fi
      done
      texts+=(--mix "${weights[@]}")
    fi
    # Every evaluation transcript (of --lm-exclude-min-words or more) is left out of the LM text, the Kokoro and
    # real dev and test sets too.
    asr lm build "${texts[@]}" --exclude-min-words "$lm_exclude_min_words" --order 4 --prune $lm_prune \
      --discount-fallback --output "$lm_dir/lm.arpa" --binary "$lm_dir/lm.bin" \
      --exclude "$data_dir/manifests/dev.jsonl" "$data_dir/manifests/test.jsonl" \
      "$data_dir/manifests/dev-clean-text.jsonl" "$manifests/kokoro/dev.jsonl" "$manifests/kokoro/test.jsonl" \
      "$manifests/speechocean762-dev.jsonl" "$manifests/fsdd-dev.jsonl" "$manifests/real-dev.jsonl"
    rm -f "$lm_dir/lm.arpa"
  fi
  done_stage 5
fi

if run_stage 6 tune; then
  # The grid at beam 64 (the acoustic model runs once), then the best setting at each beam: the smallest beam within
  # 0.1 WER points of the best is stored, where more beam stops paying on the dev mix. With --passes, each number of
  # voted passes at each beam, and the fastest pair within 0.1 points of the best is stored instead.
  tuned_from=$exp_dir/model.pt
  if [ "$average_with_start" = true ]; then
    tuned_from=$exp_dir/model_avg.pt
    starts=()  # the start weights, --start-weight times
    for _ in $(seq "$start_weight"); do starts+=("$start"); done
    python local/average.py --exp-dir "$exp_dir" --last 1 --with-checkpoints "${starts[@]}" --output "$tuned_from"
  fi
  passes_option=()
  [ "$tune_passes" = 1 ] || passes_option=(--passes $tune_passes)
  asr lm tune --model "$tuned_from" --lm "$lm_dir/lm.bin" --manifest "$manifests/valid-mix.jsonl" \
    --lm-weights $lm_weights --word-bonuses $word_bonuses --unk-penalties -20 --blank-penalties 1.5 \
    --beam-size 64 --beam-sizes $decode_beams "${passes_option[@]}" --output "$exp_dir/model_lm.pt" \
    --plot "$exp_dir/lm_tuning.png" --no-progress
  done_stage 6
fi

if run_stage 7 package; then
  asr export --model "$exp_dir/model_lm.pt" --output-dir "${package_dir:-$exp_dir/package}" --name default \
    --weights int8
  done_stage 7
fi
