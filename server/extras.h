// extras.h — the webui's Extras tab upscale behind /sdapi/v1/extra-single-image and /extra-batch-images
// (modules/postprocessing.py run_extras, scripts/postprocessing_upscale.py ScriptPostprocessingUpscale) and the
// upscaler list of /sdapi/v1/upscalers (shared.sd_upscalers): the built-in "None", "Lanczos" and "Nearest"
// (modules/upscaler.py), then the ESRGAN-family model files of the upscalers folder, named by file stem as the
// webui's ESRGAN loader names them, run by pipeline/upscale.h as `sd upscale` runs them.
// Left out: face restoration (GFPGAN, CodeFormer), max_side_length, the webui's upscale cache. Transparency is
// dropped first, as `sd upscale` does (the webui keeps it through Lanczos and Nearest).
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "app/image_io.h"
#include "server/api_request.h"

namespace sd::serve {

struct UpscalerEntry {
    std::string name;  // "None", "Lanczos", "Nearest", or a model file's stem
    std::string path;  // the model file; empty for the built-in ones
    int scale = 4;     // UpscalerData.scale: 4 for the built-ins (its default), the model's own otherwise
};

// The built-ins, then every readable upscaler .safetensors under dir (two levels deep, in name order; a file that
// is no upscaler is left out with a note on stderr).
std::vector<UpscalerEntry> list_upscalers(const std::string& dir);

// The size the Extras upscale gives an image of w × h (Upscaler.upscale's multiple of 8, or the crop's size), for
// the checks before any work; {w, h} unchanged when upscaler_1 is "None".
std::pair<int, int> extras_output_size(const ExtrasRequest& r, int w, int h);

// ScriptPostprocessingUpscale.process on one image with upscalers already looked up (null: "None"): the upscaled
// (and cropped, and blended with the second upscaler's) RGB image; *info gets the "postprocessing" infotext
// ("Postprocess upscale by: 2.0, Postprocess upscaler: Lanczos"). `progress` is called per model tile.
Image extras_upscale(const ExtrasRequest& r, const Image& image, const UpscalerEntry* u1, const UpscalerEntry* u2,
                     std::string* info, const std::function<void()>& progress = nullptr);

// ui_common.plaintext_to_html: "<p>" + lines HTML-escaped, joined by "<br>\n" + "</p>".
std::string plaintext_to_html(const std::string& text);

}  // namespace sd::serve
