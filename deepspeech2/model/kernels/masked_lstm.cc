// Masked (bi)directional LSTM recurrence for MindSpore's Custom aot op on CPU (deepspeech2/model/lstm_kernel.py).
//
// The graph computes the input projections G = x W_ih^T for all frames and directions in one MatMul; this
// kernel runs the recurrence, each direction on its own thread or each direction shared by all threads (see
// ShareByUnits), each step's recurrent product with its own small-row GEMM (StepGemm); dW_hh is one product
// with the sgemm of the oneDNN library MindSpore ships. Utterance n has len[n] valid frames: the forward direction
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
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernel_threads.h"

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

// The recurrent products multiply the few rows of one step (one per utterance) by a weight matrix that is
// streamed from cache once per step. Written here with GCC vector types (AVX-512 registers where the CPU has
// them) rather than with oneDNN's sgemm, which is several times slower for these shapes in a process whose
// oneDNN is capped at AVX2 (deepspeech2.core.device: the zoo's convolutions). The weights are repacked once
// per call into panels of kPanelWidth columns, each panel's rows contiguous, so a step streams them in order.
#ifdef __AVX512F__
constexpr int64_t kVectorBytes = 64;
#else
constexpr int64_t kVectorBytes = 32;
#endif
typedef float Vector __attribute__((vector_size(kVectorBytes), aligned(alignof(float))));
constexpr int64_t kLanes = kVectorBytes / sizeof(float);
constexpr int64_t kTileRows = 8, kTileVectors = 2, kPanelWidth = kTileVectors * kLanes;

// B (k, n) as ceil(n / kPanelWidth) panels of (k, kPanelWidth), zero beyond column n.
struct Panels {
  int64_t k = 0, n = 0;
  std::vector<float> data;
};

// element(j, col) gives B[j][col].
template <typename Element>
Panels PackPanels(int64_t k, int64_t n, Element element) {
  Panels p{k, n, std::vector<float>((n + kPanelWidth - 1) / kPanelWidth * kPanelWidth * k, 0.0f)};
  for (int64_t col = 0; col < n; ++col) {
    float *panel = p.data.data() + col / kPanelWidth * kPanelWidth * k + col % kPanelWidth;
    for (int64_t j = 0; j < k; ++j) panel[j * kPanelWidth] = element(j, col);
  }
  return p;
}

// C[0:Rows, 0:cols] = A (Rows, k) times one panel, cols <= kPanelWidth.
template <int64_t Rows>
void GemmTile(int64_t k, const float *a, int64_t lda, const float *panel, float *c, int64_t ldc, int64_t cols) {
  Vector acc[Rows][kTileVectors] = {};
  for (int64_t j = 0; j < k; ++j) {
    Vector w[kTileVectors];
    for (int64_t v = 0; v < kTileVectors; ++v) {
      w[v] = *reinterpret_cast<const Vector *>(panel + j * kPanelWidth + v * kLanes);
    }
    for (int64_t r = 0; r < Rows; ++r) {
      const float x = a[r * lda + j];
      for (int64_t v = 0; v < kTileVectors; ++v) acc[r][v] += x * w[v];
    }
  }
  for (int64_t r = 0; r < Rows; ++r) {
    if (cols == kPanelWidth) {
      for (int64_t v = 0; v < kTileVectors; ++v) *reinterpret_cast<Vector *>(c + r * ldc + v * kLanes) = acc[r][v];
    } else {
      for (int64_t col = 0; col < cols; ++col) c[r * ldc + col] = acc[r][col / kLanes][col % kLanes];
    }
  }
}

template <int64_t... Rows>
void GemmRows(int64_t rows, std::integer_sequence<int64_t, Rows...>, const float *a, int64_t lda, const Panels &b,
              float *c, int64_t ldc) {
  for (int64_t col = 0; col < b.n; col += kPanelWidth) {
    const float *panel = b.data.data() + col * b.k;
    const int64_t cols = std::min(kPanelWidth, b.n - col);
    ((rows == Rows + 1 ? GemmTile<Rows + 1>(b.k, a, lda, panel, c + col, ldc, cols) : void()), ...);
  }
}

// C (m, b.n) = A (m, b.k) B, row-major with leading dimensions lda and ldc.
void StepGemm(int64_t m, const float *a, int64_t lda, const Panels &b, float *c, int64_t ldc) {
  for (int64_t r = 0; r < m; r += kTileRows) {
    GemmRows(std::min(kTileRows, m - r), std::make_integer_sequence<int64_t, kTileRows>(), a + r * lda, lda, b,
             c + r * ldc, ldc);
  }
}

// Elementwise passes over contiguous rows, written so that g++ -O3 -ffast-math vectorises them (expf from
// glibc's libmvec), one exp per gate. The exponent is never positive (e = exp(-|x|) in (0, 1]): under
// -ffast-math an overflowing exp (a saturated gate, |x| > ~88) gives NaN, not 0 or 1. A NaN input stays NaN.
void Sigmoid(float *__restrict y, const float *__restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(-std::fabs(x[i])), s = 1.0f / (1.0f + e);    // sigmoid(|x|)
    y[i] = x[i] >= 0.0f ? s : e * s;                                       // sigmoid(-|x|) = e sigmoid(|x|)
  }
}

void Tanh(float *__restrict y, const float *__restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(-2.0f * std::fabs(x[i]));
    y[i] = std::copysign((1.0f - e) / (1.0f + e), x[i]);                  // tanh(|x|) with x's sign
  }
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

// How one direction's recurrence is shared by `threads` threads: each owns a block of hidden units (all four
// gates of them), computes their columns of every step's recurrent product and their elementwise updates,
// and the threads meet at a barrier once per step (the next step's product needs every unit's h).
struct UnitBlock {
  int64_t first, count;
};

// Blocks are whole cache lines (kUnitAlign floats), so no two threads write the same line of a row.
constexpr int64_t kUnitAlign = 16;

UnitBlock UnitsOf(int64_t thread, int64_t threads, int64_t hidden) {
  const int64_t per = (hidden + threads * kUnitAlign - 1) / (threads * kUnitAlign) * kUnitAlign;
  const int64_t first = std::min(hidden, thread * per);
  return {first, std::min(hidden, first + per) - first};
}

// A reusable spinning barrier for the threads of one team (a step takes microseconds to a millisecond, far
// less than a sleep/wake-up; after kSpinsBeforeYield polls a waiting thread yields its core).
class SpinBarrier {
 public:
  explicit SpinBarrier(int64_t threads) : threads_(threads) {}
  void Wait() {
    const int64_t generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    for (int64_t spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins >= kSpinsBeforeYield) std::this_thread::yield();
    }
  }

 private:
  static constexpr int64_t kSpinsBeforeYield = 1 << 14;
  const int64_t threads_;
  std::atomic<int64_t> arrived_{0}, generation_{0};
};

// Runs fn(thread) on `threads` threads (the first on the calling thread).
template <typename Fn>
void OnThreads(int64_t threads, Fn fn) {
  std::vector<std::thread> workers;
  for (int64_t p = 1; p < threads; ++p) workers.emplace_back([&fn, p] { fn(p); });
  fn(0);
  for (auto &w : workers) w.join();
}

// Direction d's forward recurrence, the units of `block` on this thread (a team of `threads` sharing
// `h_buffers`: two (N, H) planes, step s reads plane s % 2 and writes plane (s + 1) % 2, so one barrier per
// step suffices).
void ForwardUnits(const float *gin, const int32_t *len, const float *w_hh, const float *bias, float *states,
                  const Shape &k, int64_t d, UnitBlock block, float *h_buffers, SpinBarrier &barrier) {
  const int64_t h_size = k.hidden, g_size = 4 * h_size, units = block.count, width = 4 * units;
  // This block's columns of W_hh^T, gate by gate: (H, 4 units).
  const float *w = w_hh + d * g_size * h_size;
  const Panels w_t = PackPanels(h_size, width, [&](int64_t j, int64_t col) {
    return w[((col / units) * h_size + block.first + col % units) * h_size + j];
  });
  const float *b = bias + d * g_size + block.first;
  float *slot[kGateSlots];
  for (int64_t q = 0; q < kGateSlots; ++q) slot[q] = states + SlotOffset(k, d, q);
  std::vector<float> c(k.batch * units, 0.0f), rec(k.batch * width, 0.0f), pre(width);
  const int64_t steps = MaxLength(len, k);
  for (int64_t s = 0; s < steps; ++s) {
    const float *h = h_buffers + (s % 2) * k.batch * h_size;
    float *h_next = h_buffers + ((s + 1) % 2) * k.batch * h_size;
    if (s > 0) StepGemm(k.batch, h, h_size, w_t, rec.data(), width);
    for (int64_t n = 0; n < k.batch && units > 0; ++n) {
      const int64_t valid = ValidLength(len[n], k.frames);
      if (s >= valid) continue;
      const int64_t t = FrameAt(d, s, valid), row = (t * k.batch + n) * h_size + block.first;
      const float *g = gin + (t * k.batch + n) * k.dirs * g_size + d * g_size + block.first;
      const float *r = rec.data() + n * width;
      for (int64_t q = 0; q < 4; ++q) {
        for (int64_t u = 0; u < units; ++u) {
          pre[q * units + u] = g[q * h_size + u] + b[q * h_size + u] + r[q * units + u];
        }
      }
      Sigmoid(slot[kInput] + row, pre.data(), units);
      Sigmoid(slot[kForget] + row, pre.data() + units, units);
      Tanh(slot[kCandidate] + row, pre.data() + 2 * units, units);
      Sigmoid(slot[kOutput] + row, pre.data() + 3 * units, units);
      float *__restrict cell = slot[kCell] + row;
      float *__restrict cn = c.data() + n * units;
      const float *__restrict in_gate = slot[kInput] + row;
      const float *__restrict forget = slot[kForget] + row;
      const float *__restrict cand = slot[kCandidate] + row;
      for (int64_t u = 0; u < units; ++u) cell[u] = cn[u] = forget[u] * cn[u] + in_gate[u] * cand[u];
      float *__restrict hid = slot[kHidden] + row;
      Tanh(hid, cell, units);
      const float *__restrict out_gate = slot[kOutput] + row;
      float *__restrict hn = h_next + n * h_size + block.first;
      for (int64_t u = 0; u < units; ++u) hn[u] = hid[u] = out_gate[u] * hid[u];
    }
    barrier.Wait();
  }
}

// Direction d's backward recurrence, the units of `block` on this thread. `da_buffers`: two (N, 4H) planes
// of dL/d(gate pre-activations), step s writing plane s % 2 (rows of an utterance stay zero until its first,
// i.e. last visited, step, so the recurrent product never carries anything into padding); `dh_rec` (N, H):
// the recurrent part of dL/dh, each thread computing its units' columns from every unit's da.
void BackwardUnits(const float *states, const int32_t *len, const float *w_hh, const float *d_states,
                   float *d_gates, const Shape &k, int64_t d, UnitBlock block, float *da_buffers, float *dh_rec,
                   SpinBarrier &barrier) {
  const int64_t h_size = k.hidden, g_size = 4 * h_size, units = block.count;
  // This block's columns of W_hh: (4H, units).
  const float *w = w_hh + d * g_size * h_size;
  const Panels w_block =
      PackPanels(g_size, units, [&](int64_t r, int64_t u) { return w[r * h_size + block.first + u]; });
  const float *slot[kGateSlots], *d_slot[kGateSlots];
  for (int64_t q = 0; q < kGateSlots; ++q) {
    slot[q] = states + SlotOffset(k, d, q);
    d_slot[q] = d_states + SlotOffset(k, d, q);
  }
  const float *d_sum = d_states;   // slot 0: the summed output
  std::vector<float> dc(k.batch * units, 0.0f), tanh_cell(units), zeros(units, 0.0f);
  for (int64_t s = MaxLength(len, k) - 1; s >= 0; --s) {
    float *da_plane = da_buffers + (s % 2) * k.batch * g_size;
    for (int64_t n = 0; n < k.batch && units > 0; ++n) {
      const int64_t valid = ValidLength(len[n], k.frames);
      if (s >= valid) continue;
      const int64_t t = FrameAt(d, s, valid), row = (t * k.batch + n) * h_size + block.first;
      const int64_t prev_row = s > 0 ? (FrameAt(d, s - 1, valid) * k.batch + n) * h_size + block.first : -1;
      float *__restrict a = da_plane + n * g_size + block.first;
      float *__restrict dcn = dc.data() + n * units;
      const float *__restrict dhn = dh_rec + n * h_size + block.first;
      const float *__restrict in_gate = slot[kInput] + row, *__restrict forget = slot[kForget] + row;
      const float *__restrict cand = slot[kCandidate] + row, *__restrict out_gate = slot[kOutput] + row;
      const float *__restrict cell = slot[kCell] + row;
      const float *__restrict cell_prev = prev_row >= 0 ? slot[kCell] + prev_row : zeros.data();
      const float *__restrict d_out = d_sum + row, *__restrict d_hid = d_slot[kHidden] + row;
      const float *__restrict d_cell = d_slot[kCell] + row, *__restrict d_in = d_slot[kInput] + row;
      const float *__restrict d_forget = d_slot[kForget] + row, *__restrict d_cand = d_slot[kCandidate] + row;
      const float *__restrict d_og = d_slot[kOutput] + row;
      Tanh(tanh_cell.data(), cell, units);
      for (int64_t u = 0; u < units; ++u) {
        const float dh = d_out[u] + d_hid[u] + dhn[u];
        const float tc = tanh_cell[u];
        const float dcell = dcn[u] + d_cell[u] + dh * out_gate[u] * (1.0f - tc * tc);
        a[u] = (dcell * cand[u] + d_in[u]) * in_gate[u] * (1.0f - in_gate[u]);
        a[h_size + u] = (dcell * cell_prev[u] + d_forget[u]) * forget[u] * (1.0f - forget[u]);
        a[2 * h_size + u] = (dcell * in_gate[u] + d_cand[u]) * (1.0f - cand[u] * cand[u]);
        a[3 * h_size + u] = (dh * tc + d_og[u]) * out_gate[u] * (1.0f - out_gate[u]);
        dcn[u] = dcell * forget[u];
      }
      float *out = d_gates + (t * k.batch + n) * k.dirs * g_size + d * g_size + block.first;
      for (int64_t q = 0; q < 4; ++q) std::memcpy(out + q * h_size, a + q * h_size, units * sizeof(float));
    }
    barrier.Wait();
    if (s > 0) StepGemm(k.batch, da_plane, g_size, w_block, dh_rec + block.first, h_size);
  }
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

// Runs fn(d) for every direction (concurrently when the thread budget allows: the first on the calling thread).
template <typename Fn>
void PerDirection(int64_t dirs, Fn fn) {
  if (ds2::KernelThreads(dirs) >= dirs) {
    OnThreads(dirs, fn);
  } else {
    for (int64_t d = 0; d < dirs; ++d) fn(d);
  }
}

// L2 cache of one core when the C library cannot tell (1 MiB: the size on the machines measured).
constexpr int64_t kFallbackL2Bytes = 1 << 20;

// How the recurrence is scheduled (DS2_LSTM_SCHEDULE): "directions" runs each direction on its own thread
// with all its units; "units" runs the directions one after another, each shared by all threads by blocks of
// units; "auto" (default) shares by units when there are more threads than directions or when one
// direction's W_hh (16 H^2 bytes) is larger than a core's L2 cache: two directions' products running at once
// then both stream their weights from L3 or memory (measured at H = 1024 on a 2-core EPYC: sharing 1.8-2.5x
// faster; at H = 256, where each W_hh fits in L2, both the same).
bool ShareByUnits(int64_t threads, const Shape &k) {
  if (threads < 2) return false;
  const char *value = std::getenv("DS2_LSTM_SCHEDULE");
  const std::string schedule = value ? value : "auto";
  if (schedule == "units") return true;
  if (schedule == "directions") return false;
  const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  const int64_t l2_bytes = l2 > 0 ? l2 : kFallbackL2Bytes;
  return threads > k.dirs || 4 * k.hidden * k.hidden * static_cast<int64_t>(sizeof(float)) > l2_bytes;
}

// Runs run(d, block, barrier) for every direction under the schedule above.
template <typename Fn>
void Recurrence(const Shape &k, Fn run) {
  const int64_t threads = ds2::KernelThreads(k.dirs);
  if (ShareByUnits(threads, k)) {
    for (int64_t d = 0; d < k.dirs; ++d) {
      SpinBarrier barrier(threads);
      OnThreads(threads, [&](int64_t p) { run(d, UnitsOf(p, threads, k.hidden), barrier); });
    }
  } else {
    PerDirection(k.dirs, [&](int64_t d) {
      SpinBarrier alone(1);
      run(d, UnitBlock{0, k.hidden}, alone);
    });
  }
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
  for (int64_t d = 0; d < k.dirs; ++d) {
    for (int64_t q = 0; q < kGateSlots; ++q) ZeroPadding(states + SlotOffset(k, d, q), len, k, k.hidden, k.hidden);
  }
  std::vector<float> h_buffers(k.dirs * 2 * k.batch * k.hidden, 0.0f);   // per direction: two (N, H) planes
  Recurrence(k, [&](int64_t d, UnitBlock block, SpinBarrier &barrier) {
    ForwardUnits(gin, len, w_hh, bias, states, k, d, block, h_buffers.data() + d * 2 * k.batch * k.hidden, barrier);
  });
  const int64_t plane = k.frames * k.batch * k.hidden;
  const float *h0 = states + SlotOffset(k, 0, kHidden);
  std::memcpy(states, h0, plane * sizeof(float));
  for (int64_t d = 1; d < k.dirs; ++d) {
    const float *hd = states + SlotOffset(k, d, kHidden);
    for (int64_t i = 0; i < plane; ++i) states[i] += hd[i];
  }
  return kOk;
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
  const int64_t g_size = 4 * k.hidden, da_size = 2 * k.batch * g_size, dh_size = k.batch * k.hidden;
  for (int64_t d = 0; d < k.dirs; ++d) ZeroPadding(d_gates + d * g_size, len, k, g_size, k.dirs * g_size);
  // per direction: two (N, 4H) planes of da and one (N, H) of the recurrent dL/dh
  std::vector<float> da_buffers(k.dirs * da_size, 0.0f), dh_buffers(k.dirs * dh_size, 0.0f);
  Recurrence(k, [&](int64_t d, UnitBlock block, SpinBarrier &barrier) {
    BackwardUnits(states, len, w_hh, d_states, d_gates, k, d, block, da_buffers.data() + d * da_size,
                  dh_buffers.data() + d * dh_size, barrier);
  });
  return kOk;
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
  std::vector<int> codes(k.dirs, kOk);
  PerDirection(k.dirs, [&](int64_t d) { codes[d] = WeightGradDirection(states, d_gates, d_w, k, d); });
  for (int code : codes) {
    if (code != kOk) return code;
  }
  return kOk;
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
