// targets_server.h — the fuzz target bodies for `sd serve` (included by targets.h): the HTTP request parser
// and the API's JSON handling. Same contract as the others: accept or refuse, never crash, and accepted results
// keep their promises (checked below); a broken promise throws Finding.
#pragma once
#include <string>
#include <vector>

#include "json.h"
#include "server/api_request.h"
#include "server/http.h"

namespace sd::fuzz {

inline bool valid_json(const std::string& text, JsonValue* out = nullptr) {
    try {
        JsonValue v = parse_json(text);
        if (out) *out = v;
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

// ---- http: parse_request over a byte stream, request after request (pipelining), plus the codecs ---------------
// Promises of an accepted request: it consumed a non-empty prefix of what was there, its body is exactly
// Content-Length bytes and within the limit, the method is a token, the target starts with '/', the decoded path
// holds no NUL, header names are lower-case tokens and values hold no CR/LF; the same prefix alone parses the
// same way (the verdict never depends on bytes that belong to the next request). Verdict: refused when the
// parser reported an error, accepted otherwise.
inline int fuzz_one_http(const uint8_t* data, size_t size) {
    http::Limits lim;
    lim.max_header_bytes = 2048;
    lim.max_body_bytes = 4096;
    lim.max_headers = 32;
    const char* p = (const char*)data;
    size_t left = size;
    bool refused = false;
    for (int n = 0; n < 64 && left > 0; n++) {
        http::Request r;
        http::ParseResult res = http::parse_request(p, left, lim, &r);
        if (res.status == http::Parse::incomplete) break;
        if (res.status == http::Parse::error) {
            expect(res.error_status >= 400 && res.error_status < 600, "an error without a 4xx/5xx status");
            expect(!res.error.empty(), "an error without a sentence");
            refused = true;
            break;
        }
        expect(res.consumed > 0 && res.consumed <= left, "consumed outside the input");
        expect(r.body.size() <= lim.max_body_bytes, "a body over the limit was accepted");
        const std::string* cl = r.header("content-length");
        expect(cl ? r.body.size() == std::stoull(*cl) : r.body.empty(),
               "the body is not Content-Length bytes");
        expect(!r.method.empty(), "an empty method");
        for (char c : r.method) expect(c > 0x20 && c < 0x7f && c != ':', "a method that is not a token");
        expect(!r.target.empty() && r.target[0] == '/', "a target that does not start with '/'");
        expect(r.path.find('\0') == std::string::npos, "a NUL in the decoded path");
        for (const auto& h : r.headers) {
            for (char c : h.first) expect(!(c >= 'A' && c <= 'Z') && c != ':' && c > 0x20, "a bad header name");
            expect(h.second.find_first_of("\r\n") == std::string::npos, "CR or LF inside a header value");
        }
        http::Request again;
        http::ParseResult res2 = http::parse_request(p, res.consumed, lim, &again);
        expect(res2.status == http::Parse::complete && res2.consumed == res.consumed && again.body == r.body &&
                   again.target == r.target,
               "the request parses differently without the bytes after it");
        p += res.consumed;
        left -= res.consumed;
    }
    // The codecs on the same bytes.
    const std::string s((const char*)data, size);
    std::vector<uint8_t> raw, back;
    if (http::base64_decode(s, &raw)) {
        expect(http::base64_decode(http::base64_encode(raw.data(), raw.size()), &back) && back == raw,
               "base64 does not round-trip");
    }
    std::string v;
    http::query_param(s, "skip_current_image", &v);
    http::percent_decode(s, &v, true);
    const std::vector<std::pair<std::string, std::string>> creds = {{"user", "pass"}};
    (void)http::basic_auth_ok(&s, creds);
    return refused ? kRefused : kAccepted;
}

// ---- api: the bytes as a request body for txt2img, options and png-info, and as an infotext -------------------
// Promises: the 422 detail is valid JSON whose every loc starts with "body"; an accepted txt2img request is
// inside the limits (steps, sizes multiple of 64, pixels, images per request, CFG, seed) with valid "parameters"
// JSON; accepted extras requests are in range; accepted options are in range; the infotext parser and the Latin-1 repair always give valid JSON / UTF-8.
// Verdict: the txt2img reading's.
inline int fuzz_one_api(const uint8_t* data, size_t size) {
    const std::string body((const char*)data, size);
    const serve::ApiLimits lim;
    serve::Txt2ImgRequest t;
    std::vector<serve::FieldError> errors;
    const bool ok = serve::parse_txt2img(body, lim, &t, &errors);
    expect(ok == errors.empty(), "txt2img: the verdict disagrees with the error list");
    JsonValue detail;
    expect(valid_json(serve::detail_json(errors), &detail), "txt2img: the 422 detail is not valid JSON");
    for (const auto& e : detail.get("detail")->items)
        expect(e.get("loc") && !e.get("loc")->items.empty() && e.get("loc")->items[0].text == "body",
               "a 422 loc that does not start with body");
    if (ok) {
        expect(t.steps >= 1 && t.steps <= lim.max_steps, "txt2img: steps out of range accepted");
        expect(t.width >= 64 && t.height >= 64 && t.width % 64 == 0 && t.height % 64 == 0 && t.width <= lim.max_side &&
                   t.height <= lim.max_side && (int64_t)t.width * t.height <= lim.max_pixels,
               "txt2img: a size out of range accepted");
        expect(t.batch_size >= 1 && t.n_iter >= 1 && (int64_t)t.batch_size * t.n_iter <= lim.max_images,
               "txt2img: too many images accepted");
        expect(t.cfg_scale >= 0 && t.cfg_scale <= 100, "txt2img: cfg_scale out of range accepted");
        expect(t.seed >= -1, "txt2img: a seed below -1 accepted");
        expect(t.clip_skip >= 0 && t.clip_skip <= 12, "txt2img: CLIP skip out of range accepted");
        JsonValue params;
        expect(valid_json(t.parameters_json, &params) && params.kind == JsonKind::object,
               "txt2img: parameters is not a JSON object");
    }
    // img2img: the same fields and checks, plus the init image and the inpainting values.
    serve::Img2ImgRequest im;
    errors.clear();
    const bool ok_img = serve::parse_img2img(body, lim, &im, &errors);
    expect(ok_img == errors.empty(), "img2img: the verdict disagrees with the error list");
    expect(valid_json(serve::detail_json(errors), &detail), "img2img: the 422 detail is not valid JSON");
    if (ok_img) {
        expect(!im.init_image.empty(), "img2img: accepted without an init image");
        expect(im.denoising_strength >= 0 && im.denoising_strength <= 1, "img2img: denoising_strength out of range");
        expect(im.resize_mode >= 0 && im.resize_mode <= 3 && im.inpainting_fill >= 0 && im.inpainting_fill <= 3,
               "img2img: a mode out of range accepted");
        expect(im.steps >= 1 && im.steps <= lim.max_steps, "img2img: steps out of range accepted");
        JsonValue params;
        expect(valid_json(im.parameters_json, &params) && params.kind == JsonKind::object,
               "img2img: parameters is not a JSON object");
    }
    for (const bool batch : {false, true}) {  // extra-single-image, extra-batch-images
        serve::ExtrasRequest x;
        errors.clear();
        const bool ok_x = serve::parse_extras(body, batch, lim, &x, &errors);
        expect(ok_x == errors.empty(), "extras: the verdict disagrees with the error list");
        expect(valid_json(serve::detail_json(errors), &detail), "extras: the 422 detail is not valid JSON");
        if (ok_x) {
            expect(!x.images.empty() || batch, "extras: accepted without an image");
            expect((int64_t)x.images.size() <= lim.max_images, "extras: too many images accepted");
            expect(x.upscaling_resize > 0 && x.upscaling_resize <= 16, "extras: upscaling_resize out of range");
            expect(x.upscaling_resize_w >= 1 && x.upscaling_resize_w <= 16384 && x.upscaling_resize_h >= 1 &&
                       x.upscaling_resize_h <= 16384, "extras: a target size out of range accepted");
            expect(x.upscaler_2_visibility >= 0 && x.upscaler_2_visibility <= 1, "extras: a visibility out of range");
            expect(x.resize_mode == 0 || x.resize_mode == 1, "extras: resize_mode out of range");
        }
    }
    serve::OptionsUpdate u;
    errors.clear();
    const bool ok_options = serve::parse_options(body, &u, &errors);
    expect(ok_options == errors.empty(), "options: the verdict disagrees with the error list");
    if (ok_options) expect(u.clip_skip >= 0 && u.clip_skip <= 12, "options: CLIP skip out of range accepted");
    std::vector<uint8_t> image;
    errors.clear();
    const bool ok_png = serve::parse_png_info(body, &image, &errors);
    expect(ok_png == errors.empty(), "png-info: the verdict disagrees with the error list");
    JsonValue gp;
    expect(valid_json(serve::parse_generation_parameters_json(body), &gp) && gp.kind == JsonKind::object,
           "parse_generation_parameters gave invalid JSON");
    const std::string u8 = serve::to_utf8(body);
    JsonValue q;
    expect(valid_json(json_quote(u8), &q) && q.text == u8, "to_utf8 gave invalid UTF-8");
    return ok ? kAccepted : kRefused;
}

}  // namespace sd::fuzz
