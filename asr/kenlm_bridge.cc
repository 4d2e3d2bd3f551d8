// A C interface to KenLM for the compiled beam search (asr/lm_decoder.py): numba calls these functions directly,
// without the interpreter, so a (state, word) pair the score cache has not seen costs a C++ call, not a trip back
// to Python. LM states stay here, numbered; the search holds only their numbers.
//
// Compiled with KenLM's own sources by asr/kenlm_native.py (`python -m asr.kenlm_native`); ours, not KenLM's.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <unordered_map>
#include <vector>

#include "lm/model.hh"

namespace {

struct StateHash {
  size_t operator()(const lm::ngram::State &state) const { return lm::ngram::hash_value(state); }
};

// One search's LM states, numbered from 0 (the start of a sentence) in the order they were met.
struct Context {
  const lm::base::Model *model;
  std::vector<lm::ngram::State> states;
  std::unordered_map<lm::ngram::State, int64_t, StateHash> number_of;
  int64_t last_next = 0;  // the state the last asr_lm_score call led to

  explicit Context(const lm::base::Model *m) : model(m) { Reset(); }

  void Reset() {
    states.clear();
    number_of.clear();
    lm::ngram::State start;
    model->BeginSentenceWrite(&start);
    start.ZeroRemaining();
    Intern(start);
  }

  int64_t Intern(const lm::ngram::State &state) {
    auto found = number_of.find(state);
    if (found != number_of.end()) return found->second;
    int64_t number = static_cast<int64_t>(states.size());
    states.push_back(state);
    number_of.emplace(state, number);
    return number;
  }
};

}  // namespace

extern "C" {

// The model in a KenLM binary or ARPA file, or null (with the reason in `error`, up to `error_size` bytes).
void *asr_lm_load(const char *path, char *error, int64_t error_size) {
  try {
    return lm::ngram::LoadVirtual(path);
  } catch (const std::exception &e) {
    if (error_size > 0) {
      std::snprintf(error, static_cast<size_t>(error_size), "%s", e.what());
    }
    return nullptr;
  }
}

void asr_lm_free(void *model) { delete static_cast<lm::base::Model *>(model); }

// The model's index of each of `count` words, given one a line, into out[0..count) (0, <unk>'s, for a word it does
// not know).
void asr_lm_indices(void *model, const char *words, int64_t count, uint32_t *out) {
  const lm::base::Vocabulary &vocabulary = static_cast<lm::base::Model *>(model)->BaseVocabulary();
  const char *begin = words;
  for (int64_t i = 0; i < count; ++i) {
    const char *end = std::strchr(begin, '\n');
    size_t length = end ? static_cast<size_t>(end - begin) : std::strlen(begin);
    out[i] = vocabulary.Index(StringPiece(begin, length));
    begin += length + (end ? 1 : 0);
  }
}

uint64_t asr_lm_context_new(void *model) {
  return reinterpret_cast<uint64_t>(new (std::nothrow) Context(static_cast<lm::base::Model *>(model)));
}

// A context that starts where `context` stands: the same states under the same numbers.
uint64_t asr_lm_context_copy(uint64_t context) {
  return reinterpret_cast<uint64_t>(new (std::nothrow) Context(*reinterpret_cast<Context *>(context)));
}

void asr_lm_context_free(uint64_t context) { delete reinterpret_cast<Context *>(context); }

int64_t asr_lm_context_states(uint64_t context) {
  return static_cast<int64_t>(reinterpret_cast<Context *>(context)->states.size());
}

// log10 P(word | state); the state it leads to is asr_lm_last_next's answer.
double asr_lm_score(uint64_t context, int64_t state, uint32_t word) {
  Context *c = reinterpret_cast<Context *>(context);
  lm::ngram::State out;
  float score = c->model->BaseScore(&c->states[static_cast<size_t>(state)], word, &out);
  out.ZeroRemaining();
  c->last_next = c->Intern(out);
  return score;
}

int64_t asr_lm_last_next(uint64_t context) { return reinterpret_cast<Context *>(context)->last_next; }

// Keep only the states numbered in keep[0..count) (sorted, starting with 0), renumbered 0, 1, ... in that order.
void asr_lm_context_keep(uint64_t context, const int64_t *keep, int64_t count) {
  Context *c = reinterpret_cast<Context *>(context);
  std::vector<lm::ngram::State> kept;
  kept.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) kept.push_back(c->states[static_cast<size_t>(keep[i])]);
  c->states.clear();
  c->number_of.clear();
  for (const auto &state : kept) c->Intern(state);
}

}  // extern "C"
