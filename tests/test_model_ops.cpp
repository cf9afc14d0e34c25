// The model vocabulary's plumbing (models/ops.h): ArenaScope's keep / drop_all_but / end-of-scope release, and
// the conv algorithm chosen for a shape (kernels/conv_choose.cpp) at the shapes docs/performance.md tabulates.
// The timestep embedding against values PyTorch printed. The layers themselves are covered through the model
// goldens (test_unet, test_vae, test_clip, test_taesd).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"
#include "models/ops.h"
#include "skip.h"

using namespace sd;

namespace {

const char* at(Arena& a, Arena::Mark m) {  // the address mark m stands for (mark, allocate nothing, compare)
    Arena::Mark now = a.mark();
    a.release(m);
    const char* p = static_cast<const char*>(a.bytes(0));
    a.release(now);
    return p;
}

ConvShape shape3x3(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout) {
    ConvShape s;
    s.N = N, s.Cin = Cin, s.H = H, s.W = W, s.Cout = Cout;
    return s;
}

}  // namespace

TEST_CASE("model ops: ArenaScope keeps one tensor at its start and gives the rest back") {
    Arena a(1 << 20);
    Tensor below = a.alloc({16});
    const char* start = static_cast<const char*>(a.bytes(0));
    Arena::Mark outer = a.mark();
    Tensor kept;
    {
        ArenaScope s(a);
        Tensor tmp = a.alloc({1000});
        Tensor y = a.alloc({4, 5});
        for (int i = 0; i < 20; i++) y.f32()[i] = (float)i;
        kept = s.keep(y);
        CHECK(static_cast<const char*>(kept.data) == start);  // moved down over the temporaries
        CHECK(kept.dims() == std::vector<int64_t>{4, 5});
        for (int i = 0; i < 20; i++) CHECK(kept.f32()[i] == (float)i);
        a.alloc({500});  // more temporaries after the keep
        // A second keep replaces the first (the running-activation pattern: x = s.keep(stage(x))).
        Tensor z = a.alloc({3});
        z.f32()[0] = 7;
        kept = s.keep(z);
        CHECK(static_cast<const char*>(kept.data) == start);
        CHECK(kept.f32()[0] == 7);
        a.alloc({200});  // a temporary the scope's end must give back
    }
    // The scope's end releases everything above the kept tensor, and nothing below it.
    Tensor next = a.alloc({1});
    CHECK(static_cast<const char*>(next.data) == start + 64);  // 3 floats round up to one 64-byte unit
    CHECK(below.data != nullptr);
    a.release(outer);
    {
        ArenaScope s(a);
        Tensor h = a.alloc({100});
        Tensor t = s.drop_all_but(a.alloc({8}));  // like keep, but still the scope's own
        CHECK(static_cast<const char*>(t.data) == start);
        (void)h;
    }
    CHECK(at(a, a.mark()) == start);  // drop_all_but's tensor went with the scope
}

TEST_CASE("model ops: the conv algorithm chosen for each shape") {
    const Precision saved = active_precision();
    set_precision(Precision::fp32);
    // One rule for every model: Winograd from 32x32, at 16x16 in fp32 or with a batch; conv2d below.
    CHECK(choose_conv(shape3x3(1, 320, 32, 32, 320)) == ConvAlgo::winograd);
    CHECK(choose_conv(shape3x3(1, 320, 16, 16, 320)) == ConvAlgo::winograd);
    CHECK(choose_conv(shape3x3(2, 1280, 8, 8, 1280)) == ConvAlgo::direct);
    CHECK(choose_conv(shape3x3(2, 4, 64, 64, 320)) == ConvAlgo::direct);   // conv_in
    CHECK(choose_conv(shape3x3(2, 320, 64, 64, 4)) == ConvAlgo::small_cout);  // conv_out
    ConvShape up = shape3x3(2, 1280, 16, 16, 1280);
    up.upsample2x = true;
    CHECK(choose_conv(up) == ConvAlgo::upsample2x);
    up.H = up.W = 8;
    CHECK(choose_conv(up) == ConvAlgo::upsample_then_conv);
    // The VAE's and TAESD's maps at real sizes (32x32 and up): Winograd, as the UNet's; small maps: conv2d.
    CHECK(choose_conv(shape3x3(1, 512, 8, 8, 512)) == ConvAlgo::direct);
    CHECK(choose_conv(shape3x3(1, 64, 256, 256, 64)) == ConvAlgo::winograd);
    // Not 3x3 stride 1: conv2d; writing over the input: Winograd, the only one that allows it.
    ConvShape down = shape3x3(1, 320, 64, 64, 320);
    down.stride = 2;
    CHECK(choose_conv(down) == ConvAlgo::direct);
    ConvShape in_place = shape3x3(1, 256, 4, 4, 128);
    in_place.in_place = true;
    CHECK(choose_conv(in_place) == ConvAlgo::winograd);
    CHECK(conv_scratch_floats(ConvAlgo::direct, down) == 0);
    CHECK(conv_scratch_floats(ConvAlgo::winograd, in_place) == conv2d_winograd_scratch(256, 4, 4, 128));
    if (precision_supported(Precision::bf16)) {  // bf16 products: 16x16 pays only with a batch
        set_precision(Precision::bf16);
        CHECK(choose_conv(shape3x3(1, 320, 16, 16, 320)) == ConvAlgo::direct);
        CHECK(choose_conv(shape3x3(2, 320, 16, 16, 320)) == ConvAlgo::winograd);
    } else {
        SKIPPED("no bf16 products on this CPU: the bf16 thresholds are not checked");
    }
    set_precision(saved);
}

TEST_CASE("timestep_embedding: cos first, f_i = exp(-ln(max_period)·i/half), odd dim zero-padded") {
    // Printed by PyTorch 1.13 from the ldm / diffusers formula (flip_sin_to_cos=True, shift 0), dim 7.
    const float t[4] = {1.0f, 999.0f, 0.0f, 500.5f};
    const float torch_out[4][7] = {
        {0.540302336f, 0.998922944f, 0.999997675f, 0.841470957f, 0.0463992245f, 0.00215443317f, 0.0f},
        {0.999649823f, -0.728670716f, -0.549264669f, -0.0264607519f, 0.684864163f, 0.835648477f, 0.0f},
        {1.0f, 1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f},
        {-0.551388979f, -0.324793458f, 0.472831756f, -0.834248304f, -0.945784986f, 0.881152749f, 0.0f}};
    float out[4][7];
    timestep_embedding(&out[0][0], t, 4, 7);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 7; i++) {
            CAPTURE(k);
            CAPTURE(i);
            // PyTorch's f32 exp may round f_i the other way: allow an ulp of the argument t·f_i
            CHECK(std::fabs(out[k][i] - torch_out[k][i]) <= 2e-6f + 1.5e-7f * t[k]);
        }
    // dim 320 (SD's UNet) against the formula in double; the f32 argument t·f_i carries up to a few ulp
    // of t·f_i, which is what the tolerance allows.
    const int64_t dim = 320, half = dim / 2;
    const float ts[3] = {0.0f, 261.0f, 999.0f};
    std::vector<float> e(3 * dim);
    timestep_embedding(e.data(), ts, 3, dim);
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < half; i++) {
            double arg = ts[k] * std::exp(-std::log(10000.0) * (double)i / (double)half);
            double tol = 1e-6 + std::fabs(arg) * 4e-7;
            CHECK(std::fabs(e[k * dim + i] - std::cos(arg)) <= tol);
            CHECK(std::fabs(e[k * dim + half + i] - std::sin(arg)) <= tol);
        }
}
