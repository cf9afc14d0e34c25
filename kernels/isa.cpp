// isa.cpp — which instruction set the kernels run with: detected once, overridable by SD_ISA; and the one switch
// from an instruction set to its kernel table (table.h).
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/kernels.h"
#include "kernels/table.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace sd {

const char* isa_name(Isa isa) {
    static const char* const names[] = {"scalar", "avx2", "avx512", "neon"};  // Isa's order
    return names[(int)isa];
}

Isa parse_isa(const char* name) {
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon})
        if (std::string(name) == isa_name(isa)) return isa;
    throw std::runtime_error(std::string("unknown instruction set '") + name + "' (valid: scalar, avx2, avx512, neon)");
}

bool isa_supported(Isa isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (isa == Isa::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == Isa::Avx512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("fma");
#elif defined(__aarch64__)
    if (isa == Isa::Neon) return true;  // Advanced SIMD is mandatory on ARM64
#endif
    return isa == Isa::Scalar;
}

Isa best_isa() {
    for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::Neon})
        if (isa_supported(isa)) return isa;
    return Isa::Scalar;
}

static Isa& current() {  // SD_ISA if set, else the best
    static Isa isa = [] {
        const char* env = std::getenv("SD_ISA");
        if (!env || !*env) return best_isa();
        Isa isa = parse_isa(env);
        if (!isa_supported(isa))
            throw std::runtime_error(std::string("SD_ISA=") + env + " asks for " + isa_name(isa) +
                                     ", which this CPU does not support (best available: " +
                                     isa_name(best_isa()) + ")");
        return isa;
    }();
    return isa;
}

Isa active_isa() { return current(); }

void set_isa(Isa isa) {
    if (!isa_supported(isa))
        throw std::runtime_error(std::string("instruction set ") + isa_name(isa) + " is not supported by this CPU");
    current() = isa;
}

const KernelTable& kernels() {
    switch (active_isa()) {
#if defined(__x86_64__)
        case Isa::Avx2: return kernels_avx2();
        case Isa::Avx512: return kernels_avx512();
#endif
#if defined(__aarch64__)
        case Isa::Neon: return kernels_neon();
#endif
        default: return kernels_scalar();
    }
}

// Linux's hwcap bits (asm/hwcap.h): HWCAP_ASIMD 1<<1, HWCAP_ASIMDHP (fp16 arithmetic) 1<<10,
// HWCAP_ASIMDDP (sdot/udot) 1<<20; HWCAP2_I8MM 1<<13, HWCAP2_BF16 (bfdot, bfmmla) 1<<14.
bool cpu_has_bf16() {
#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 12
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
#elif defined(__aarch64__) && defined(__linux__)
    return getauxval(AT_HWCAP2) & (1ul << 14);
#else
    return false;
#endif
}

const char* cpu_features() {
    static const std::string s = [] {
        std::string f;
        auto add = [&f](bool has, const char* name) { if (has) f += f.empty() ? name : std::string(" ") + name; };
#if defined(__x86_64__)
        __builtin_cpu_init();
        add(__builtin_cpu_supports("avx2"), "avx2");
        add(__builtin_cpu_supports("fma"), "fma");
        add(__builtin_cpu_supports("avx512f"), "avx512f");
        add(cpu_has_bf16(), "avx512bf16");
#elif defined(__aarch64__) && defined(__linux__)
        unsigned long h1 = getauxval(AT_HWCAP), h2 = getauxval(AT_HWCAP2);
        add(h1 & (1ul << 1), "neon");
        add(h1 & (1ul << 10), "fp16");
        add(h1 & (1ul << 20), "dotprod");
        add(cpu_has_bf16(), "bf16");
        add(h2 & (1ul << 13), "i8mm");
#endif
        return f.empty() ? std::string("none") : f;
    }();
    return s.c_str();
}

}  // namespace sd
