// Dense 2-D convolution (NCHW, no groups, no bias) for MindSpore's Custom aot op on CPU
// (deepspeech2/model/conv.py): forward, gradient of the input, gradient of the weight.
//
// Why: MindSpore 2.10's oneDNN takes its reference kernels for fp32 convolutions on AVX-512 CPUs, so a model
// with oneDNN convs caps oneDNN at AVX2 (deepspeech2.core.device), which halves every other GEMM too; and its
// conv primitives keep gigabytes of scratch for the model zoo's 41x11 / 21x11 kernels. Here every pass is a
// series of GEMMs (the sgemm of the oneDNN library MindSpore ships) over one output row at a time, so the
// scratch is one row's worth of patches, the saved activations are the input alone, and oneDNN needs no cap.
//
// The stride and padding are compile-time constants (-DDS2_STRIDE_H=.. -DDS2_STRIDE_W=.. -DDS2_PAD_TOP=..
// -DDS2_PAD_BOTTOM=.. -DDS2_PAD_LEFT=.. -DDS2_PAD_RIGHT=..; one library per geometry): the C++ infer functions,
// which see only shapes, need them to give the output's shape.
//
// Output row ho reads input rows r = ho*SH + i - PT, i < KH. Its patch panel P holds those rows of every input
// channel, zero-padded in time: (C*KH, WP) with WP = W + PL + PR. With time stride 1 the column j of the
// kernel sees P shifted by j columns, a strided view of P, so
//   Y[:, ho, :] = sum_j W_j P[:, j : j + WO]        W_j = weight[:, :, :, j] as (CO, C*KH)
// and no patch is ever copied more than once. With a time stride (SW > 1), P is expanded into the classic
// im2col matrix of the row, (C*KH*KW, WO), and one product with the weight as (CO, C*KH*KW) gives the row.
//
//   Conv2dForward(X (N, C, H, W), Wt (CO, C, KH, KW)) -> Y (N, CO, HO, WO)
//   Conv2dInputGrad(X, Wt, dY) -> dX (N, C, H, W)          (X for its shape only)
//   Conv2dWeightGrad(X, Wt, dY) -> dWt (CO, C, KH, KW)      (Wt for its shape only)
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <thread>
#include <vector>

#include "kernel_threads.h"

#if !defined(DS2_STRIDE_H) || !defined(DS2_STRIDE_W) || !defined(DS2_PAD_TOP) || !defined(DS2_PAD_BOTTOM) || \
    !defined(DS2_PAD_LEFT) || !defined(DS2_PAD_RIGHT)
#error "build with -DDS2_STRIDE_H/W and -DDS2_PAD_TOP/BOTTOM/LEFT/RIGHT (deepspeech2/model/conv.py)"
#endif

extern "C" int dnnl_sgemm(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha,
                          const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                          int64_t ldc);

namespace {

constexpr int64_t kSh = DS2_STRIDE_H, kSw = DS2_STRIDE_W;
constexpr int64_t kPt = DS2_PAD_TOP, kPb = DS2_PAD_BOTTOM, kPl = DS2_PAD_LEFT, kPr = DS2_PAD_RIGHT;
static_assert(kSh >= 1 && kSw >= 1 && kPt >= 0 && kPb >= 0 && kPl >= 0 && kPr >= 0, "bad conv geometry");
constexpr bool kShifted = kSw == 1;   // the kernel's columns are shifted views of one panel

constexpr int kOk = 0;
constexpr int kBadArguments = 1;
constexpr int kGemmFailed = 2;

struct Geometry {
  int64_t n, c, h, w, co, kh, kw, ho, wo, wp;
  int64_t rows() const { return c * kh; }             // rows of a patch panel
  int64_t taps() const { return c * kh * kw; }        // rows of an im2col row matrix
  int64_t panel_cols() const { return kShifted ? wp : wo; }
  int64_t panel_rows() const { return kShifted ? rows() : taps(); }
};

inline int64_t OutSize(int64_t in, int64_t pad, int64_t kernel, int64_t stride) {
  return (in + pad - kernel) / stride + 1;
}

bool MakeGeometry(const int64_t *x, const int64_t *wt, Geometry *g) {
  *g = Geometry{x[0], x[1], x[2], x[3], wt[0], wt[2], wt[3], 0, 0, 0};
  if (wt[1] != g->c || g->h + kPt + kPb < g->kh || g->w + kPl + kPr < g->kw) return false;
  g->ho = OutSize(g->h, kPt + kPb, g->kh, kSh);
  g->wo = OutSize(g->w, kPl + kPr, g->kw, kSw);
  g->wp = g->w + kPl + kPr;
  return true;
}

// The patch panel of output row `ho` of utterance `n`: (C*KH, WP) with zero padding, or, with a time stride,
// its im2col expansion (C*KH*KW, WO) whose rows are ordered (c, i, j) like the weight's columns.
void PackPanel(const float *x, const Geometry &g, int64_t n, int64_t ho, float *panel) {
  const float *xn = x + n * g.c * g.h * g.w;
  for (int64_t c = 0; c < g.c; ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t r = ho * kSh + i - kPt;
      const bool inside = r >= 0 && r < g.h;
      const float *src = xn + (c * g.h + (inside ? r : 0)) * g.w;
      if (kShifted) {
        float *dst = panel + (c * g.kh + i) * g.wp;
        if (!inside) {
          std::fill(dst, dst + g.wp, 0.0f);
          continue;
        }
        std::fill(dst, dst + kPl, 0.0f);
        std::memcpy(dst + kPl, src, g.w * sizeof(float));
        std::fill(dst + kPl + g.w, dst + g.wp, 0.0f);
      } else {
        for (int64_t j = 0; j < g.kw; ++j) {
          float *dst = panel + ((c * g.kh + i) * g.kw + j) * g.wo;
          for (int64_t o = 0; o < g.wo; ++o) {
            const int64_t col = o * kSw + j - kPl;
            dst[o] = inside && col >= 0 && col < g.w ? src[col] : 0.0f;
          }
        }
      }
    }
  }
}

// The panel's gradient added into dX (the inverse of PackPanel; padding dropped).
void UnpackPanel(const float *panel, const Geometry &g, int64_t n, int64_t ho, float *dx) {
  float *dxn = dx + n * g.c * g.h * g.w;
  for (int64_t c = 0; c < g.c; ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t r = ho * kSh + i - kPt;
      if (r < 0 || r >= g.h) continue;
      float *dst = dxn + (c * g.h + r) * g.w;
      if (kShifted) {
        const float *src = panel + (c * g.kh + i) * g.wp + kPl;
        for (int64_t col = 0; col < g.w; ++col) dst[col] += src[col];
      } else {
        for (int64_t j = 0; j < g.kw; ++j) {
          const float *src = panel + ((c * g.kh + i) * g.kw + j) * g.wo;
          for (int64_t o = 0; o < g.wo; ++o) {
            const int64_t col = o * kSw + j - kPl;
            if (col >= 0 && col < g.w) dst[col] += src[o];
          }
        }
      }
    }
  }
}

// The weight as the products need it: shifted panels take one (CO, C*KH) block per kernel column j
// (W_j[co][c*KH + i] = weight[co][c][i][j]); the im2col form takes the weight as it is, (CO, C*KH*KW).
std::vector<float> PackWeight(const float *wt, const Geometry &g) {
  if (!kShifted) return std::vector<float>(wt, wt + g.co * g.taps());
  std::vector<float> blocks(g.kw * g.co * g.rows());
  for (int64_t co = 0; co < g.co; ++co) {
    for (int64_t r = 0; r < g.rows(); ++r) {
      for (int64_t j = 0; j < g.kw; ++j) blocks[(j * g.co + co) * g.rows() + r] = wt[(co * g.rows() + r) * g.kw + j];
    }
  }
  return blocks;
}

// The inverse of PackWeight for a gradient.
void UnpackWeight(const float *blocks, const Geometry &g, float *d_wt) {
  if (!kShifted) {
    std::memcpy(d_wt, blocks, g.co * g.taps() * sizeof(float));
    return;
  }
  for (int64_t co = 0; co < g.co; ++co) {
    for (int64_t r = 0; r < g.rows(); ++r) {
      for (int64_t j = 0; j < g.kw; ++j) d_wt[(co * g.rows() + r) * g.kw + j] = blocks[(j * g.co + co) * g.rows() + r];
    }
  }
}

using ds2::KernelThreads;
using ds2::OnRanges;

inline int Gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                int64_t ldb, float beta, float *c, int64_t ldc) {
  return dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc) == 0 ? kOk : kGemmFailed;
}

// Y[n][:, ho, :] for the rows (n, ho) in [first, last) of N*HO.
int ForwardRows(const float *x, const std::vector<float> &weight, const Geometry &g, int64_t first, int64_t last,
                float *y) {
  std::vector<float> panel(g.panel_rows() * g.panel_cols());
  const int64_t ldy = g.ho * g.wo;
  for (int64_t item = first; item < last; ++item) {
    const int64_t n = item / g.ho, ho = item % g.ho;
    PackPanel(x, g, n, ho, panel.data());
    float *out = y + n * g.co * ldy + ho * g.wo;
    if (!kShifted) {
      if (Gemm('N', 'N', g.co, g.wo, g.taps(), weight.data(), g.taps(), panel.data(), g.wo, 0.0f, out, ldy)) {
        return kGemmFailed;
      }
      continue;
    }
    for (int64_t j = 0; j < g.kw; ++j) {
      if (Gemm('N', 'N', g.co, g.wo, g.rows(), weight.data() + j * g.co * g.rows(), g.rows(), panel.data() + j,
               g.wp, j == 0 ? 0.0f : 1.0f, out, ldy)) {
        return kGemmFailed;
      }
    }
  }
  return kOk;
}

// dX of the utterances [first, last): each row's panel gradient W^T dY[n][:, ho, :], added into its input rows.
int InputGradUtterances(const std::vector<float> &weight, const float *dy, const Geometry &g, int64_t first,
                        int64_t last, float *dx) {
  std::vector<float> panel(g.panel_rows() * g.panel_cols());
  const int64_t ldy = g.ho * g.wo;
  std::fill(dx + first * g.c * g.h * g.w, dx + last * g.c * g.h * g.w, 0.0f);
  for (int64_t n = first; n < last; ++n) {
    for (int64_t ho = 0; ho < g.ho; ++ho) {
      const float *grad = dy + n * g.co * ldy + ho * g.wo;
      if (!kShifted) {
        if (Gemm('T', 'N', g.taps(), g.wo, g.co, weight.data(), g.taps(), grad, ldy, 0.0f, panel.data(), g.wo)) {
          return kGemmFailed;
        }
      } else {
        std::fill(panel.begin(), panel.end(), 0.0f);
        for (int64_t j = 0; j < g.kw; ++j) {
          if (Gemm('T', 'N', g.rows(), g.wo, g.co, weight.data() + j * g.co * g.rows(), g.rows(), grad, ldy, 1.0f,
                   panel.data() + j, g.wp)) {
            return kGemmFailed;
          }
        }
      }
      UnpackPanel(panel.data(), g, n, ho, dx);
    }
  }
  return kOk;
}

// This thread's share of dWt (in PackWeight's layout) over the rows (n, ho) in [first, last).
int WeightGradRows(const float *x, const float *dy, const Geometry &g, int64_t first, int64_t last,
                   float *blocks) {
  std::vector<float> panel(g.panel_rows() * g.panel_cols());
  const int64_t ldy = g.ho * g.wo;
  for (int64_t item = first; item < last; ++item) {
    const int64_t n = item / g.ho, ho = item % g.ho;
    PackPanel(x, g, n, ho, panel.data());
    const float *grad = dy + n * g.co * ldy + ho * g.wo;
    const float beta = item == first ? 0.0f : 1.0f;
    if (!kShifted) {
      if (Gemm('N', 'T', g.co, g.taps(), g.wo, grad, ldy, panel.data(), g.wo, beta, blocks, g.taps())) {
        return kGemmFailed;
      }
      continue;
    }
    for (int64_t j = 0; j < g.kw; ++j) {
      if (Gemm('N', 'T', g.co, g.rows(), g.wo, grad, ldy, panel.data() + j, g.wp, beta,
               blocks + j * g.co * g.rows(), g.rows())) {
        return kGemmFailed;
      }
    }
  }
  return kOk;
}

bool IsFloat(const char *dtype) { return std::strcmp(dtype, "float32") == 0 || std::strcmp(dtype, "float") == 0; }

// nparam tensors, all float32 and 4-D, whose first two describe a valid convolution.
bool Valid(int nparam, int expected, int *ndims, int64_t **shapes, const char **dtypes, Geometry *g) {
  if (nparam != expected) return false;
  for (int i = 0; i < nparam; ++i) {
    if (ndims[i] != 4 || !IsFloat(dtypes[i])) return false;
  }
  return MakeGeometry(shapes[0], shapes[1], g);
}

bool SameShape(const int64_t *shape, std::initializer_list<int64_t> want) {
  int64_t i = 0;
  for (int64_t size : want) {
    if (shape[i++] != size) return false;
  }
  return true;
}

// The gradient functions' arguments (X, Wt, dY, out): a valid convolution and dY shaped like its output (the
// caller checks its own output's shape).
bool ValidGradient(int nparam, int *ndims, int64_t **shapes, const char **dtypes, Geometry *g) {
  return Valid(nparam, 4, ndims, shapes, dtypes, g) && SameShape(shapes[2], {g->n, g->co, g->ho, g->wo});
}

}  // namespace

// A dimension unknown while a dynamic-shape graph compiles is negative; so is the output's that depends on it.
extern "C" std::vector<int64_t> Conv2dForwardInferShape(int *ndims, int64_t **shapes, void *extra) {
  const int64_t *x = shapes[0], *wt = shapes[1];
  const int64_t ho = x[2] < 0 ? -1 : std::max<int64_t>(0, OutSize(x[2], kPt + kPb, wt[2], kSh));
  const int64_t wo = x[3] < 0 ? -1 : std::max<int64_t>(0, OutSize(x[3], kPl + kPr, wt[3], kSw));
  return {x[0], wt[0], ho, wo};
}

extern "C" std::vector<int64_t> Conv2dInputGradInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], shapes[0][1], shapes[0][2], shapes[0][3]};
}

extern "C" std::vector<int64_t> Conv2dWeightGradInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[1][0], shapes[1][1], shapes[1][2], shapes[1][3]};
}

// (X, Wt) -> Y
extern "C" int Conv2dForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  Geometry g;
  if (!Valid(nparam, 3, ndims, shapes, dtypes, &g) || !SameShape(shapes[2], {g.n, g.co, g.ho, g.wo})) {
    return kBadArguments;
  }
  const auto *x = static_cast<const float *>(params[0]);
  const std::vector<float> weight = PackWeight(static_cast<const float *>(params[1]), g);
  auto *y = static_cast<float *>(params[2]);
  return OnRanges(g.n * g.ho, KernelThreads(), [&](int64_t, int64_t first, int64_t last) {
    return ForwardRows(x, weight, g, first, last, y);
  });
}

// (X, Wt, dY) -> dX
extern "C" int Conv2dInputGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  Geometry g;
  if (!ValidGradient(nparam, ndims, shapes, dtypes, &g) || !SameShape(shapes[3], {g.n, g.c, g.h, g.w})) {
    return kBadArguments;
  }
  const std::vector<float> weight = PackWeight(static_cast<const float *>(params[1]), g);
  const auto *dy = static_cast<const float *>(params[2]);
  auto *dx = static_cast<float *>(params[3]);
  // utterances apart: the rows of one utterance add into overlapping input rows
  return OnRanges(g.n, KernelThreads(), [&](int64_t, int64_t first, int64_t last) {
    return InputGradUtterances(weight, dy, g, first, last, dx);
  });
}

// (X, Wt, dY) -> dWt
extern "C" int Conv2dWeightGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  Geometry g;
  if (!ValidGradient(nparam, ndims, shapes, dtypes, &g) || !SameShape(shapes[3], {g.co, g.c, g.kh, g.kw})) {
    return kBadArguments;
  }
  const auto *x = static_cast<const float *>(params[0]);
  const auto *dy = static_cast<const float *>(params[2]);
  auto *d_wt = static_cast<float *>(params[3]);
  const int64_t size = g.co * g.taps(), items = g.n * g.ho;
  const int64_t threads = std::max<int64_t>(1, std::min(KernelThreads(), items));
  std::vector<float> partial(threads * size, 0.0f);   // one accumulator per thread, summed below
  const int code = OnRanges(items, threads, [&](int64_t p, int64_t first, int64_t last) {
    return WeightGradRows(x, dy, g, first, last, partial.data() + p * size);
  });
  if (code != kOk) return code;
  for (int64_t p = 1; p < threads; ++p) {
    const float *part = partial.data() + p * size;
    for (int64_t i = 0; i < size; ++i) partial[i] += part[i];
  }
  UnpackWeight(partial.data(), g, d_wt);
  return kOk;
}
