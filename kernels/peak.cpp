// peak.cpp — the fp32 FMA peak this machine reaches, measured, so benchmarks can say "% of peak".
#include <time.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels/table.h"
#include "kernels/kernels.h"

namespace sd {

static double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

FmaPeak measure_fma_peak(int threads) {
    const KernelTable& kr = kernels();
    const int64_t iters = 10000000;
    int saved = num_threads();
    set_num_threads(threads);
    std::vector<double> flops(threads), cpu(threads), walls, cores;
    for (int rep = 0; rep < 5; rep++) {
        auto t0 = std::chrono::steady_clock::now();
        parallel_for(threads, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; i++) {
                double c0 = thread_cpu_seconds();
                flops[i] = kr.fma_peak(iters);
                cpu[i] = thread_cpu_seconds() - c0;
            }
        });
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double total = 0;
        for (double f : flops) total += f;
        walls.push_back(total / s * 1e-9);
        cores.push_back(flops[0] / cpu[0] * 1e-9);
    }
    set_num_threads(saved);
    std::sort(walls.begin(), walls.end());
    std::sort(cores.begin(), cores.end());
    return {walls[walls.size() / 2], cores[cores.size() / 2]};
}

double bf16_speedup() {
    const KernelTable& kr = kernels();
    if (!kr.fma_peak_bf16 || !cpu_has_bf16()) return 0.0;
    double rate[2] = {0.0, 0.0};  // fp32 FMA, bf16 dot: FLOP per CPU-second of this thread, best of three ~1 ms runs
    for (int rep = 0; rep < 3; rep++)
        for (int k = 0; k < 2; k++) {
            double c0 = thread_cpu_seconds(), flops = (k ? kr.fma_peak_bf16 : kr.fma_peak)(100000);
            rate[k] = std::max(rate[k], flops / std::max(thread_cpu_seconds() - c0, 1e-9));
        }
    return rate[1] / rate[0];
}

}  // namespace sd
