// upscaler.h — the ESRGAN-family super-resolution networks the webui installs (it loads them through spandrel):
//
//   RRDBNet (ESRGAN, Wang et al. 2018; Real-ESRGAN x4plus / x2plus, Wang et al. 2021): conv_first, a trunk of
//     Residual-in-Residual Dense Blocks closed by conv_body and a long skip, then ×2 stages of nearest upsample +
//     conv + LeakyReLU(0.2), conv_hr + LeakyReLU, conv_last. The x2 / x1 variants pixel-unshuffle their input
//     first (in_nc 12 / 48), so one 4× network serves every scale.
//   SRVGGNetCompact (realesr-general-x4v3): conv + PReLU pairs at low resolution, a last conv to out·s² channels,
//     pixel shuffle, plus the nearest-upsampled input.
//
// Files: `.safetensors` only, in any of the key conventions people have: the old ESRGAN nn.Sequential
// (model.0 / model.1.sub.N.RDB1.conv1.0 / model.3 ...), BasicSR's (conv_first / body.N.rdb1.conv1 / conv_body /
// conv_up1 / conv_hr / conv_last) and BSRGAN's (RRDB_trunk / trunk_conv / upconv1 / HRconv). The configuration
// (scale, blocks, features, growth, channels) comes from the tensor shapes as spandrel detects it. Left out:
// ESRGAN+ (conv1x1 in the dense blocks), ×3 models, norm layers, other spandrel architectures.
//
// Convention: the networks see BGR images in [0, 1] (ESRGAN was trained on OpenCV images and the webui feeds them
// BGR); pipeline/upscale.h does the image-level work (tiling, the webui's scale loop).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/ops.h"
#include "safetensors.h"
#include "tensor.h"

namespace sd {

struct RRDBNet {
    // ResidualDenseBlock: conv1..conv4 (gc, nf + i·gc) read everything before them (a dense block), each with
    // LeakyReLU(0.2); conv5 (nf, nf + 4gc) has none; the block returns x + 0.2·conv5.
    struct DenseBlock { Conv conv[5]; };
    // RRDB: three dense blocks in a row, returns x + 0.2·rdb3(rdb2(rdb1(x))).
    struct RRDB { DenseBlock rdb[3]; };

    int64_t nf = 64, gc = 32;  // features, growth channels
    int shuffle = 1;           // pixel-unshuffle factor of the input: 1, 2 (x2plus) or 4 (x1)
    Conv conv_first;           // (nf, in·shuffle², 3, 3)
    std::vector<RRDB> body;    // 23 for ESRGAN / x4plus, 6 for the anime_6B model
    Conv conv_body;            // (nf, nf, 3, 3), then + conv_first's output
    std::vector<Conv> conv_up; // (nf, nf, 3, 3) each, after a nearest 2× upsample: log2 of the network's scale
    Conv conv_hr;              // (nf, nf, 3, 3), LeakyReLU
    Conv conv_last;            // (out, nf, 3, 3)
};

struct SRVGGNetCompact {
    int64_t nf = 64;
    std::vector<Conv> conv;     // body.0 (nf, in, 3, 3), then body.2, body.4, ... (nf, nf, 3, 3): num_conv + 1
    std::vector<Tensor> prelu;  // body.1, body.3, ... (nf) f32: PReLU slopes, one per channel, after each conv
    Conv conv_last;             // body.2·num_conv+2 (out·scale², nf, 3, 3), then pixel shuffle
};

enum class UpscalerArch { esrgan, compact };

struct Upscaler {
    std::shared_ptr<const SafeTensors> file;  // the weights are views into it
    UpscalerArch arch = UpscalerArch::esrgan;
    std::string layout;             // "old ESRGAN", "BasicSR", "BSRGAN" or "SRVGGNetCompact" keys
    int scale = 4;                  // output size / input size (after any unshuffle)
    int64_t in_channels = 3, out_channels = 3;
    RRDBNet rrdb;                   // arch == ESRGAN
    SRVGGNetCompact compact;        // arch == Compact
};

// Loads an upscaler from a .safetensors file. Throws one sentence naming the file for a .pth/.pt file (convert it
// to safetensors: it is never unpickled), a file of another kind, or a missing / misshaped / unused tensor.
Upscaler load_upscaler(const std::string& path);
Upscaler load_upscaler(std::shared_ptr<const SafeTensors> file);

// "ESRGAN (RRDBNet, BasicSR keys) 4x, 23 blocks, 64 features" when `st` holds an upscaler, else "".
std::string describe_upscaler(const SafeTensors& st);

// x (1, in, H, W), BGR in [0, 1] → (1, out, scale·H, scale·W), not clamped. Allocated in `arena` where its top
// was on entry; the temporaries are released.
Tensor upscaler_forward(const Upscaler& u, const Tensor& x, Arena& arena);

// Multiply-adds per input pixel of one forward pass (the convs; for the measurement and the progress estimate).
double upscaler_macs_per_pixel(const Upscaler& u);

}  // namespace sd
