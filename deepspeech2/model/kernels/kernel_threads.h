// How this package's kernels (kernels/*.cc) share work among threads. Included by each; build_library
// (deepspeech2/model/custom_kernels.py) rebuilds a kernel when this header changes too.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace ds2 {

// Threads a kernel may use: DS2_CPU_THREADS (set from train.cpu_threads by deepspeech2.core.device), else
// `fallback` (the cores when it is 0).
inline int64_t KernelThreads(int64_t fallback = 0) {
  const char *value = std::getenv("DS2_CPU_THREADS");
  const long threads = value ? std::strtol(value, nullptr, 10) : 0;
  if (threads > 0) return threads;
  if (fallback > 0) return fallback;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores > 0 ? cores : 1;
}

// Runs fn(thread, first, last) over [0, items) split into `threads` contiguous ranges (the first on the
// calling thread); returns the first non-zero code fn returned, else 0.
template <typename Fn>
int OnRanges(int64_t items, int64_t threads, Fn fn) {
  threads = std::max<int64_t>(1, std::min(threads, items));
  std::vector<int> codes(threads, 0);
  std::vector<std::thread> workers;
  auto run = [&](int64_t p) { codes[p] = fn(p, items * p / threads, items * (p + 1) / threads); };
  for (int64_t p = 1; p < threads; ++p) workers.emplace_back(run, p);
  run(0);
  for (auto &worker : workers) worker.join();
  for (int code : codes) {
    if (code != 0) return code;
  }
  return 0;
}

}  // namespace ds2
