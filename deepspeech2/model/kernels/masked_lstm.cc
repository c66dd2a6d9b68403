// Masked (bi)directional LSTM recurrence for MindSpore's Custom aot op on CPU (deepspeech2/model/lstm_kernel.py).
//
// The graph computes the input projections G = x W_ih^T for all frames and directions in one MatMul; this
// kernel runs the recurrence, each direction on its own thread, each step's recurrent product with the
// sgemm of the oneDNN library MindSpore ships. Utterance n has len[n] valid frames: the forward direction
// visits t = 0 .. len-1, the backward direction t = len-1 .. 0, so neither ever reads padding, and padded
// frames of every output are zero. Gates are torch's (i, f, g, o); D directions, H hidden units.
//
//   MaskedLstmForward(G (T, N, D*4H), len (N,) int32, W_hh (D, 4H, H), bias (D*4H,)) -> S (1 + 6D, T, N, H)
//     S[0] = the sum of the directions' h (the layer's output); S[1 + 6d + q] = direction d's
//     q-th of (i, f, g, o (activated), c, h). One output (a C++ infer function gives its shape, which
//     is what dynamic shapes in GRAPH mode need), sliced only along its first axis.
//   MaskedLstmBackward(S, len, W_hh, dS) -> dL/dG (T, N, D*4H)     (also dL/dbias summed, below)
//   MaskedLstmWeightGrad(S, dL/dG) -> dL/dW_hh (D, 4H, H)
//   MaskedLstmBiasGrad(dL/dG) -> dL/dbias (D*4H,)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

extern "C" int dnnl_sgemm(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha,
                          const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                          int64_t ldc);

namespace {

constexpr int kOk = 0;
constexpr int kBadArguments = 1;
constexpr int kGemmFailed = 2;

struct Shape {
  int64_t frames, batch, dirs, hidden;
};

// The saved states: slot 0 the summed output, then per direction d the slots 1 + 6d + q, each (T, N, H).
enum GateSlot { kInput, kForget, kCandidate, kOutput, kCell, kHidden, kGateSlots };

inline int64_t SlotOffset(const Shape &k, int64_t d, int64_t q) {
  return (1 + d * kGateSlots + q) * k.frames * k.batch * k.hidden;
}

// Elementwise passes over contiguous rows, written so that g++ -O3 -ffast-math vectorises them (expf from
// glibc's libmvec); tanh(x) = 2 sigmoid(2x) - 1, so each gate costs one exp.
void Sigmoid(float *__restrict y, const float *__restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void Tanh(float *__restrict y, const float *__restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 2.0f / (1.0f + std::exp(-2.0f * x[i])) - 1.0f;
}

// Frame of utterance n (len valid frames) that direction d visits at step s.
inline int64_t FrameAt(int64_t d, int64_t s, int64_t len) { return d == 0 ? s : len - 1 - s; }

inline int64_t ValidLength(int32_t len, int64_t frames) {
  return std::min<int64_t>(std::max<int32_t>(len, 0), frames);
}

int64_t MaxLength(const int32_t *len, const Shape &k) {
  int64_t longest = 0;
  for (int64_t n = 0; n < k.batch; ++n) longest = std::max(longest, ValidLength(len[n], k.frames));
  return longest;
}

// Zero `width` floats of every padded frame in a (T, N, ...) tensor whose (t, n) rows are `stride` floats
// apart (a (T, N, H) slot: width = stride = H).
void ZeroPadding(float *out, const int32_t *len, const Shape &k, int64_t width, int64_t stride) {
  for (int64_t n = 0; n < k.batch; ++n) {
    for (int64_t t = ValidLength(len[n], k.frames); t < k.frames; ++t) {
      std::memset(out + (t * k.batch + n) * stride, 0, width * sizeof(float));
    }
  }
}

int ForwardDirection(const float *gin, const int32_t *len, const float *w_hh, const float *bias, float *states,
                     const Shape &k, int64_t d) {
  const int64_t h_size = k.hidden, g_size = 4 * h_size;
  // W_hh of direction d transposed to (H, 4H): sgemm's non-transposed B streams it row by row, twice as
  // fast as reading (4H, H) transposed for the few rows (one per utterance) of each step.
  const float *w = w_hh + d * g_size * h_size;
  std::vector<float> w_t(h_size * g_size);
  for (int64_t r = 0; r < g_size; ++r) {
    for (int64_t j = 0; j < h_size; ++j) w_t[j * g_size + r] = w[r * h_size + j];
  }
  const float *b = bias + d * g_size;
  float *slot[kGateSlots];
  for (int64_t q = 0; q < kGateSlots; ++q) slot[q] = states + SlotOffset(k, d, q);
  std::vector<float> h(k.batch * h_size, 0.0f), c(k.batch * h_size, 0.0f), rec(k.batch * g_size, 0.0f);
  std::vector<float> act(g_size);
  for (int64_t q = 0; q < kGateSlots; ++q) ZeroPadding(slot[q], len, k, h_size, h_size);
  const int64_t steps = MaxLength(len, k);
  for (int64_t s = 0; s < steps; ++s) {
    if (s > 0 && dnnl_sgemm('N', 'N', k.batch, g_size, h_size, 1.0f, h.data(), h_size, w_t.data(), g_size,
                            0.0f, rec.data(), g_size) != 0) {
      return kGemmFailed;
    }
    for (int64_t n = 0; n < k.batch; ++n) {
      const int64_t valid = ValidLength(len[n], k.frames);
      if (s >= valid) continue;
      const int64_t t = FrameAt(d, s, valid), row = (t * k.batch + n) * h_size;
      const float *g = gin + (t * k.batch + n) * k.dirs * g_size + d * g_size;
      const float *r = rec.data() + n * g_size;
      float *__restrict pre = act.data();
      for (int64_t j = 0; j < g_size; ++j) pre[j] = g[j] + b[j] + r[j];
      Sigmoid(slot[kInput] + row, pre, h_size);
      Sigmoid(slot[kForget] + row, pre + h_size, h_size);
      Tanh(slot[kCandidate] + row, pre + 2 * h_size, h_size);
      Sigmoid(slot[kOutput] + row, pre + 3 * h_size, h_size);
      float *__restrict cell = slot[kCell] + row;
      float *__restrict cn = c.data() + n * h_size;
      const float *__restrict in_gate = slot[kInput] + row;
      const float *__restrict forget = slot[kForget] + row;
      const float *__restrict cand = slot[kCandidate] + row;
      for (int64_t j = 0; j < h_size; ++j) cell[j] = cn[j] = forget[j] * cn[j] + in_gate[j] * cand[j];
      float *__restrict hid = slot[kHidden] + row;
      Tanh(hid, cell, h_size);
      const float *__restrict out_gate = slot[kOutput] + row;
      float *__restrict hn = h.data() + n * h_size;
      for (int64_t j = 0; j < h_size; ++j) hn[j] = hid[j] = out_gate[j] * hid[j];
    }
  }
  return kOk;
}

int BackwardDirection(const float *states, const int32_t *len, const float *w_hh, const float *d_states,
                      float *d_gates, const Shape &k, int64_t d) {
  const int64_t h_size = k.hidden, g_size = 4 * h_size;
  const float *w = w_hh + d * g_size * h_size;
  const float *slot[kGateSlots], *d_slot[kGateSlots];
  for (int64_t q = 0; q < kGateSlots; ++q) {
    slot[q] = states + SlotOffset(k, d, q);
    d_slot[q] = d_states + SlotOffset(k, d, q);
  }
  const float *d_sum = d_states;   // slot 0: the summed output
  // da rows of an utterance stay zero until its first (i.e. last visited) step, so the recurrent product
  // never carries anything into padding.
  std::vector<float> dh_rec(k.batch * h_size, 0.0f), dc(k.batch * h_size, 0.0f), da(k.batch * g_size, 0.0f);
  std::vector<float> act(h_size), zeros(h_size, 0.0f);
  ZeroPadding(d_gates + d * g_size, len, k, g_size, k.dirs * g_size);
  for (int64_t s = MaxLength(len, k) - 1; s >= 0; --s) {
    for (int64_t n = 0; n < k.batch; ++n) {
      const int64_t valid = ValidLength(len[n], k.frames);
      if (s >= valid) continue;
      const int64_t t = FrameAt(d, s, valid), row = (t * k.batch + n) * h_size;
      const int64_t prev_row = s > 0 ? (FrameAt(d, s - 1, valid) * k.batch + n) * h_size : -1;
      float *__restrict a = da.data() + n * g_size;
      float *__restrict dcn = dc.data() + n * h_size;
      float *__restrict tanh_cell = act.data();
      const float *__restrict dhn = dh_rec.data() + n * h_size;
      const float *__restrict in_gate = slot[kInput] + row, *__restrict forget = slot[kForget] + row;
      const float *__restrict cand = slot[kCandidate] + row, *__restrict out_gate = slot[kOutput] + row;
      const float *__restrict cell = slot[kCell] + row;
      const float *__restrict cell_prev = prev_row >= 0 ? slot[kCell] + prev_row : zeros.data();
      const float *__restrict d_out = d_sum + row, *__restrict d_hid = d_slot[kHidden] + row;
      const float *__restrict d_cell = d_slot[kCell] + row, *__restrict d_in = d_slot[kInput] + row;
      const float *__restrict d_forget = d_slot[kForget] + row, *__restrict d_cand = d_slot[kCandidate] + row;
      const float *__restrict d_og = d_slot[kOutput] + row;
      Tanh(tanh_cell, cell, h_size);
      for (int64_t j = 0; j < h_size; ++j) {
        const float dh = d_out[j] + d_hid[j] + dhn[j];
        const float dcell = dcn[j] + d_cell[j] + dh * out_gate[j] * (1.0f - tanh_cell[j] * tanh_cell[j]);
        a[j] = (dcell * cand[j] + d_in[j]) * in_gate[j] * (1.0f - in_gate[j]);
        a[h_size + j] = (dcell * cell_prev[j] + d_forget[j]) * forget[j] * (1.0f - forget[j]);
        a[2 * h_size + j] = (dcell * in_gate[j] + d_cand[j]) * (1.0f - cand[j] * cand[j]);
        a[3 * h_size + j] = (dh * tanh_cell[j] + d_og[j]) * out_gate[j] * (1.0f - out_gate[j]);
        dcn[j] = dcell * forget[j];
      }
      std::memcpy(d_gates + (t * k.batch + n) * k.dirs * g_size + d * g_size, a, g_size * sizeof(float));
    }
    if (s > 0 && dnnl_sgemm('N', 'N', k.batch, h_size, g_size, 1.0f, da.data(), g_size, w, h_size, 0.0f,
                            dh_rec.data(), h_size) != 0) {
      return kGemmFailed;
    }
  }
  return kOk;
}

// dW_hh of direction d = sum over frames of dL/dG(t)^T h(previous step): the forward direction's previous
// step of frame t is t - 1, the backward direction's t + 1 (h is zero on padding, and dL/dG is zero there,
// so one product over the shifted rows covers every utterance).
int WeightGradDirection(const float *states, const float *d_gates, float *d_w, const Shape &k, int64_t d) {
  const int64_t h_size = k.hidden, g_size = 4 * h_size, rows = (k.frames - 1) * k.batch;
  float *out = d_w + d * g_size * h_size;
  if (rows <= 0) {
    std::memset(out, 0, g_size * h_size * sizeof(float));
    return kOk;
  }
  const float *hidden = states + SlotOffset(k, d, kHidden);
  const float *grads = d_gates + d * g_size;
  const int64_t shift = k.batch;   // one frame
  const float *a = d == 0 ? grads + shift * k.dirs * g_size : grads;
  const float *h_prev = d == 0 ? hidden : hidden + shift * h_size;
  return dnnl_sgemm('T', 'N', g_size, h_size, rows, 1.0f, a, k.dirs * g_size, h_prev, h_size, 0.0f, out,
                    h_size) == 0 ? kOk : kGemmFailed;
}

// Threads this kernel may use: DS2_CPU_THREADS (set from train.cpu_threads by deepspeech2.core.device), else
// one per direction.
int64_t KernelThreads(int64_t dirs) {
  const char *value = std::getenv("DS2_CPU_THREADS");
  const long threads = value ? std::strtol(value, nullptr, 10) : 0;
  return threads > 0 ? threads : dirs;
}

// Runs fn(d) for every direction (concurrently when the thread budget allows: the first on the calling
// thread) and returns the first non-zero code.
template <typename Fn>
int PerDirection(int64_t dirs, Fn fn) {
  std::vector<int> codes(dirs, kOk);
  const bool concurrent = KernelThreads(dirs) >= dirs;
  std::vector<std::thread> workers;
  for (int64_t d = 1; d < dirs && concurrent; ++d) workers.emplace_back([&codes, &fn, d] { codes[d] = fn(d); });
  for (int64_t d = 0; d < (concurrent ? 1 : dirs); ++d) codes[d] = fn(d);
  for (auto &w : workers) w.join();
  for (int code : codes) {
    if (code != kOk) return code;
  }
  return kOk;
}

bool IsFloat(const char *dtype) { return std::strcmp(dtype, "float32") == 0 || std::strcmp(dtype, "float") == 0; }

bool IsInt32(const char *dtype) { return std::strcmp(dtype, "int32") == 0 || std::strcmp(dtype, "int") == 0; }

// The nparam tensors are float32 but the lengths at `lengths_index` (int32; -1: none).
bool DtypesOk(int nparam, const char **dtypes, int lengths_index) {
  for (int i = 0; i < nparam; ++i) {
    if (!(i == lengths_index ? IsInt32(dtypes[i]) : IsFloat(dtypes[i]))) return false;
  }
  return true;
}

}  // namespace

extern "C" std::vector<int64_t> MaskedLstmForwardInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {1 + kGateSlots * shapes[2][0], shapes[0][0], shapes[0][1], shapes[2][2]};
}

extern "C" std::vector<int64_t> MaskedLstmBackwardInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][1], shapes[0][2], (shapes[0][0] - 1) / kGateSlots * 4 * shapes[0][3]};
}

extern "C" std::vector<int64_t> MaskedLstmWeightGradInferShape(int *ndims, int64_t **shapes, void *extra) {
  const int64_t dirs = (shapes[0][0] - 1) / kGateSlots, hidden = shapes[0][3];
  return {dirs, 4 * hidden, hidden};
}

extern "C" std::vector<int64_t> MaskedLstmBiasGradInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][2]};
}

// (G (T, N, D*4H), len (N,), W_hh (D, 4H, H), bias (D*4H,)) -> states (1 + 6D, T, N, H)
extern "C" int MaskedLstmForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *stream, void *extra) {
  if (nparam != 5 || ndims[0] != 3 || ndims[1] != 1 || ndims[2] != 3 || ndims[3] != 1 || ndims[4] != 4) {
    return kBadArguments;
  }
  if (!DtypesOk(nparam, dtypes, 1)) return kBadArguments;
  const Shape k{shapes[0][0], shapes[0][1], shapes[2][0], shapes[2][2]};
  if (shapes[0][2] != k.dirs * 4 * k.hidden || shapes[2][1] != 4 * k.hidden || shapes[1][0] != k.batch ||
      shapes[3][0] != k.dirs * 4 * k.hidden) {
    return kBadArguments;
  }
  const auto *gin = static_cast<const float *>(params[0]);
  const auto *len = static_cast<const int32_t *>(params[1]);
  const auto *w_hh = static_cast<const float *>(params[2]);
  const auto *bias = static_cast<const float *>(params[3]);
  auto *states = static_cast<float *>(params[4]);
  const int code =
      PerDirection(k.dirs, [&](int64_t d) { return ForwardDirection(gin, len, w_hh, bias, states, k, d); });
  const int64_t plane = k.frames * k.batch * k.hidden;
  const float *h0 = states + SlotOffset(k, 0, kHidden);
  std::memcpy(states, h0, plane * sizeof(float));
  for (int64_t d = 1; d < k.dirs; ++d) {
    const float *hd = states + SlotOffset(k, d, kHidden);
    for (int64_t i = 0; i < plane; ++i) states[i] += hd[i];
  }
  return code;
}

// (states, len, W_hh, d_states) -> dL/dG (T, N, D*4H), zero on padded frames
extern "C" int MaskedLstmBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 5 || ndims[0] != 4 || ndims[1] != 1 || ndims[2] != 3 || ndims[3] != 4 || ndims[4] != 3) {
    return kBadArguments;
  }
  if (!DtypesOk(nparam, dtypes, 1)) return kBadArguments;
  const Shape k{shapes[0][1], shapes[0][2], shapes[2][0], shapes[0][3]};
  if (shapes[0][0] != 1 + kGateSlots * k.dirs || shapes[2][2] != k.hidden || shapes[1][0] != k.batch) {
    return kBadArguments;
  }
  const auto *states = static_cast<const float *>(params[0]);
  const auto *len = static_cast<const int32_t *>(params[1]);
  const auto *w_hh = static_cast<const float *>(params[2]);
  const auto *d_states = static_cast<const float *>(params[3]);
  auto *d_gates = static_cast<float *>(params[4]);
  return PerDirection(k.dirs,
                      [&](int64_t d) { return BackwardDirection(states, len, w_hh, d_states, d_gates, k, d); });
}

// (states, dL/dG) -> dL/dW_hh (D, 4H, H)
extern "C" int MaskedLstmWeightGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                    void *stream, void *extra) {
  if (nparam != 3 || ndims[0] != 4 || ndims[1] != 3 || ndims[2] != 3 || !DtypesOk(nparam, dtypes, -1)) {
    return kBadArguments;
  }
  const Shape k{shapes[0][1], shapes[0][2], (shapes[0][0] - 1) / kGateSlots, shapes[0][3]};
  if (shapes[1][0] != k.frames || shapes[1][1] != k.batch || shapes[1][2] != k.dirs * 4 * k.hidden) {
    return kBadArguments;
  }
  const auto *states = static_cast<const float *>(params[0]);
  const auto *d_gates = static_cast<const float *>(params[1]);
  auto *d_w = static_cast<float *>(params[2]);
  return PerDirection(k.dirs, [&](int64_t d) { return WeightGradDirection(states, d_gates, d_w, k, d); });
}

// dL/dG (T, N, G) -> its sum over frames and utterances (G,): the bias gradient
extern "C" int MaskedLstmBiasGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 2 || ndims[0] != 3 || ndims[1] != 1 || !DtypesOk(nparam, dtypes, -1)) return kBadArguments;
  const int64_t rows = shapes[0][0] * shapes[0][1], width = shapes[0][2];
  const auto *d_gates = static_cast<const float *>(params[0]);
  auto *d_bias = static_cast<float *>(params[1]);
  std::fill(d_bias, d_bias + width, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float *row = d_gates + r * width;
    for (int64_t j = 0; j < width; ++j) d_bias[j] += row[j];
  }
  return kOk;
}
