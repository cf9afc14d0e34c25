// taesd.h — TAESD, the tiny autoencoder for SD 1.x/2.x latents by Ollin Boer Bohan (madebyollin/taesd, MIT):
// a 1.2M-parameter stand-in for the KL-f8 VAE, about 100× cheaper, for previews and fast decodes.
//
// Weights: the keys are the nn.Sequential indices of taesd.py's Encoder() / Decoder() ("3.conv.0.weight"),
// BF16. The SD1 pair is compiled into the binary (models/taesd/*.safetensors, see taesd_embed.cpp), so
// load_taesd_decoder() needs no file; a path loads another file of the same layout instead.
// Conventions differ from the VAE: images in [0, 1] (not [-1, 1]) and latents in UNet space directly
// (latent scale 1: no 0.18215). TAESDXL, the same network trained on SDXL's latents, is built in too (previews,
// --taesd, and img2img's --taesd encode). Left out: the SD3/FLUX variants (other latent channels are accepted as far as the
// shapes go, nothing more), the decoder's optional output clamp (the caller clamps).
#pragma once
#include <memory>
#include <string>

#include "models/ops.h"
#include "safetensors.h"
#include "tensor.h"

namespace sd {

// conv → ReLU → conv → ReLU → conv, plus x (through a 1×1 conv without bias when widths differ), then ReLU.
struct TaesdBlock {
    Conv conv0;   // "conv.0" (C, Cin, 3, 3), (C)
    Conv conv1;   // "conv.2" (C, C, 3, 3), (C)
    Conv conv2;   // "conv.4" (C, C, 3, 3), (C)
    Conv skip;    // "skip" (C, Cin, 1, 1), no bias; empty when Cin == C (identity)
};

// Sequential: 0 conv(3→64), 1 Block, then three times [stride-2 conv without bias, Block, Block, Block]
// (2..5, 6..9, 10..13), 14 conv(64→latent).
struct TaesdEncoder {
    Conv conv_in;                 // "0" (64, 3, 3, 3), (64)
    TaesdBlock block_in;          // "1"
    struct Stage {
        Conv down;                // "2" / "6" / "10" (64, 64, 3, 3), stride 2, no bias
        TaesdBlock blocks[3];     // "3".."5" / "7".."9" / "11".."13"
    } stages[3];
    Conv conv_out;                // "14" (latent, 64, 3, 3), (latent)
};

// Sequential: 0 Clamp (tanh(x/3)·3), 1 conv(latent→64), 2 ReLU, then three times [Block, Block, Block,
// Upsample ×2 nearest, conv without bias] (3..7, 8..12, 13..17), 18 Block, 19 conv(64→3).
struct TaesdDecoder {
    Conv conv_in;                 // "1" (64, latent, 3, 3), (64)
    struct Stage {
        TaesdBlock blocks[3];     // "3".."5" / "8".."10" / "13".."15"
        Conv up;                  // "7" / "12" / "17" (64, 64, 3, 3), after the Upsample, no bias
    } stages[3];
    TaesdBlock block_out;         // "18"
    Conv conv_out;                // "19" (3, 64, 3, 3), (3)
};

struct Taesd {
    std::shared_ptr<const SafeTensors> file;  // the weights are views into it
    bool is_decoder = false;                  // which half this file holds
    TaesdEncoder encoder;
    TaesdDecoder decoder;
};

// The built-in SD1 weights when path is empty (TAESDXL's with xl), else the file at path. Throws naming the file and
// any missing or misshaped tensor.
Taesd load_taesd_decoder(const std::string& path = "", bool xl = false);
Taesd load_taesd_encoder(const std::string& path = "", bool xl = false);

// z (B, 4, h, w), UNet-space latent → image (B, 3, 8h, 8w), ≈[0, 1], not clamped. Allocated in `arena` where
// its top was on entry; the temporaries are released.
Tensor taesd_decode(const Taesd& taesd, const Tensor& z, Arena& arena);
// img (B, 3, H, W) in [0, 1], H and W multiples of 8 → latent (B, 4, H/8, W/8) in UNet space.
Tensor taesd_encode(const Taesd& taesd, const Tensor& img, Arena& arena);

// The built-in weight files (bytes of models/taesd/taesd{,xl}_{decoder,encoder}.safetensors linked into the binary).
struct EmbeddedFile { const void* data; size_t size; };
EmbeddedFile taesd_embedded_decoder();
EmbeddedFile taesd_embedded_encoder();
EmbeddedFile taesdxl_embedded_decoder();
EmbeddedFile taesdxl_embedded_encoder();

}  // namespace sd
