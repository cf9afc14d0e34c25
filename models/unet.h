// unet.h — the Stable Diffusion 1.x denoising UNet (ldm's UNetModel), loaded from a single-file checkpoint.
//
// The network ε_θ(z_t, t, τ_θ(y)) of Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion
// Models" (LDM), §3.3: given the noisy latent z_t, the timestep t and the text encoding τ_θ(y), it
// predicts the noise ε that was added. The backbone is Ho et al. 2020, "Denoising Diffusion Probabilistic
// Models" (DDPM): a U-Net of residual blocks with group normalisation, the timestep given
// as a sinusoidal (Transformer) position embedding; LDM adds a spatial transformer with cross-attention to
// τ_θ(y) after the res blocks of the attention levels (§3.3: softmax(QKᵀ/√d)·V with Q from the image
// tokens, K and V from the text). FLOP counts: models/cost.h.
//
// Weights are bound by their CompVis/ldm names under "model.diffusion_model."; the configuration (model
// channels, channel multiplier per level, res blocks per level, which levels have attention, context width,
// transformer depth) is inferred from the tensor shapes and which keys exist, so one loader serves the real
// 860M-parameter model and the tiny test model. proj_in/proj_out may be 1×1 convs (SD1) or linears (SD2).
// Attention heads: SD1 has 8 at every level (num_heads); SD2 has 64 channels per head (num_head_channels), so
// 5, 10, 20 heads by level; the weights do not say which, the caller does (head_dim).
// SDXL (Podell et al. 2023, "SDXL: Improving Latent Diffusion Models for High-Resolution Image Synthesis", §2.1-2.2):
// the same blocks with a transformer depth per level ((0, 2, 10): no attention at the first level, 10 blocks deep at
// the lowest) and in the middle, context 2048, and `label_emb`, an MLP on the 2816-wide vector (pooled text +
// size/crop embeddings, pipeline/sdxl.h) whose output is added to the timestep embedding (sgm's adm_in_channels,
// num_classes "sequential").
// Left out: class-label conditioning by index, and any training-only path (dropout, checkpointing).
#pragma once
#include <string>
#include <vector>

#include "models/ops.h"
#include "safetensors.h"
#include "tensor.h"

namespace sd {

struct UNetConfig {
    int64_t in_channels = 4, out_channels = 4;
    int64_t model_channels = 320;          // width of level 0
    int64_t time_embed_dim = 1280;         // 4 × model_channels in SD
    int64_t context_dim = 768;             // CLIP hidden width (cross-attention keys/values)
    int64_t heads = 8;                     // SD1: num_heads = 8 at every level
    int64_t head_dim = 0;                  // SD2: num_head_channels = 64 (heads = C / 64); 0: `heads` everywhere
    int num_res_blocks = 2;                // per level on the way down (one more on the way up)
    std::vector<int> channel_mult;         // per level, e.g. {1, 2, 4, 4}
    std::vector<bool> attention;           // per level: spatial transformers after its res blocks?
    std::vector<int> transformer_depth;    // per level: blocks per spatial transformer (SD 1/2: 1, SDXL: 0, 2, 10)
    int middle_depth = 1;                  // blocks in the middle block's transformer (SDXL: 10)
    int64_t adm_in_channels = 0;           // SDXL: width of the vector label_emb reads (2816); 0: no label_emb
    int levels() const { return (int)channel_mult.size(); }
    int64_t downscale() const { return int64_t(1) << (levels() - 1); }  // latent side must divide by this
    int64_t heads_at(int64_t channels) const { return head_dim ? channels / head_dim : heads; }
};

// One input/output block as the config lays it out: a res block (cin → cout), maybe a spatial transformer,
// maybe a down/upsample at the end; `level` is the resolution level it runs at (input side). ldm's
// UNetModel.__init__ order: unet_plan() gives input_blocks.1... (down) and output_blocks.0... (up).
struct UNetBlockPlan {
    int level = 0;
    bool res = false, attn = false, down = false, up = false;
    int64_t cin = 0, cout = 0;
};
void unet_plan(const UNetConfig& c, std::vector<UNetBlockPlan>& down, std::vector<UNetBlockPlan>& up);

struct ResBlock {         // h = conv1(silu(norm1(x))) + emb(silu(temb)); h = conv2(silu(norm2(h))); skip(x) + h
    int64_t cin = 0, cout = 0;
    Norm norm1;           // (cin)              in_layers.0
    Conv conv1;           // (cout, cin, 3, 3)  in_layers.2
    Linear emb;           // (cout, temb)       emb_layers.1
    Norm norm2;           // (cout)             out_layers.0
    Conv conv2;           // (cout, cout, 3, 3) out_layers.3
    Conv skip;            // (cout, cin, 1, 1)  skip_connection; empty when cin == cout
};

struct Attention {        // q from x, k/v from x (self) or the text context (cross)
    Linear q, k, v;       // (C, C), (C, Ckv), (C, Ckv), no bias  to_q, to_k, to_v
    Linear out;           // (C, C), (C)                         to_out.0
};

struct TransformerBlock { // x += attn1(norm1 x); x += attn2(norm2 x, ctx); x += ff(norm3 x)
    Norm norm1, norm2, norm3;  // (C)           LayerNorm, eps 1e-5
    Attention attn1, attn2;
    Linear ff1;           // (8C, C), (8C)      ff.net.0.proj, GEGLU: value | gate
    Linear ff2;           // (C, 4C), (C)       ff.net.2
};

struct SpatialTransformer {  // x + proj_out(blocks(proj_in(norm(x)) as tokens))
    int64_t channels = 0;
    Norm norm;            // (C)                norm (GroupNorm 32, eps 1e-6)
    Linear proj_in;       // (C, C), (C)        1×1 conv or linear, kept as a matrix
    std::vector<TransformerBlock> blocks;  //   transformer_blocks.i
    Linear proj_out;      // (C, C), (C)
};

// One entry of input_blocks / middle_block / output_blocks, applied in this order; absent parts are unused.
struct UNetBlock {
    bool has_res = false, has_attn = false;
    ResBlock res;
    SpatialTransformer attn;
    Conv down;            // (C, C, 3, 3) op: stride 2, pad 1 (input blocks ending a level)
    Conv up;              // (C, C, 3, 3) conv after nearest 2× (output blocks ending a level)
};

struct UNet {
    UNetConfig cfg;
    Linear time1;         // (temb, mc), (temb)    time_embed.0
    Linear time2;         // (temb, temb), (temb)  time_embed.2
    Linear label1;        // (temb, adm), (temb)   label_emb.0.0   SDXL only
    Linear label2;        // (temb, temb), (temb)  label_emb.0.2   SDXL only
    Conv conv_in;         // (mc, in, 3, 3)        input_blocks.0.0
    std::vector<UNetBlock> input_blocks;   //      input_blocks.1 ...
    ResBlock mid_res1;                     //      middle_block.0
    SpatialTransformer mid_attn;           //      middle_block.1
    ResBlock mid_res2;                     //      middle_block.2
    std::vector<UNetBlock> output_blocks;  //      output_blocks.0 ...
    Norm out_norm;        // (mc)                  out.0
    Conv conv_out;        // (out, mc, 3, 3)       out.2
};

// Infers the configuration and binds every tensor under `prefix`; the views point into `st`, which must
// outlive the UNet. Throws std::runtime_error naming the tensor (and its expected shape) when one is missing
// or misshaped, and naming the first tensor under `prefix` that the inferred structure does not use.
// head_dim 0: 8 heads at every level (SD1); else channels / head_dim heads (SD2: 64), which must divide.
// low_rank: LoRAs added at run time to the layers it names (models/ops.h LowRank).
UNet load_unet(const SafeTensors& st, const std::string& prefix = "model.diffusion_model.", int64_t head_dim = 0,
               const LowRankTable* low_rank = nullptr);

// One denoising evaluation: x (B, 4, h, w) latent, timesteps (B), context (B, T, context_dim) with any T
// (77·k for long prompts) → (B, 4, h, w) predicted noise, allocated in `arena` at the mark it had on entry
// (everything else used is released). h and w must be multiples of 8 (2^(levels-1)); throws otherwise.
// vec (B, adm_in_channels): SDXL's vector y, required exactly when the UNet has label_emb.
Tensor unet_forward(const UNet& unet, const Tensor& x, const float* timesteps, const Tensor& context,
                    Arena& arena, const Tensor* vec = nullptr);

// The building blocks, exposed for tests; each releases its temporaries. resblock returns a fresh arena tensor;
// spatial_transformer adds its result onto x in place (x + proj_out(...), ldm's residual).
Tensor resblock(const ResBlock& b, const Tensor& x /*(N,C,H,W)*/, const Tensor& emb /*(N,temb)*/, Arena& a);
void spatial_transformer(const SpatialTransformer& st, Tensor& x /*(N,C,H,W)*/, const Tensor& context /*(N,T,Cc)*/,
                         int64_t heads, Arena& a);

}  // namespace sd

#include "models/cost.h"
