// peak.cpp — the fp32 FMA peak this machine reaches, measured, so benchmarks can say "% of peak".
#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels/gemm_internal.h"
#include "kernels/kernels.h"

namespace sd {

double measure_fma_peak_gflops(int threads) {
    const GemmKernels& kr = *gemm_kernels_active();
    const int64_t iters = 10000000;
    int saved = num_threads();
    set_num_threads(threads);
    std::vector<double> flops(threads), rates;
    for (int rep = 0; rep < 5; rep++) {
        auto t0 = std::chrono::steady_clock::now();
        parallel_for(threads, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; i++) flops[i] = kr.fma_peak(iters);
        });
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double total = 0;
        for (double f : flops) total += f;
        rates.push_back(total / s * 1e-9);
    }
    set_num_threads(saved);
    std::sort(rates.begin(), rates.end());
    return rates[rates.size() / 2];
}

}  // namespace sd
