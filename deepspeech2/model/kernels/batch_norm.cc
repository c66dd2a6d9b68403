// Batch normalisation over the rows of a (M, C) matrix (frames x features) for MindSpore's Custom aot op on CPU
// (deepspeech2/model/batch_norm.py). MindSpore 2.10's CPU BatchNorm runs such an input as NCHW with a 1 x 1
// image, one strided pass per channel: ~10 ms forward for the lab's (2664, 256), this kernel's passes stream
// the rows in order. Each output row is multiplied by mask[m] (1 on valid frames, 0 on padding): the network
// zeroes padded frames after the norm anyway, and this saves it a pass.
//
//   BatchNormStats(x (M, C)) -> (2, C): the batch mean and biased variance of each column
//   BatchNormApply(x, stats (2, C), gamma (C,), beta (C,), mask (M,)) -> y (M, C)
//     y = ((x - mean) / sqrt(var + eps) * gamma + beta) * mask      (stats: the batch's, or the moving ones)
//   BatchNormParamGrad(x, stats, dy, mask) -> (2, C): dL/dgamma, dL/dbeta
//   BatchNormInputGrad(x, stats, gamma, dy, mask, param_grads) -> dL/dx (M, C), through the batch statistics
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernel_threads.h"

namespace {

constexpr int kOk = 0;
constexpr int kBadArguments = 1;
constexpr float kEps = 1e-5f;   // nn.BatchNorm1d's default (KernelBatchNorm1d takes no eps)

using ds2::KernelThreads;

// Runs fn(first_row, end_row, part) over `rows` split into contiguous parts, one per kernel thread; returns the
// number of parts.
template <typename Fn>
int64_t OnRowParts(int64_t rows, Fn fn) {
  const int64_t parts = std::max<int64_t>(1, std::min(KernelThreads(1), rows));
  ds2::OnRanges(rows, parts, [&](int64_t p, int64_t first, int64_t end) {
    fn(first, end, p);
    return kOk;
  });
  return parts;
}

bool Float32(int nparam, const char **dtypes) {
  for (int i = 0; i < nparam; ++i) {
    if (std::string(dtypes[i]) != "float32") return false;
  }
  return true;
}

// Two per-column sums accumulated in double by each row part (OnRowParts), then added up over the parts in order.
class ColumnSums {
 public:
  explicit ColumnSums(int64_t c) : c_(c), sums_(std::max<int64_t>(1, KernelThreads(1)) * 2 * c, 0.0) {}
  double *First(int64_t part) { return sums_.data() + part * 2 * c_; }    // (C,)
  double *Second(int64_t part) { return First(part) + c_; }               // (C,)
  // Column j's two totals over `parts` parts.
  std::pair<double, double> Total(int64_t parts, int64_t j) const {
    double first = 0.0, second = 0.0;
    for (int64_t p = 0; p < parts; ++p) {
      first += sums_[p * 2 * c_ + j];
      second += sums_[p * 2 * c_ + c_ + j];
    }
    return {first, second};
  }

 private:
  int64_t c_;
  std::vector<double> sums_;
};

// Every entry point's x is (M, C).
struct Rows {
  int64_t m, c;
};

bool Matrix(int *ndims, int64_t **shapes, int i, int64_t rows, int64_t cols) {
  return ndims[i] == 2 && shapes[i][0] == rows && shapes[i][1] == cols;
}

bool Vector(int *ndims, int64_t **shapes, int i, int64_t size) { return ndims[i] == 1 && shapes[i][0] == size; }

// Per-column mean and 1 / sqrt(var + eps) of stats (2, C).
void MeanAndScale(const float *stats, int64_t c, std::vector<float> *mean, std::vector<float> *rstd) {
  mean->assign(stats, stats + c);
  rstd->resize(c);
  for (int64_t j = 0; j < c; ++j) (*rstd)[j] = 1.0f / std::sqrt(stats[c + j] + kEps);
}

}  // namespace

extern "C" std::vector<int64_t> BatchNormStatsInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {2, shapes[0][1]};
}

extern "C" std::vector<int64_t> BatchNormApplyInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], shapes[0][1]};
}

extern "C" std::vector<int64_t> BatchNormParamGradInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {2, shapes[0][1]};
}

extern "C" std::vector<int64_t> BatchNormInputGradInferShape(int *ndims, int64_t **shapes, void *extra) {
  return {shapes[0][0], shapes[0][1]};
}

// x (M, C) -> (2, C): mean and biased variance, accumulated in double per thread over its rows
extern "C" int BatchNormStats(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                              void *stream, void *extra) {
  if (nparam != 2 || ndims[0] != 2 || !Float32(nparam, dtypes)) return kBadArguments;
  const Rows k{shapes[0][0], shapes[0][1]};
  if (k.m < 1) return kBadArguments;
  const auto *x = static_cast<const float *>(params[0]);
  auto *stats = static_cast<float *>(params[1]);
  ColumnSums sums(k.c);
  const int64_t parts = OnRowParts(k.m, [&](int64_t first, int64_t end, int64_t p) {
    double *sum = sums.First(p), *square = sums.Second(p);
    for (int64_t r = first; r < end; ++r) {
      const float *row = x + r * k.c;
      for (int64_t j = 0; j < k.c; ++j) {
        sum[j] += row[j];
        square[j] += static_cast<double>(row[j]) * row[j];
      }
    }
  });
  for (int64_t j = 0; j < k.c; ++j) {
    const auto [sum, square] = sums.Total(parts, j);
    const double mean = sum / k.m;
    stats[j] = static_cast<float>(mean);
    stats[k.c + j] = static_cast<float>(std::max(0.0, square / k.m - mean * mean));
  }
  return kOk;
}

// (x, stats, gamma, beta, mask) -> y
extern "C" int BatchNormApply(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                              void *stream, void *extra) {
  if (nparam != 6 || ndims[0] != 2 || !Float32(nparam, dtypes)) return kBadArguments;
  const Rows k{shapes[0][0], shapes[0][1]};
  if (!Matrix(ndims, shapes, 1, 2, k.c) || !Vector(ndims, shapes, 2, k.c) || !Vector(ndims, shapes, 3, k.c) ||
      !Vector(ndims, shapes, 4, k.m)) {
    return kBadArguments;
  }
  const auto *x = static_cast<const float *>(params[0]);
  const auto *stats = static_cast<const float *>(params[1]);
  const auto *gamma = static_cast<const float *>(params[2]);
  const auto *beta = static_cast<const float *>(params[3]);
  const auto *mask = static_cast<const float *>(params[4]);
  auto *y = static_cast<float *>(params[5]);
  std::vector<float> mean, rstd, scale(k.c), shift(k.c);
  MeanAndScale(stats, k.c, &mean, &rstd);
  for (int64_t j = 0; j < k.c; ++j) {
    scale[j] = rstd[j] * gamma[j];
    shift[j] = beta[j] - mean[j] * scale[j];
  }
  OnRowParts(k.m, [&](int64_t first, int64_t end, int64_t) {
    for (int64_t r = first; r < end; ++r) {
      const float *in = x + r * k.c;
      float *out = y + r * k.c;
      const float keep = mask[r];
      for (int64_t j = 0; j < k.c; ++j) out[j] = (in[j] * scale[j] + shift[j]) * keep;
    }
  });
  return kOk;
}

// (x, stats, dy, mask) -> (2, C): dL/dgamma = sum over rows of dy * mask * xhat, dL/dbeta = sum of dy * mask
extern "C" int BatchNormParamGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 5 || ndims[0] != 2 || !Float32(nparam, dtypes)) return kBadArguments;
  const Rows k{shapes[0][0], shapes[0][1]};
  if (!Matrix(ndims, shapes, 1, 2, k.c) || !Matrix(ndims, shapes, 2, k.m, k.c) || !Vector(ndims, shapes, 3, k.m)) {
    return kBadArguments;
  }
  const auto *x = static_cast<const float *>(params[0]);
  const auto *stats = static_cast<const float *>(params[1]);
  const auto *dy = static_cast<const float *>(params[2]);
  const auto *mask = static_cast<const float *>(params[3]);
  auto *grads = static_cast<float *>(params[4]);
  std::vector<float> mean, rstd;
  MeanAndScale(stats, k.c, &mean, &rstd);
  ColumnSums sums(k.c);
  const int64_t parts = OnRowParts(k.m, [&](int64_t first, int64_t end, int64_t p) {
    std::vector<float> gamma_part(k.c, 0.0f), beta_part(k.c, 0.0f);   // float sums, flushed to double every 64 rows
    double *d_gamma = sums.First(p), *d_beta = sums.Second(p);
    for (int64_t r = first; r < end; ++r) {
      const float *in = x + r * k.c, *grad = dy + r * k.c;
      const float keep = mask[r];
      if (keep == 0.0f) continue;
      for (int64_t j = 0; j < k.c; ++j) {
        const float g = grad[j] * keep;
        gamma_part[j] += g * (in[j] - mean[j]);
        beta_part[j] += g;
      }
      if ((r - first) % 64 == 63 || r + 1 == end) {   // bound float accumulation error to 64 rows
        for (int64_t j = 0; j < k.c; ++j) {
          d_gamma[j] += gamma_part[j];
          d_beta[j] += beta_part[j];
          gamma_part[j] = beta_part[j] = 0.0f;
        }
      }
    }
    for (int64_t j = 0; j < k.c; ++j) {   // rows skipped at the end (masked) leave partial sums behind
      d_gamma[j] += gamma_part[j];
      d_beta[j] += beta_part[j];
    }
  });
  for (int64_t j = 0; j < k.c; ++j) {
    const auto [d_gamma, d_beta] = sums.Total(parts, j);
    grads[j] = static_cast<float>(d_gamma * rstd[j]);
    grads[k.c + j] = static_cast<float>(d_beta);
  }
  return kOk;
}

// (x, stats, gamma, dy, mask, param_grads) -> dL/dx = gamma * rstd * (dy * mask - (d_beta + xhat * d_gamma) / M)
extern "C" int BatchNormInputGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 7 || ndims[0] != 2 || !Float32(nparam, dtypes)) return kBadArguments;
  const Rows k{shapes[0][0], shapes[0][1]};
  if (!Matrix(ndims, shapes, 1, 2, k.c) || !Vector(ndims, shapes, 2, k.c) || !Matrix(ndims, shapes, 3, k.m, k.c) ||
      !Vector(ndims, shapes, 4, k.m) || !Matrix(ndims, shapes, 5, 2, k.c)) {
    return kBadArguments;
  }
  const auto *x = static_cast<const float *>(params[0]);
  const auto *stats = static_cast<const float *>(params[1]);
  const auto *gamma = static_cast<const float *>(params[2]);
  const auto *dy = static_cast<const float *>(params[3]);
  const auto *mask = static_cast<const float *>(params[4]);
  const auto *grads = static_cast<const float *>(params[5]);
  auto *dx = static_cast<float *>(params[6]);
  std::vector<float> mean, rstd, outer(k.c), slope(k.c), offset(k.c);
  MeanAndScale(stats, k.c, &mean, &rstd);
  for (int64_t j = 0; j < k.c; ++j) {   // dx = outer * dy * mask - slope * (x - mean) - offset
    outer[j] = gamma[j] * rstd[j];
    slope[j] = outer[j] * grads[j] * rstd[j] / k.m;
    offset[j] = outer[j] * grads[k.c + j] / k.m;
  }
  OnRowParts(k.m, [&](int64_t first, int64_t end, int64_t) {
    for (int64_t r = first; r < end; ++r) {
      const float *in = x + r * k.c, *grad = dy + r * k.c;
      float *out = dx + r * k.c;
      const float keep = mask[r];
      for (int64_t j = 0; j < k.c; ++j) out[j] = outer[j] * grad[j] * keep - slope[j] * (in[j] - mean[j]) - offset[j];
    }
  });
  return kOk;
}
