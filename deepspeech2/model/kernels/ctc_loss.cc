// CTC loss and its gradient for MindSpore's Custom aot op on CPU (deepspeech2/model/loss.py).
//
// Graves' forward-backward recursion in probability space, each frame's variables rescaled to sum 1 (the
// scales' logs sum to the log-likelihood), in double: one multiply-add per state and frame where MindSpore
// 2.10's CTCLossV2 takes a log-sum-exp (its forward + backward were 38 ms of a 0.45-s lab step). Utterances
// are shared among the threads. Label sequence with blanks l' = (b, l1, b, l2, ..., b), S' = 2 L + 1 states.
//
//   CtcLoss(log_probs (T, N, C), targets (N, S) int32, input_lengths (N,) int32, target_lengths (N,) int32)
//     -> (N,): -ln p(target | input), inf when the target cannot be aligned in input_lengths frames
//   CtcLossGrad(log_probs, targets, input_lengths, target_lengths, d_loss (N,)) -> (T, N, C):
//     d_loss[n] * d(-ln p)/d log_probs[t, n, k] = -d_loss[n] * gamma_t(k), the posterior probability that frame
//     t emits label k; zero on frames t >= input_lengths[n] and for unalignable utterances (zero_infinity).
//     Through the log-softmax before it this is the usual softmax - posterior gradient of the logits.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "kernel_threads.h"

namespace {

constexpr int kOk = 0;
constexpr int kBadArguments = 1;

struct Batch {
  int64_t frames, batch, classes, max_target;
  const float *log_probs;
  const int32_t *targets, *input_lengths, *target_lengths;
  int64_t blank;
};

// One utterance's label sequence with blanks and its emission probabilities.
struct Utterance {
  int64_t frames = 0, states = 0;
  std::vector<int32_t> labels;      // l' (S',)
  std::vector<uint8_t> skip;        // skip[s]: state s may be entered from s - 2
  std::vector<double> emit;         // (T, S'): y_t(l'_s)
};

// Says on stderr which argument of utterance n is out of range (MindSpore reports only the kernel's return
// code); returns false.
bool Reject(int64_t n, const char *what, int64_t value, const char *expected) {
  std::fprintf(stderr,
               "deepspeech2 CTC loss kernel: utterance %" PRId64 " of the batch: %s %" PRId64 ", expected %s "
               "(targets hold the vocabulary's label ids, never the blank; see deepspeech2/data/vocab.py)\n",
               n, what, value, expected);
  return false;
}

// false (and a message on stderr) when the arguments of utterance n are out of range
bool Prepare(const Batch &b, int64_t n, Utterance *u) {
  const int64_t length = b.input_lengths[n], target = b.target_lengths[n];
  if (length < 0 || length > b.frames) return Reject(n, "input length", length, "0 .. the padded frame count");
  if (target < 0 || target > b.max_target) return Reject(n, "target length", target, "0 .. the padded target width");
  u->frames = length;
  u->states = 2 * target + 1;
  u->labels.assign(u->states, static_cast<int32_t>(b.blank));
  u->skip.assign(u->states, 0);
  for (int64_t i = 0; i < target; ++i) {
    const int32_t label = b.targets[n * b.max_target + i];
    if (label == b.blank) return Reject(n, "target label", label, "a label other than the blank");
    if (label < 0 || label >= b.classes) return Reject(n, "target label", label, "0 .. classes - 1");
    u->labels[2 * i + 1] = label;
    u->skip[2 * i + 1] = i > 0 && label != u->labels[2 * i - 1];
  }
  u->emit.resize(length * u->states);
  for (int64_t t = 0; t < length; ++t) {
    const float *row = b.log_probs + (t * b.batch + n) * b.classes;
    for (int64_t s = 0; s < u->states; ++s) u->emit[t * u->states + s] = std::exp(static_cast<double>(row[u->labels[s]]));
  }
  return true;
}

// Runs fn(n, utterance) for every utterance n after Prepare (the utterances split among the kernel threads);
// kBadArguments when any utterance's arguments are out of range.
template <typename Fn>
int PerUtterance(const Batch &b, Fn fn) {
  return ds2::OnRanges(b.batch, ds2::KernelThreads(1), [&](int64_t, int64_t first, int64_t end) {
    Utterance u;
    for (int64_t n = first; n < end; ++n) {
      if (!Prepare(b, n, &u)) return kBadArguments;
      fn(n, u);
    }
    return kOk;
  });
}

// Rescaled forward variables alpha (T, S'), each frame's summing to 1; returns -ln p (inf if unalignable).
double Forward(const Utterance &u, std::vector<double> *alpha) {
  const int64_t states = u.states;
  alpha->assign(std::max<int64_t>(u.frames, 1) * states, 0.0);
  if (u.frames == 0) return states == 1 ? 0.0 : std::numeric_limits<double>::infinity();
  double *a = alpha->data();
  a[0] = u.emit[0];
  if (states > 1) a[1] = u.emit[1];
  double log_likelihood = 0.0;
  for (int64_t t = 0;; ++t) {
    double *row = a + t * states;
    double sum = 0.0;
    for (int64_t s = 0; s < states; ++s) sum += row[s];
    if (!(sum > 0.0)) return std::numeric_limits<double>::infinity();
    log_likelihood += std::log(sum);
    const double scale = 1.0 / sum;
    for (int64_t s = 0; s < states; ++s) row[s] *= scale;
    if (t + 1 == u.frames) break;
    double *next = row + states;
    const double *emit = u.emit.data() + (t + 1) * states;
    for (int64_t s = 0; s < states; ++s) {
      double reach = row[s];
      if (s > 0) reach += row[s - 1];
      if (u.skip[s]) reach += row[s - 2];
      next[s] = reach * emit[s];
    }
  }
  const double *last = a + (u.frames - 1) * states;
  const double end = last[states - 1] + (states > 1 ? last[states - 2] : 0.0);
  if (!(end > 0.0)) return std::numeric_limits<double>::infinity();
  return -(log_likelihood + std::log(end));
}

bool ValidArguments(int nparam, int expected, int *ndims, int64_t **shapes, const char **dtypes) {
  if (nparam != expected || ndims[0] != 3 || ndims[1] != 2 || ndims[2] != 1 || ndims[3] != 1) return false;
  const int64_t batch = shapes[0][1];
  if (shapes[1][0] != batch || shapes[2][0] != batch || shapes[3][0] != batch) return false;
  if (std::string(dtypes[0]) != "float32" || std::string(dtypes[1]) != "int32" || std::string(dtypes[2]) != "int32" ||
      std::string(dtypes[3]) != "int32") {
    return false;
  }
  return DS2_CTC_BLANK >= 0 && DS2_CTC_BLANK < shapes[0][2];   // the blank is one of the classes
}

Batch BatchOf(void **params, int64_t **shapes) {
  return Batch{shapes[0][0], shapes[0][1], shapes[0][2], shapes[1][1], static_cast<const float *>(params[0]),
               static_cast<const int32_t *>(params[1]), static_cast<const int32_t *>(params[2]),
               static_cast<const int32_t *>(params[3]), DS2_CTC_BLANK};
}

}  // namespace

extern "C" std::vector<int64_t> CtcLossInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][1]};
}

extern "C" std::vector<int64_t> CtcLossGradInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], shapes[0][1], shapes[0][2]};
}

extern "C" int CtcLoss(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                       void *extra) {
  if (!ValidArguments(nparam, 5, ndims, shapes, dtypes) || std::string(dtypes[4]) != "float32") return kBadArguments;
  const Batch b = BatchOf(params, shapes);
  auto *losses = static_cast<float *>(params[4]);
  return PerUtterance(b, [&](int64_t n, const Utterance &u) {
    std::vector<double> alpha;
    losses[n] = static_cast<float>(Forward(u, &alpha));
  });
}

extern "C" int CtcLossGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                           void *extra) {
  if (!ValidArguments(nparam, 6, ndims, shapes, dtypes) || ndims[4] != 1 || shapes[4][0] != shapes[0][1]) {
    return kBadArguments;
  }
  const Batch b = BatchOf(params, shapes);
  const auto *d_loss = static_cast<const float *>(params[4]);
  auto *grad = static_cast<float *>(params[5]);
  std::fill(grad, grad + b.frames * b.batch * b.classes, 0.0f);
  return PerUtterance(b, [&](int64_t n, const Utterance &u) {
    std::vector<double> alpha;
    if (!std::isfinite(Forward(u, &alpha)) || u.frames == 0) return;   // zero_infinity: no gradient
    const int64_t states = u.states;
    std::vector<double> beta(states, 0.0), previous(states), gamma(b.classes);
    beta[states - 1] = 1.0;                          // beta'_{T-1}: the frames after T-1 emit nothing
    if (states > 1) beta[states - 2] = 1.0;
    const double weight = d_loss[n];
    for (int64_t t = u.frames - 1;; --t) {
      const double *a = alpha.data() + t * states;
      std::fill(gamma.begin(), gamma.end(), 0.0);
      double total = 0.0;
      for (int64_t s = 0; s < states; ++s) {
        const double occupancy = a[s] * beta[s];
        gamma[u.labels[s]] += occupancy;
        total += occupancy;
      }
      float *out = grad + (t * b.batch + n) * b.classes;
      if (total > 0.0) {
        const double scale = -weight / total;
        for (int64_t k = 0; k < b.classes; ++k) out[k] = static_cast<float>(gamma[k] * scale);
      }
      if (t == 0) break;
      // beta'_{t-1}(s) = sum over the states s' reachable from s of y_t(l'_s') beta'_t(s'), rescaled
      const double *emit = u.emit.data() + t * states;
      for (int64_t s = 0; s < states; ++s) previous[s] = emit[s] * beta[s];
      double sum = 0.0;
      for (int64_t s = 0; s < states; ++s) {
        double reach = previous[s];
        if (s + 1 < states) reach += previous[s + 1];
        if (s + 2 < states && u.skip[s + 2]) reach += previous[s + 2];
        beta[s] = reach;
        sum += reach;
      }
      if (!(sum > 0.0)) break;
      for (int64_t s = 0; s < states; ++s) beta[s] /= sum;
    }
  });
}
