// prediction.h — what the UNet's output means: the noise (epsilon, SD 1.x, SD 2.x 512 base, SD-Turbo) or the
// velocity v = sqrt(abar)·noise − sqrt(1 − abar)·x0 (Salimans & Ho 2022; SD 2.x 768-v), and how to tell.
//
// A checkpoint does not say which. The webui decides in modules/sd_models_config.py, and so do we, in its order:
//   1. a config next to the file (MODEL.yaml) wins: `parameterization: "v"` means v, anything else epsilon;
//   2. an SD 2.x file (OpenCLIP text tower, not inpainting) is probed: the UNet runs once on a constant latent
//      0.5 (1, 4, 8, 8) at timestep 999 with a constant context 0.5 (1, 2, context width); a mean of
//      (output − input) below −1 means v (is_using_v_parameterization_for_sd2);
//   3. everything else is epsilon.
// `--prediction eps|v` overrides all of it. The probe's result is cached per file (path, size, mtime).
// The denoiser's scalings (k-diffusion's CompVisDenoiser / CompVisVDenoiser, sigma_data 1) turn either output
// into the clean-latent estimate D(x; sigma) the samplers work with, so every sampler runs both.
#pragma once
#include <cmath>
#include <string>

#include "models/checkpoint.h"
#include "models/unet.h"

namespace sd {

enum class Prediction { eps, v };

const char* prediction_name(Prediction p);  // "eps", "v"
// "eps" / "epsilon" or "v" / "v_prediction"; throws std::runtime_error otherwise.
Prediction parse_prediction(const std::string& s);

struct PredictionChoice {
    Prediction prediction = Prediction::eps;
    std::string why;  // one phrase: "--prediction v", "the UNet probe (mean -1.73 < -1)", ...
};

// The webui's probe: mean(unet(0.5, t = 999, context 0.5 (1, 2, ctx)) − 0.5) over the (1, 4, 8, 8) output.
double v_probe(const UNet& unet, Arena& arena);

// The decision above for the checkpoint at info.path. `override_` is empty or a --prediction value; `unet` is
// needed only for the probe (an SD 2.x file without a config next to it) when its result is not cached.
PredictionChoice decide_prediction(const CheckpointInfo& info, const UNet* unet, const std::string& override_,
                                   Arena& arena);

// D(x; sigma) from the UNet's output `out` for the input x: epsilon D = x − sigma·out;
// v: D = c_skip·x + c_out·out with c_skip = 1/(sigma²+1), c_out = −sigma/sqrt(sigma²+1).
inline double denoised_from_output(Prediction p, double x, double out, double sigma) {
    if (p == Prediction::eps) return x - sigma * out;
    const double s2 = sigma * sigma + 1.0;
    return x / s2 - sigma / std::sqrt(s2) * out;
}

}  // namespace sd
