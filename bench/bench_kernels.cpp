// bench_kernels.cpp — the kernel throughput table (`make bench`): the machine's measured fp32 FMA peak,
// then GFLOP/s of the SD-shaped matrix products and convolutions on 1 thread and on all threads, as a
// percentage of the peak measured with the same thread count, and the all/1-thread speed-up. Where the CPU
// has AVX512_BF16 or ARM64 BF16, the bf16 columns give the same products at bf16 precision (1 thread, by CPU
// time) against the vdpbf16ps (BFDOT) register-only peak, and their speed-up over fp32 (both by 1-thread CPU time).
// Median of several runs. SD_ISA selects the instruction set as everywhere else. An argument keeps only
// the rows whose name contains it (e.g. `bench_kernels conv`).
//
// The development machine is shared, so next to wall-clock numbers the table shows the single-thread
// rate by the thread's CPU time ("1T cpu"), which other processes on the same cores do not distort, and
// the speed-up the T-thread split would give on free cores ("proj"): 1-thread CPU time over the CPU time
// of the busiest thread of the T-thread run (it sees imbalance and duplicated packing, not contention
// for shared L3 or memory bandwidth).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "clock.h"
#include "kernels/table.h"
#include "kernels/half.h"
#include "kernels/kernels.h"

using namespace sd;

namespace {

// Medians in seconds: wall clock, and the CPU time of the busiest pool thread (part i of a
// parallel_for over num_threads() parts always runs on the same thread, so each thread can clock itself).
struct Times { double wall, cpu; };

Times median_time(const std::function<void()>& fn, int reps) {
    fn();
    const int T = num_threads();
    std::vector<double> wall, cpu, c0(T), c1(T);
    auto clock_all = [&](std::vector<double>& c) {
        parallel_for(T, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; i++) c[i] = thread_cpu_seconds(); });
    };
    for (int r = 0; r < reps; r++) {
        clock_all(c0);
        double w0 = wall_seconds();
        fn();
        wall.push_back(wall_seconds() - w0);
        clock_all(c1);
        double busiest = 0;
        for (int i = 0; i < T; i++) busiest = std::max(busiest, c1[i] - c0[i]);
        cpu.push_back(busiest);
    }
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    return {wall[reps / 2], cpu[reps / 2]};
}

// Register-only FMA (or vdpbf16ps) peak in GFLOP/s with `threads` threads each running the kernels'
// independent chains.
Times fma_peak_gflops(int threads, double (*fma_peak)(int64_t)) {
    set_num_threads(threads);
    const int64_t iters = 20000000;
    std::vector<double> flops(threads);
    Times t = median_time([&] {
        parallel_for(threads, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; i++) flops[i] = fma_peak(iters);
        });
    }, 5);
    return {flops[0] * threads / t.wall * 1e-9, flops[0] / t.cpu * 1e-9};
}

std::vector<uint8_t> random_weights(std::mt19937& rng, DType dt, int64_t n) {
    std::normal_distribution<float> nd(0.0f, 0.05f);
    std::vector<uint8_t> w(n * dtype_size(dt));
    for (int64_t i = 0; i < n; i++) {
        float x = nd(rng);
        if (dt == DType::f32) std::memcpy(&w[i * 4], &x, 4);
        else {
            uint16_t h = dt == DType::f16 ? f32_to_f16(x) : f32_to_bf16(x);
            std::memcpy(&w[i * 2], &h, 2);
        }
    }
    return w;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string filter = argc > 1 ? argv[1] : "";
    const int T = num_threads();
    double load = 0;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &load) != 1) load = 0;
        std::fclose(f);
    }
    set_precision(Precision::fp32);
    const bool bf16 = precision_supported(Precision::bf16);
    std::printf("kernel benchmark: isa=%s (CPU: %s), %d threads, bf16 products %s, load average %.2f before start\n",
                isa_name(active_isa()), cpu_features(), T, bf16 ? "yes" : "no", load);
    Times p1 = fma_peak_gflops(1, kernels().fma_peak), pT = fma_peak_gflops(T, kernels().fma_peak);
    double peak1 = p1.wall, peak1_cpu = p1.cpu, peakT = pT.wall;
    std::printf("fp32 FMA peak (register-only, GFLOP/s): 1 thread %.1f (by CPU time %.1f), %d threads %.1f (%.2fx)\n",
                peak1, peak1_cpu, T, peakT, peakT / peak1);
    double bf16_peak1_cpu = 0;
    if (bf16) {
        bf16_peak1_cpu = fma_peak_gflops(1, kernels().fma_peak_bf16).cpu;
        std::printf("bf16 vdpbf16ps peak (register-only, GFLOP/s): 1 thread by CPU time %.1f (%.2fx fp32)\n",
                    bf16_peak1_cpu, bf16_peak1_cpu / peak1_cpu);
    }
    std::printf("\n");

    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto measure = [&](const char* name, double flop, const std::function<void()>& fn) {
        if (std::string(name).find(filter) == std::string::npos) return;
        int reps = flop > 4e9 ? 3 : flop > 1e8 ? 5 : 21;
        set_num_threads(1);
        Times t1 = median_time(fn, reps);
        set_num_threads(T);
        Times tT = median_time(fn, reps);
        double gf1 = flop / t1.wall * 1e-9, gf1_cpu = flop / t1.cpu * 1e-9, gfT = flop / tT.wall * 1e-9;
        std::printf("%-36s %7.1f %5.0f%% %7.1f %5.0f%% %7.1f %5.0f%% %6.2fx %6.2fx", name, gf1, 100 * gf1 / peak1,
                    gf1_cpu, 100 * gf1_cpu / peak1_cpu, gfT, 100 * gfT / peakT, gfT / gf1, t1.cpu / tT.cpu);
        if (bf16) {
            set_num_threads(1);
            set_precision(Precision::bf16);
            Times b1 = median_time(fn, reps);
            set_precision(Precision::fp32);
            double bf_cpu = flop / b1.cpu * 1e-9;
            std::printf(" %7.1f %5.0f%% %6.2fx", bf_cpu, 100 * bf_cpu / bf16_peak1_cpu, t1.cpu / b1.cpu);
        }
        std::printf("\n");
        std::fflush(stdout);
    };
    std::printf("%-36s %7s %6s %7s %6s %7s %6s %7s %7s", "GFLOP/s", "1T", "%peak", "1T cpu", "%peak", "allT", "%peak",
                "speedup", "proj");
    if (bf16) std::printf(" %7s %6s %7s", "bf16cpu", "%peak", "vs fp32");
    std::printf("\n");

    // Linear layers: M tokens × K in → N out, weights (N, K).
    const int64_t shapes[][3] = {{4096, 320, 320},  {4096, 320, 2560}, {4096, 1280, 320}, {1024, 640, 640},
                                 {256, 1280, 1280}, {154, 768, 320},   {2, 320, 1280},    {2, 1280, 1280}};
    for (auto& s : shapes)
        for (DType dt : {DType::f16, DType::f32}) {
            int64_t M = s[0], K = s[1], N = s[2];
            std::vector<float> A(M * K), C(M * N);
            for (float& x : A) x = nd(rng);
            std::vector<uint8_t> B = random_weights(rng, dt, N * K);
            char name[64];
            std::snprintf(name, sizeof name, "gemm %lldx%lldx%lld %s", (long long)M, (long long)K, (long long)N,
                          dtype_name(dt));
            measure(name, 2.0 * M * N * K, [&] {
                gemm(C.data(), N, A.data(), K, B.data(), dt, K, nullptr, M, N, K);
            });
        }

    // Convolutions: H×W×Cin → Cout, k, stride (f16 weights, as in an f16 checkpoint).
    const int64_t convs[][6] = {{64, 64, 320, 320, 3, 1}, {32, 32, 640, 640, 3, 1}, {64, 64, 320, 320, 3, 2},
                                {64, 64, 640, 320, 1, 1}, {512, 512, 128, 3, 3, 1}};
    for (auto& c : convs) {
        int64_t H = c[0], W = c[1], Cin = c[2], Cout = c[3];
        int k = (int)c[4], stride = (int)c[5], pad = k / 2;
        int64_t Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
        std::vector<float> in(Cin * H * W), out(Cout * Ho * Wo), bias(Cout, 0.1f);
        for (float& x : in) x = nd(rng);
        std::vector<uint8_t> w = random_weights(rng, DType::f16, Cout * Cin * k * k);
        char name[64];
        std::snprintf(name, sizeof name, "conv %lldx%lldx%lld->%lld k%d s%d F16", (long long)H, (long long)W,
                      (long long)Cin, (long long)Cout, k, stride);
        measure(name, 2.0 * Cout * Ho * Wo * Cin * k * k, [&] {
            conv2d(out.data(), in.data(), w.data(), DType::f16, bias.data(), 1, Cin, H, W, Cout, k, stride, pad);
        });
    }
    set_num_threads(0);
    return 0;
}
