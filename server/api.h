// api.h — the routes of `sd serve`: the webui's /sdapi/v1 API (same paths, field names, defaults and response
// shapes as AUTOMATIC1111 v1.10's modules/api/api.py), the page at /, and /internal/progress for the page.
//
// Every route checks basic auth first when credentials are set. Quick routes answer on the server's loop
// thread; txt2img queues a job and answers when the engine calls back. Errors keep FastAPI's shapes:
// {"detail": "Not Found"} for 401/404/405, the pydantic list for 422, the webui's
// {"error", "detail", "body", "errors"} for a failed job (500). A job too big for the memory left is a 422 naming
// "width", as the CLI refuses it.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/api_request.h"
#include "server/engine.h"
#include "server/http.h"
#include "server/server.h"

namespace sd::serve {

struct ApiConfig {
    ApiLimits limits;
    std::vector<std::pair<std::string, std::string>> credentials;  // empty: no auth
};

class Api {
public:
    Api(Engine& engine, ApiConfig cfg) : engine_(engine), cfg_(std::move(cfg)) {}
    void handle(const http::Request& req, std::shared_ptr<http::Responder> out);

private:
    void txt2img(const http::Request& req, std::shared_ptr<http::Responder> out);
    void img2img(const http::Request& req, std::shared_ptr<http::Responder> out);
    bool make_job(const Txt2ImgRequest& t, std::shared_ptr<http::Responder>& out, Job* job);
    void submit(Job job, const Txt2ImgRequest& t, std::shared_ptr<http::Responder> out);
    http::Response options_get();
    http::Response options_post(const http::Request& req);
    http::Response progress(const http::Request& req);
    http::Response internal_progress(const http::Request& req);
    http::Response png_info(const http::Request& req);
    http::Response sd_models();
    http::Response embeddings(bool reload);
    http::Response loras();
    http::Response upscalers();
    void extras(const http::Request& req, std::shared_ptr<http::Responder> out, bool batch);

    Engine& engine_;
    ApiConfig cfg_;
    std::string randn_source_ = "GPU";  // guarded: only the loop thread touches it
};

// The page served at / (server/ui/index.html, embedded in the binary).
std::string ui_page();

}  // namespace sd::serve
