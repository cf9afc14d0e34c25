// bench.h — `sd bench -m MODEL`: each stage of one image timed on its own (median of several runs),
// with its FLOPs counted from the shapes, GFLOP/s, and the share of the measured fp32 FMA peak.
#pragma once

namespace sd {

struct Options;
int run_bench(const Options& o);

// The machine's fp32 FMA peak with `threads` threads (kernels.h's fma_peak_flops on each, median of five runs): the
// yardstick every throughput figure is quoted against. `wall` is GFLOP/s by the clock; `per_core` is GFLOP per
// CPU-second of one thread, which other processes on a shared machine do not distort.
struct FmaPeak { double wall, per_core; };
FmaPeak measure_fma_peak(int threads);

}  // namespace sd
