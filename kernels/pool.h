// pool.h — a small thread pool on std::thread (no OpenMP).
//
// parallel_for(n, fn) splits [0, n) into one contiguous range per thread (static partitioning) and calls
// fn(begin, end) on each; the caller's thread takes the first range. Kernels split work by outputs, never
// across a reduction, so the result is bit-identical for any thread count. Nested calls run inline.
#pragma once
#include <cstdint>
#include <functional>

namespace sd {

// Number of worker threads used by parallel_for (default: hardware cores). n <= 0 means the default.
void set_num_threads(int n);
int num_threads();

// Calls fn(begin, end) over a static partition of [0, n) into at most num_threads() ranges.
// `grain` is the smallest range worth a thread: fewer threads are used for small n.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

}  // namespace sd
