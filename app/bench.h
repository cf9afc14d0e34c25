// bench.h — `sd bench -m MODEL`: each stage of one image timed on its own (median of several runs),
// with its FLOPs counted from the shapes, GFLOP/s, and the share of the measured fp32 FMA peak.
#pragma once
#include "app/options.h"

namespace sd {
int run_bench(const Options& o);
}
