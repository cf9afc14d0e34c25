// conv_choose.cpp — which algorithm runs a convolution (kernels.h): one rule for the UNet, the VAE, TAESD and the
// upscalers, from the shape and the active precision.
//
// Winograd F(2×2, 3×3) and the fused upsample conv transform the whole weight on every call (16·Cout·Cin
// floats); only a large enough map, or a batch, repays that. The measurements behind the thresholds below are
// tabulated in docs/performance.md ("Choosing a conv algorithm").
#include "kernels/kernels.h"

namespace sd {

// Winograd against conv2d, measured (SD1.5 shapes, f16 weights, 2 threads): faster from 32×32 at any batch and
// precision, at 16×16 in fp32 or with a batch of 2, slower below.
static bool winograd_repays(const ConvShape& s) {
    const int64_t pixels = s.H * s.W;
    return pixels >= 32 * 32 || (pixels >= 16 * 16 && (active_precision() == Precision::fp32 || s.N >= 2));
}

// The fused upsample conv against upsample + conv, measured: faster from a 16×16 input map.
static bool upsample2x_repays(const ConvShape& s) { return s.H * s.W >= 16 * 16; }

ConvAlgo choose_conv(const ConvShape& s) {
    if (s.upsample2x) return upsample2x_repays(s) ? ConvAlgo::upsample2x : ConvAlgo::upsample_then_conv;
    if (s.k != 3 || s.stride != 1 || s.pad != 1) return ConvAlgo::direct;
    if (s.in_place) return ConvAlgo::winograd;                           // the only one that reads before writing
    if (s.Cout <= 4) return s.accumulate ? ConvAlgo::direct : ConvAlgo::small_cout;  // an image / latent output
    if (s.Cin < 8) return ConvAlgo::direct;                              // from an image / latent: too thin
    return winograd_repays(s) ? ConvAlgo::winograd : ConvAlgo::direct;
}

size_t conv_scratch_floats(ConvAlgo algo, const ConvShape& s) {
    switch (algo) {
        case ConvAlgo::winograd: return conv2d_winograd_scratch(s.Cin, s.H, s.W, s.Cout);
        case ConvAlgo::upsample2x: return conv2d_upsample2x_scratch(s.Cin, s.H, s.W, s.Cout);
        default: return 0;
    }
}

}  // namespace sd
