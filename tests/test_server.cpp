// `sd serve` under test: the HTTP parser and codecs on their own, the API's request reading, then a real server
// on a free loopback port (in this process, with tests/data/tiny_sd.safetensors) driven by a raw-socket client
// written here: every route's shape and status, bad JSON, wrong types, huge and malformed headers, truncated
// and slow requests, pipelined and concurrent requests, interrupt and skip, auth on and off. Last, the `./sd
// serve` binary itself: --listen without --api-auth is refused, and SIGTERM during a job answers it and exits 0.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "json.h"
#include "app/image_io.h"
#include "app/infotext.h"
#include "server/api.h"
#include "server/api_request.h"
#include "server/engine.h"
#include "server/http.h"
#include "server/server.h"
#include "sd_command.h"

using namespace sd;
namespace fs = std::filesystem;

namespace {

const char* kTinyModel = "tests/data/tiny_sd.safetensors";

double now_s() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// ---- a server in this process ------------------------------------------------------------------------------------

struct TestServer {
    serve::Engine engine;
    serve::Api api;
    http::Server server;
    std::thread loop;
    int port = 0;

    static serve::EngineConfig engine_config(serve::EngineConfig c) {
        if (c.model.empty()) c.model = kTinyModel;
        c.version = "sd test";
        return c;
    }
    explicit TestServer(serve::EngineConfig ec = {}, serve::ApiConfig ac = {}, http::ServerConfig sc = {})
        : engine(engine_config(std::move(ec))),
          api(engine, std::move(ac)),
          server(with_port0(std::move(sc)), [this](const http::Request& r, std::shared_ptr<http::Responder> out) {
              api.handle(r, std::move(out));
          }) {
        port = server.bind_and_listen();
        engine.start();
        loop = std::thread([this] { server.run(); });
    }
    ~TestServer() {
        server.stop();
        engine.shutdown(0);
        loop.join();
    }
    static http::ServerConfig with_port0(http::ServerConfig c) {
        c.port = 0;
        return c;
    }
};

// A private hash cache: model_hash() must not write into the user's ~/.cache.
struct CacheDir {
    std::string dir;
    CacheDir() {
        char tmpl[] = "/tmp/sd_test_server_XXXXXX";
        dir = mkdtemp(tmpl);
        setenv("XDG_CACHE_HOME", dir.c_str(), 1);
    }
    ~CacheDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};
CacheDir& cache_dir() {
    static CacheDir c;
    return c;
}

// ---- a small HTTP client -----------------------------------------------------------------------------------------

int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, (sockaddr*)&a, sizeof a) == 0);
    return fd;
}

void send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;  // the server may close on us (that is what some cases test)
        off += (size_t)n;
    }
}

struct Reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    JsonValue json() const { return parse_json(body); }
};

// Waits up to timeout_s for bytes; false on EOF, error or timeout.
bool recv_more(int fd, std::string& buf, double timeout_s) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, (int)(timeout_s * 1000)) <= 0) return false;
    char tmp[65536];
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, (size_t)n);
    return true;
}

// One response from fd (buf keeps what belongs to the next, for pipelining); 1xx responses are skipped.
bool read_reply(int fd, std::string& buf, Reply* r, double timeout_s = 60, bool head_only = false) {
    const double until = now_s() + timeout_s;
    for (;;) {
        size_t end;
        while ((end = buf.find("\r\n\r\n")) == std::string::npos)
            if (!recv_more(fd, buf, until - now_s())) return false;
        *r = Reply{};
        std::string head = buf.substr(0, end);
        if (std::sscanf(head.c_str(), "HTTP/1.1 %d", &r->status) != 1) return false;
        size_t b = head.find("\r\n");
        while (b != std::string::npos) {
            size_t e = head.find("\r\n", b + 2);
            std::string line = head.substr(b + 2, e == std::string::npos ? std::string::npos : e - b - 2);
            size_t c = line.find(':');
            if (c != std::string::npos) {
                std::string k = line.substr(0, c);
                for (char& ch : k) ch = (char)std::tolower((unsigned char)ch);
                r->headers[k] = line.substr(c + 2);
            }
            b = e;
        }
        buf.erase(0, end + 4);
        if (r->status >= 100 && r->status < 200) continue;
        size_t len = r->headers.count("content-length") && !head_only ? std::stoul(r->headers["content-length"]) : 0;
        while (buf.size() < len)
            if (!recv_more(fd, buf, until - now_s())) return false;
        r->body = buf.substr(0, len);
        buf.erase(0, len);
        return true;
    }
}

std::string request_text(const std::string& method, const std::string& path, const std::string& body = "",
                         const std::string& extra = "", bool close = true) {
    std::string s = method + " " + path + " HTTP/1.1\r\nHost: test\r\n" + extra;
    if (close) s += "Connection: close\r\n";
    if (!body.empty() || method == "POST") s += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return s + "\r\n" + body;
}

Reply call(int port, const std::string& method, const std::string& path, const std::string& body = "",
           const std::string& extra = "", double timeout_s = 120) {
    int fd = dial(port);
    send_all(fd, request_text(method, path, body, extra));
    std::string buf;
    Reply r;
    bool ok = read_reply(fd, buf, &r, timeout_s, method == "HEAD");
    close(fd);
    CHECK_MESSAGE(ok, method << " " << path << ": no complete response");
    return r;
}

// True when the server closed the connection (EOF) within timeout_s, draining what it sent.
bool closed_by_server(int fd, double timeout_s, std::string* got = nullptr) {
    const double until = now_s() + timeout_s;
    std::string buf;
    while (now_s() < until) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) {
            if (got) *got = buf;
            return true;
        }
        buf.append(tmp, (size_t)n);
    }
    if (got) *got = buf;
    return false;
}

std::string tiny_job(int steps, uint64_t seed, const std::string& extra = "") {
    return "{\"prompt\":\"a red cube\",\"steps\":" + std::to_string(steps) + ",\"width\":64,\"height\":64,\"seed\":" +
           std::to_string(seed) + (extra.empty() ? "" : "," + extra) + "}";
}

const JsonValue& member(const JsonValue& v, const char* key) {
    const JsonValue* m = v.get(key);
    REQUIRE_MESSAGE(m != nullptr, "missing key " << key);
    return *m;
}

// Under the emulator (`make test-aarch64`) this whole process runs some 30× slower.
double slowdown() { return sd::test::slowdown(); }

// A request made on another thread. Whatever ends the case early (a failed REQUIRE throws), the engine is
// interrupted and the thread joined first: a joinable std::thread destroyed during unwinding would abort the run.
struct Background {
    serve::Engine& engine;
    std::thread t;
    template <class F> Background(serve::Engine& e, F f) : engine(e), t(std::move(f)) {}
    void join() { t.join(); }
    ~Background() {
        if (!t.joinable()) return;
        engine.interrupt();
        t.join();
    }
};

// Waits until the running job has made a step (or times out).
bool wait_for_step(int port, double timeout_s = 30) {
    const double until = now_s() + timeout_s * slowdown();
    while (now_s() < until) {
        Reply p = call(port, "GET", "/sdapi/v1/progress?skip_current_image=true");
        JsonValue j = p.json();
        if (member(member(j, "state"), "sampling_step").number >= 1) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

}  // namespace

// ---- the parser and codecs ---------------------------------------------------------------------------------------

TEST_CASE("http: a request is parsed whole, pipelined bytes are left for the next") {
    http::Request r;
    std::string two = "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Thing:  v  \r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\n"
                      "Content-Length: 3\r\n\r\nabc";
    http::ParseResult p = http::parse_request(two.data(), two.size(), {}, &r);
    REQUIRE(p.status == http::Parse::complete);
    CHECK(r.method == "GET");
    CHECK(r.path == "/a");
    CHECK(r.query == "x=1");
    CHECK(*r.header("x-thing") == "v");
    CHECK(r.keep_alive);
    std::string rest = two.substr(p.consumed);
    p = http::parse_request(rest.data(), rest.size(), {}, &r);
    REQUIRE(p.status == http::Parse::complete);
    CHECK(r.body == "abc");
    CHECK(p.consumed == rest.size());
    // Every prefix of a valid request is incomplete, never an error.
    for (size_t n = 0; n < rest.size(); n++) CHECK(http::parse_request(rest.data(), n, {}, &r).status == http::Parse::incomplete);
}

TEST_CASE("http: malformed, oversized and unsupported requests get the right status") {
    http::Limits lim;
    lim.max_header_bytes = 1024;
    lim.max_body_bytes = 100;
    auto status = [&](const std::string& s) {
        http::Request r;
        http::ParseResult p = http::parse_request(s.data(), s.size(), lim, &r);
        return p.status == http::Parse::error ? p.error_status : p.status == http::Parse::complete ? 200 : 0;
    };
    CHECK(status("GET / HTTP/1.1\r\nHost: h\r\n\r\n") == 200);
    CHECK(status("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(2000, 'a') + "\r\n\r\n") == 431);
    CHECK(status("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(2000, 'a')) == 431);  // never finished
    CHECK(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n") == 413);
    CHECK(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n") == 400);
    CHECK(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n") == 400);
    CHECK(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == 400);
    CHECK(status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n") == 501);
    CHECK(status("GET / HTTP/1.1\r\n\r\n") == 400);                          // no Host
    CHECK(status("GET / HTTP/1.0\r\n\r\n") == 200);                          // 1.0 needs none
    CHECK(status("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505);
    CHECK(status("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n") == 400);
    CHECK(status("GET / HTTP/1.1\nHost: h\n\n") == 0);                     // bare LF: never a header end ...
    CHECK(status("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n") == 400);         // ... and refused inside one
    CHECK(status("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
    CHECK(status("GET nothing HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
    CHECK(status("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
    CHECK(status("GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n") == 400);
    CHECK(status("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n") == 400);
    CHECK(status(std::string("\x16\x03\x01\x02\x00", 5)) == 400);          // TLS hello: refused at once
    // NUL is not a token character (std::strchr finds the string's terminator: a fuzzing finding).
    const char nul_name[] = "GET / HTTP/1.1\r\nHost: h\r\nX\0Y: v\r\n\r\n", nul_method[] = "GE\0T / HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK(status(std::string(nul_name, sizeof nul_name - 1)) == 400);
    CHECK(status(std::string(nul_method, sizeof nul_method - 1)) == 400);
}

TEST_CASE("http: keep-alive rules, Expect: 100-continue, response framing") {
    http::Request r;
    std::string s = "GET / HTTP/1.0\r\n\r\n";
    REQUIRE(http::parse_request(s.data(), s.size(), {}, &r).status == http::Parse::complete);
    CHECK_FALSE(r.keep_alive);
    s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    REQUIRE(http::parse_request(s.data(), s.size(), {}, &r).status == http::Parse::complete);
    CHECK_FALSE(r.keep_alive);
    s = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    http::ParseResult p = http::parse_request(s.data(), s.size(), {}, &r);
    CHECK(p.status == http::Parse::incomplete);
    CHECK(p.headers_done);
    CHECK(r.expect_continue);
    http::Response resp;
    resp.body = "{}";
    std::string text = http::serialize(resp, true);
    CHECK(text == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}");
    CHECK(http::serialize(resp, false, true).find("{}") == std::string::npos);  // HEAD: no body
}

TEST_CASE("http: base64, percent-decoding, constant-time compare and basic auth") {
    for (size_t n = 0; n < 10; n++) {
        std::string s;
        for (size_t i = 0; i < n; i++) s += (char)(i * 37 + 200);
        std::vector<uint8_t> back;
        REQUIRE(http::base64_decode(http::base64_encode(s.data(), s.size()), &back));
        CHECK(std::string(back.begin(), back.end()) == s);
    }
    std::vector<uint8_t> out;
    CHECK(http::base64_decode("data:image/png;base64,aGk=", &out));
    CHECK(std::string(out.begin(), out.end()) == "hi");
    CHECK_FALSE(http::base64_decode("a", &out));
    CHECK_FALSE(http::base64_decode("aGk=aGk=", &out));
    CHECK_FALSE(http::base64_decode("a*b=", &out));
    std::string v;
    CHECK(http::query_param("a=1&skip_current_image=tr%75e&b", "skip_current_image", &v));
    CHECK(v == "true");
    CHECK_FALSE(http::query_param("a=1", "b", &v));
    CHECK(http::constant_time_equal("secret", "secret"));
    CHECK_FALSE(http::constant_time_equal("secret", "secreT"));
    CHECK_FALSE(http::constant_time_equal("secret", "secret2"));
    CHECK_FALSE(http::constant_time_equal("", "x"));
    auto creds = http::parse_credentials("alice:pw1,bob:p:w");
    REQUIRE(creds.size() == 2);
    CHECK(creds[1].second == "p:w");
    CHECK_THROWS(http::parse_credentials("nocolon"));
    CHECK_THROWS(http::parse_credentials(":pw"));
    std::string good = "Basic " + http::base64_encode("bob:p:w", 7), bad = "Basic " + http::base64_encode("bob:p:x", 7);
    CHECK(http::basic_auth_ok(&good, creds));
    CHECK_FALSE(http::basic_auth_ok(&bad, creds));
    CHECK_FALSE(http::basic_auth_ok(nullptr, creds));
    std::string garbage = "Basic !!!";
    CHECK_FALSE(http::basic_auth_ok(&garbage, creds));
}

TEST_CASE("json writer: nesting, escapes and Python float text read back by our parser") {
    JsonWriter w;
    w.object().key("a").value(7.0).key("b").value(0.1).key("c").array().value("x\"\n\x01").value(true).null().end();
    w.key("d").value((int64_t)-3).key("e").object().end().key("f").value(1e20).end();
    CHECK(w.str() == "{\"a\":7.0,\"b\":0.1,\"c\":[\"x\\\"\\n\\u0001\",true,null],\"d\":-3,\"e\":{},\"f\":1e+20}");
    JsonValue v = parse_json(w.str());
    CHECK(v.get("c")->items[0].text == "x\"\n\x01");
    CHECK(write_json(v) == w.str());
    CHECK(json_float(NAN) == "null");
}

// ---- reading API requests ----------------------------------------------------------------------------------------

TEST_CASE("txt2img request: the webui's defaults, pydantic's coercions, unknown fields ignored") {
    serve::Txt2ImgRequest t;
    std::vector<serve::FieldError> errors;
    REQUIRE(serve::parse_txt2img("{}", {}, &t, &errors));
    CHECK(t.steps == 50);  // StableDiffusionProcessing's default, not the UI's 20
    CHECK(t.width == 512);
    CHECK(t.cfg_scale == 7.0);
    CHECK(t.seed == -1);
    CHECK(t.sampler == SamplerKind::euler);  // sampler_index defaults to "Euler"
    CHECK(t.sampler_label == "Euler");
    CHECK(t.send_images);
    JsonValue params = parse_json(t.parameters_json);
    CHECK(params.get("sampler_index")->text == "Euler");
    CHECK(params.get("sampler_name")->kind == JsonKind::null);
    CHECK(params.get("steps")->text == "50");
    t = {};
    REQUIRE(serve::parse_txt2img("{\"steps\":\"20\",\"cfg_scale\":\"4.5\",\"width\":128.9,\"prompt\":5,\"send_images\":"
                                 "\"false\",\"no_such_field\":[1,2],\"sampler_name\":\"DPM++ 2M Karras\","
                                 "\"seed\":null}",
                                 {}, &t, &errors));
    CHECK(t.steps == 20);
    CHECK(t.cfg_scale == 4.5);
    CHECK(t.width == 128);
    CHECK(t.prompt == "5");
    CHECK_FALSE(t.send_images);
    CHECK(t.seed == -1);
    CHECK(t.sampler == SamplerKind::dpmpp_2m);
    CHECK(t.schedule == ScheduleKind::karras);
    CHECK(errors.empty());
    CHECK(parse_json(t.parameters_json).get("steps")->text == "20");  // coerced, as pydantic echoes it
}

// StableDiffusionImg2ImgProcessingAPI (modules/api/models.py) and img2imgapi's handling of init_images and mask.
TEST_CASE("img2img request: the webui's fields and defaults, init image and mask, refusals naming the field") {
    const std::string png = "iVBORw0KGgo=";  // base64 of the PNG signature: decoding the image comes later
    serve::Img2ImgRequest r;
    std::vector<serve::FieldError> errors;
    REQUIRE(serve::parse_img2img("{\"init_images\":[\"data:image/png;base64," + png + "\"],\"prompt\":\"a cat\"}", {},
                                 &r, &errors));
    CHECK(r.init_image.size() == 8);
    CHECK(r.init_image[1] == 'P');
    CHECK(r.mask.empty());
    CHECK(r.prompt == "a cat");
    CHECK(r.steps == 50);
    CHECK(r.denoising_strength == 0.75);
    CHECK(r.resize_mode == 0);
    CHECK(r.mask_blur_x == 4);
    CHECK(r.mask_blur_y == 4);
    CHECK(r.inpainting_fill == 0);
    CHECK(r.inpaint_full_res);
    JsonValue params = parse_json(r.parameters_json);
    CHECK(params.get("init_images")->kind == JsonKind::null);  // cleared unless include_init_images
    CHECK(params.get("mask")->kind == JsonKind::null);
    CHECK(params.get("include_init_images") == nullptr);          // exclude=True in the webui's model
    CHECK(params.get("denoising_strength")->text == "0.75");
    CHECK(params.get("mask_blur")->kind == JsonKind::null);      // a property there: no default
    CHECK(params.get("resize_mode")->text == "0");
    CHECK(params.get("inpainting_mask_invert")->text == "0");
    CHECK(params.get("sampler_index")->text == "Euler");
    CHECK(params.keys.front() == "prompt");
    CHECK(params.keys.back() == "infotext");
    r = {};
    REQUIRE(serve::parse_img2img("{\"init_images\":[\"" + png + "\"],\"mask\":\"" + png + "\",\"mask_blur\":\"8\","
                                 "\"denoising_strength\":\"0.5\",\"resize_mode\":2,\"inpainting_fill\":1,"
                                 "\"inpaint_full_res\":false,\"include_init_images\":true}",
                                 {}, &r, &errors));
    CHECK(r.mask.size() == 8);
    CHECK(r.mask_blur_x == 8);  // mask_blur sets both, as its setter does
    CHECK(r.mask_blur_y == 8);
    CHECK(r.denoising_strength == 0.5);
    CHECK(r.resize_mode == 2);
    CHECK(r.inpainting_fill == 1);
    CHECK_FALSE(r.inpaint_full_res);
    params = parse_json(r.parameters_json);
    CHECK(params.get("init_images")->items.size() == 1);
    CHECK(params.get("mask")->text == png);
    CHECK(params.get("denoising_strength")->text == "0.5");

    auto first_error = [](const std::string& body) {
        serve::Img2ImgRequest t;
        std::vector<serve::FieldError> errs;
        REQUIRE_FALSE(serve::parse_img2img(body, {}, &t, &errs));
        REQUIRE(!errs.empty());
        std::string where;
        for (size_t i = 1; i < errs[0].loc.size(); i++) where += (i > 1 ? "." : "") + parse_json(errs[0].loc[i]).text;
        return where + " " + errs[0].msg;
    };
    CHECK(first_error("{}") == "init_images Init image not found");
    CHECK(first_error("{\"init_images\":null}") == "init_images Init image not found");
    CHECK(first_error("{\"init_images\":[]}") == "init_images init_images must hold exactly one image, it holds 0");
    CHECK(first_error("{\"init_images\":\"x\"}") == "init_images value is not a valid list");
    CHECK(first_error("{\"init_images\":[5]}") == "init_images.0 str type expected");
    CHECK(first_error("{\"init_images\":[\"***\"]}") == "init_images init_images[0] is not a base64 image");
    const std::string init = "{\"init_images\":[\"" + png + "\"],";
    CHECK(first_error(init + "\"mask\":\"%%\"}") == "mask mask is not a base64 image");
    CHECK(first_error(init + "\"denoising_strength\":1.5}") ==
          "denoising_strength denoising_strength must be between 0 and 1");
    CHECK(first_error(init + "\"resize_mode\":4}").find("resize_mode resize_mode must be 0") == 0);
    CHECK(first_error(init + "\"inpainting_fill\":-1}").find("inpainting_fill inpainting_fill must be 0") == 0);
    CHECK(first_error(init + "\"mask_blur_x\":-1}") == "mask_blur_x ensure this value is greater than or equal to 0");
    CHECK(first_error(init + "\"image_cfg_scale\":1.5}") == "image_cfg_scale image_cfg_scale is not supported by this server");
    CHECK(first_error(init + "\"steps\":\"many\"}") == "steps value is not a valid integer");
    CHECK(first_error(init + "\"width\":100}") == "width width must be a positive multiple of 64, got 100");
}

TEST_CASE("txt2img request: wrong types, bad values and limits name the field in the 422 detail") {
    auto first_error = [](const std::string& body, serve::ApiLimits lim = {}) {
        serve::Txt2ImgRequest t;
        std::vector<serve::FieldError> errors;
        bool ok = serve::parse_txt2img(body, lim, &t, &errors);
        REQUIRE_FALSE(ok);
        REQUIRE(!errors.empty());
        JsonValue d = parse_json(serve::detail_json(errors));
        const JsonValue& e = d.get("detail")->items[0];
        std::string loc;
        for (const auto& l : e.get("loc")->items) loc += (loc.empty() ? "" : ".") + (l.kind == JsonKind::string ? l.text : "#");
        return loc + " " + e.get("type")->text;
    };
    CHECK(first_error("{\"steps\":\"many\"}") == "body.steps type_error.integer");
    CHECK(first_error("{\"steps\":[1]}") == "body.steps type_error.integer");
    CHECK(first_error("{\"cfg_scale\":{}}") == "body.cfg_scale type_error.float");
    CHECK(first_error("{\"prompt\":[\"a\"]}") == "body.prompt type_error.str");
    CHECK(first_error("{\"send_images\":\"maybe\"}") == "body.send_images type_error.bool");
    CHECK(first_error("{\"override_settings\":[]}") == "body.override_settings type_error.dict");
    CHECK(first_error("{\"steps\":0}") == "body.steps value_error.number.not_ge");
    CHECK(first_error("{\"steps\":151}") == "body.steps value_error.number.not_le");
    CHECK(first_error("{\"width\":100}") == "body.width value_error");
    CHECK(first_error("{\"width\":2048,\"height\":2048}") == "body.width value_error");
    CHECK(first_error("{\"batch_size\":4,\"n_iter\":5}") == "body.n_iter value_error");
    CHECK(first_error("{\"sampler_name\":\"Nope\"}") == "body.sampler_name value_error");
    CHECK(first_error("{\"scheduler\":\"nope\"}") == "body.scheduler value_error");
    // The hires fix: what its second pass cannot do differently here, and sizes past the limits, before any work.
    CHECK(first_error("{\"enable_hr\":true,\"hr_checkpoint_name\":\"other\"}") == "body.hr_checkpoint_name value_error");
    CHECK(first_error("{\"enable_hr\":true,\"hr_sampler_name\":\"DDIM\"}") == "body.hr_sampler_name value_error");
    CHECK(first_error("{\"enable_hr\":true,\"hr_scheduler\":\"Karras\"}") == "body.hr_scheduler value_error");
    CHECK(first_error("{\"enable_hr\":true,\"hr_prompt\":\"a dog\"}") == "body.hr_prompt value_error");
    CHECK(first_error("{\"enable_hr\":true,\"hr_negative_prompt\":\"a dog\"}") == "body.hr_negative_prompt value_error");
    CHECK(first_error("{\"enable_hr\":true,\"hr_scale\":0.5}") == "body.hr_scale value_error");
    CHECK(first_error("{\"enable_hr\":true,\"hr_scale\":2.5}") == "body.hr_scale value_error");  // 1280x1280
    CHECK(first_error("{\"enable_hr\":true,\"hr_scale\":1.1}") == "body.hr_scale value_error");  // 563: not /64
    CHECK(first_error("{\"enable_hr\":true,\"hr_resize_x\":-64}") == "body.hr_resize_x value_error.number.not_ge");
    CHECK(first_error("{\"enable_hr\":true,\"hr_resize_y\":4096}") == "body.hr_resize_y value_error.number.not_le");
    CHECK(first_error("{\"enable_hr\":true,\"width\":64,\"height\":2048,\"hr_resize_x\":2048}") ==
          "body.hr_resize_x value_error");  // upscaled to 2048x65536 before the crop
    CHECK(first_error("{\"enable_hr\":true,\"hr_second_pass_steps\":151}") ==
          "body.hr_second_pass_steps value_error.number.not_le");
    CHECK(first_error("{\"enable_hr\":true,\"denoising_strength\":0}") == "body.denoising_strength value_error");
    CHECK(first_error("{\"enable_hr\":\"maybe\"}") == "body.enable_hr type_error.bool");
    {  // the webui's defaults for "same as the first pass" are accepted
        serve::Txt2ImgRequest t;
        std::vector<serve::FieldError> errors;
        CHECK(serve::parse_txt2img("{\"enable_hr\":true,\"prompt\":\"a\",\"hr_prompt\":\"a\",\"hr_checkpoint_name\":"
                                   "\"Use same checkpoint\",\"hr_sampler_name\":\"Euler\",\"hr_scale\":1.5}",
                                   serve::ApiLimits{}, &t, &errors));
        CHECK(t.enable_hr);
        CHECK(t.hr_scale == 1.5);
        CHECK(t.denoising_strength == 0.75);
    }
    CHECK(first_error("{\"seed\":-2}") == "body.seed value_error.number.not_ge");
    CHECK(first_error("{\"override_settings\":{\"CLIP_stop_at_last_layers\":\"x\"}}") ==
          "body.override_settings.CLIP_stop_at_last_layers type_error.integer");
    CHECK(first_error("{\"steps\": 1,}") == "body.# value_error.jsondecode");
    CHECK(first_error("[1,2]") == "body type_error.dict");
    CHECK(first_error("") == "body value_error.missing");
    serve::ApiLimits lim;
    lim.max_steps = 10;
    CHECK(first_error("{\"steps\":11}", lim) == "body.steps value_error.number.not_le");
}

TEST_CASE("png-info: the webui's parse_generation_parameters on our own infotext") {
    InfoText it;
    it.prompt = "a cat, best\nsecond line";
    it.negative_prompt = "dog";
    it.steps = 20;
    it.sampler = "DPM++ 2M";
    it.schedule_type = "Karras";
    it.seed = 42;
    it.width = 512;
    it.height = 768;
    it.model_name = "v1,5";  // quoted in the infotext
    JsonValue p = parse_json(serve::parse_generation_parameters_json(format_infotext(it)));
    CHECK(p.get("Prompt")->text == "a cat, best\nsecond line");
    CHECK(p.get("Negative prompt")->text == "dog");
    CHECK(p.get("Steps")->text == "20");
    CHECK(p.get("Sampler")->text == "DPM++ 2M");
    CHECK(p.get("Schedule type")->text == "Karras");
    CHECK(p.get("Size-1")->text == "512");
    CHECK(p.get("Size-2")->text == "768");
    CHECK(p.get("Model")->text == "v1,5");
    CHECK(p.get("Clip skip")->text == "1");
    // The schedule settings: 0 (a number) when the infotext has none, else their value under the setting's name
    CHECK(p.get("Schedule min sigma")->text == "0");
    CHECK(p.get("Schedule rho")->kind == JsonKind::number);
    JsonValue sch = parse_json(serve::parse_generation_parameters_json("p\nSteps: 2, Schedule min sigma: 0.1, Schedule rho: 5.0, Seed: 1"));
    CHECK(sch.get("Schedule min sigma")->text == "0.1");
    CHECK(sch.get("sigma_min")->kind == JsonKind::number);
    CHECK(sch.get("sigma_min")->number == 0.1);
    CHECK(sch.get("rho")->number == 5.0);
    CHECK(sch.get("Schedule max sigma")->number == 0);
    CHECK(sch.get("sigma_max") == nullptr);
    // A key twice (here "Negative prompt" again in the parameters line): one key, the last value, as a Python dict.
    JsonValue d = parse_json(serve::parse_generation_parameters_json("p\nNegative prompt: a\nSteps: 2, Negative prompt: b, Seed: 1, Seed: 3"));
    CHECK(d.get("Negative prompt")->text == "b");
    CHECK(d.get("Seed")->text == "3");
    CHECK(serve::to_utf8("caf\xe9") == "caf\xc3\xa9");
    CHECK(serve::to_utf8("caf\xc3\xa9") == "caf\xc3\xa9");
}

// ---- a live server -----------------------------------------------------------------------------------------------

TEST_CASE("server: every list route answers 200 with the webui's shapes") {
    cache_dir();
    TestServer s;
    Reply r = call(s.port, "GET", "/sdapi/v1/samplers");
    CHECK(r.status == 200);
    CHECK(r.headers["content-type"] == "application/json");
    JsonValue j = r.json();
    REQUIRE(j.kind == JsonKind::array);
    bool euler_a = false;
    for (const auto& it : j.items) {
        CHECK(member(it, "aliases").kind == JsonKind::array);
        CHECK(member(it, "options").kind == JsonKind::object);
        euler_a |= member(it, "name").text == "Euler a";
    }
    CHECK(euler_a);
    j = call(s.port, "GET", "/sdapi/v1/schedulers").json();
    REQUIRE(j.kind == JsonKind::array);
    CHECK(member(j.items[0], "name").text == "automatic");
    CHECK(member(j.items[0], "label").text == "Automatic");
    j = call(s.port, "GET", "/sdapi/v1/sd-models").json();
    REQUIRE(j.items.size() == 1);
    CHECK(member(j.items[0], "title").text == "tiny_sd.safetensors");
    CHECK(member(j.items[0], "model_name").text == "tiny_sd");
    CHECK(member(j.items[0], "filename").text.find("tiny_sd.safetensors") != std::string::npos);
    for (const char* p : {"/sdapi/v1/sd-vae", "/sdapi/v1/loras", "/sdapi/v1/hypernetworks", "/sdapi/v1/face-restorers",
                          "/sdapi/v1/prompt-styles"}) {  // no loras/ beside the tiny model; upscalers: see below
        r = call(s.port, "GET", p);
        CHECK(r.status == 200);
        CHECK(r.body == "[]");
    }
    j = call(s.port, "GET", "/sdapi/v1/embeddings").json();
    CHECK(member(j, "loaded").kind == JsonKind::object);
    CHECK(member(j, "skipped").kind == JsonKind::object);
    j = call(s.port, "GET", "/sdapi/v1/options").json();
    CHECK(member(j, "sd_model_checkpoint").text == "tiny_sd.safetensors");
    CHECK(member(j, "CLIP_stop_at_last_layers").text == "1");
    j = call(s.port, "GET", "/sdapi/v1/progress").json();
    CHECK(member(j, "progress").number == 0);
    CHECK(member(j, "eta_relative").number == 0);
    CHECK(member(member(j, "state"), "job_count").number == 0);
    CHECK(member(j, "current_image").kind == JsonKind::null);
    r = call(s.port, "GET", "/");
    CHECK(r.status == 200);
    CHECK(r.headers["content-type"].find("text/html") == 0);
    CHECK(r.body.find("<html") != std::string::npos);
    r = call(s.port, "HEAD", "/sdapi/v1/samplers");
    CHECK(r.status == 200);
    CHECK(r.body.empty());
    r = call(s.port, "POST", "/sdapi/v1/refresh-checkpoints");
    CHECK(r.status == 200);
    CHECK(r.body == "null");
}

TEST_CASE("server: unknown paths, wrong methods and bad bodies get FastAPI's status and shape") {
    cache_dir();
    TestServer s;
    Reply r = call(s.port, "GET", "/sdapi/v1/nothing");
    CHECK(r.status == 404);
    CHECK(r.body == "{\"detail\":\"Not Found\"}");
    r = call(s.port, "GET", "/sdapi/v1/txt2img");
    CHECK(r.status == 405);
    CHECK(r.body == "{\"detail\":\"Method Not Allowed\"}");
    CHECK(r.headers["allow"] == "POST");
    r = call(s.port, "POST", "/sdapi/v1/txt2img", "{\"steps\": ");
    CHECK(r.status == 422);
    JsonValue j = r.json();
    CHECK(member(j.get("detail")->items[0], "type").text == "value_error.jsondecode");
    r = call(s.port, "POST", "/sdapi/v1/txt2img", "{\"width\": \"wide\"}");
    CHECK(r.status == 422);
    CHECK(r.body.find("\"loc\":[\"body\",\"width\"]") != std::string::npos);
    r = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(2, 1, "\"override_settings\":{\"sd_model_checkpoint\":\"x\"}"));
    CHECK(r.status == 422);
    CHECK(r.body.find("\"override_settings\",\"sd_model_checkpoint\"") != std::string::npos);
    r = call(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\":\"missing.safetensors\"}");
    CHECK(r.status == 422);
    r = call(s.port, "POST", "/sdapi/v1/options", "{\"CLIP_stop_at_last_layers\":99}");
    CHECK(r.status == 422);
    r = call(s.port, "POST", "/sdapi/v1/png-info", "{\"image\":\"***\"}");
    CHECK(r.status == 422);
    r = call(s.port, "POST", "/sdapi/v1/png-info", "{\"image\":\"aGVsbG8gd29ybGQ=\"}");  // "hello world"
    CHECK(r.status == 422);
    r = call(s.port, "POST", "/sdapi/v1/png-info", "{}");
    CHECK(r.status == 422);
    r = call(s.port, "GET", "/sdapi/v1/progress?skip_current_image=perhaps");
    CHECK(r.status == 422);
}

TEST_CASE("server: txt2img answers the webui's response; png-info reads the PNG back") {
    cache_dir();
    TestServer s;
    Reply r = call(s.port, "POST", "/sdapi/v1/txt2img",
                   tiny_job(2, 77, "\"batch_size\":2,\"negative_prompt\":\"blur\",\"sampler_name\":\"Euler a\","
                                   "\"unknown\":{\"x\":1}"));
    REQUIRE(r.status == 200);
    JsonValue j = r.json();
    REQUIRE(member(j, "images").items.size() == 2);
    CHECK(member(member(j, "parameters"), "prompt").text == "a red cube");
    CHECK(member(member(j, "parameters"), "sampler_name").text == "Euler a");
    CHECK(member(member(j, "parameters"), "batch_size").text == "2");
    JsonValue info = parse_json(member(j, "info").text);
    CHECK(member(info, "seed").text == "77");
    REQUIRE(member(info, "all_seeds").items.size() == 2);
    CHECK(member(info, "all_seeds").items[1].text == "78");
    CHECK(member(info, "sampler_name").text == "Euler a");
    CHECK(member(info, "sd_model_name").text == "tiny_sd");
    CHECK(member(info, "sd_model_hash").text.size() == 10);
    REQUIRE(member(info, "infotexts").items.size() == 2);
    const std::string infotext = member(info, "infotexts").items[1].text;
    CHECK(infotext.find("Seed: 78") != std::string::npos);
    // The webui v1.10 writes no "Batch size" / "Batch pos" (create_infotext lost them in January 2023, commit
    // 00dab8f1 "remove Batch size and Batch pos from textinfo"); a batch's infotexts differ only in the seed.
    CHECK(infotext.find("Batch") == std::string::npos);
    std::string first = member(info, "infotexts").items[0].text;
    first.replace(first.find("Seed: 77"), 8, "Seed: 78");
    CHECK(first == infotext);
    CHECK(infotext.find("Negative prompt: blur") != std::string::npos);
    // The image: a 64x64 PNG whose parameters chunk is the infotext.
    std::vector<uint8_t> png;
    REQUIRE(http::base64_decode(member(j, "images").items[1].text, &png));
    auto text = read_png_text(png);
    REQUIRE(!text.empty());
    CHECK(text[0].first == "parameters");
    CHECK(text[0].second == infotext);
    // png-info on it, as the webui's PNG Info tab.
    Reply pi = call(s.port, "POST", "/sdapi/v1/png-info", "{\"image\":\"data:image/png;base64," +
                                                              member(j, "images").items[1].text + "\"}");
    REQUIRE(pi.status == 200);
    JsonValue pj = pi.json();
    CHECK(member(pj, "info").text == infotext);
    CHECK(member(member(pj, "parameters"), "Seed").text == "78");
    CHECK(member(member(pj, "parameters"), "Size-1").text == "64");
    CHECK(member(pj, "items").kind == JsonKind::object);
    // Same seed, same image; send_images false sends none.
    Reply again = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(2, 78, "\"sampler_name\":\"Euler a\",\"negative_prompt\":\"blur\""));
    CHECK(member(again.json(), "images").items[0].text == member(j, "images").items[1].text);
    Reply none = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(1, 1, "\"send_images\":false"));
    CHECK(member(none.json(), "images").items.empty());
}

TEST_CASE("server: options switch the checkpoint among --models-dir files; override_settings per request") {
    cache_dir();
    std::string dir = cache_dir().dir + "/models";
    fs::create_directories(dir + "/sub");
    fs::copy_file(kTinyModel, dir + "/sub/other.safetensors", fs::copy_options::overwrite_existing);
    serve::EngineConfig ec;
    ec.models_dir = dir;
    TestServer s(ec);
    JsonValue models = call(s.port, "GET", "/sdapi/v1/sd-models").json();
    REQUIRE(models.items.size() == 2);
    CHECK(member(models.items[0], "title").text == "sub/other.safetensors");
    Reply r = call(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\":\"sub/other\",\"unknown_option\":1}");
    CHECK(r.status == 200);
    JsonValue o = call(s.port, "GET", "/sdapi/v1/options").json();
    CHECK(member(o, "sd_model_checkpoint").text == "sub/other.safetensors");
    r = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(1, 3));
    REQUIRE(r.status == 200);
    CHECK(member(parse_json(member(r.json(), "info").text), "sd_model_name").text == "other");
    // After a job the hash is known and shows in the title, as in the webui.
    o = call(s.port, "GET", "/sdapi/v1/options").json();
    CHECK(member(o, "sd_model_checkpoint").text.find("sub/other.safetensors [") == 0);
    r = call(s.port, "POST", "/sdapi/v1/txt2img",
             tiny_job(1, 3, "\"override_settings\":{\"sd_model_checkpoint\":\"tiny_sd.safetensors\","
                            "\"CLIP_stop_at_last_layers\":2}"));
    REQUIRE(r.status == 200);
    JsonValue info = parse_json(member(r.json(), "info").text);
    CHECK(member(info, "sd_model_name").text == "tiny_sd");
    CHECK(member(info, "clip_skip").text == "2");
    CHECK(member(info, "infotexts").items[0].text.find("Clip skip: 2") != std::string::npos);
}

TEST_CASE("server: progress during a job, with a live preview; interrupt and skip") {
    cache_dir();
    TestServer s;
    // A long job in the background; progress shows it running, then interrupt ends it early.
    Reply result;
    Background t(s.engine, [&] { result = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(150, 5, "\"n_iter\":3"), "", 600); });
    REQUIRE(wait_for_step(s.port));
    JsonValue p;
    // A preview is rendered at the step after someone asked (the first one loads TAESD: seconds under TSan).
    for (const double until = now_s() + 60 * slowdown(); now_s() < until;) {
        p = call(s.port, "GET", "/sdapi/v1/progress").json();
        if (member(p, "current_image").kind == JsonKind::string) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (member(p, "current_image").kind != JsonKind::string) {  // end the job before failing: t must be joined
        call(s.port, "POST", "/sdapi/v1/interrupt");
        t.join();
        FAIL("no live preview within 60 s");
    }
    CHECK(member(member(p, "state"), "job").text == "txt2img");
    CHECK(member(member(p, "state"), "job_count").text == "3");
    CHECK(member(member(p, "state"), "sampling_steps").text == "150");
    CHECK(member(p, "progress").number > 0);
    REQUIRE(member(p, "current_image").kind == JsonKind::string);
    std::vector<uint8_t> preview;
    REQUIRE(http::base64_decode(member(p, "current_image").text, &preview));
    CHECK(preview.size() > 8);
    CHECK(preview[1] == 'P');
    Reply ir = call(s.port, "POST", "/sdapi/v1/interrupt");
    CHECK(ir.status == 200);
    CHECK(ir.body == "{}");
    t.join();
    REQUIRE(result.status == 200);
    CHECK(member(result.json(), "images").items.size() < 3);  // stopped: not all three images were made
    // Skip drops the current image only: 2 planned, 1 made.
    Background t2(s.engine, [&] { result = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(150, 5, "\"n_iter\":2"), "", 600); });
    REQUIRE(wait_for_step(s.port));
    CHECK(call(s.port, "POST", "/sdapi/v1/skip").status == 200);
    t2.join();
    REQUIRE(result.status == 200);
    CHECK(member(result.json(), "images").items.size() == 1);
    CHECK(member(call(s.port, "GET", "/sdapi/v1/progress").json(), "state").get("job")->text.empty());
}

TEST_CASE("server: jobs from several clients queue in order with positions; a disconnect loses nothing else") {
    cache_dir();
    TestServer s;
    std::vector<Reply> replies(3);
    std::vector<std::thread> ts;
    // The first job is long; the other two arrive while it runs and wait their turn.
    ts.emplace_back([&] { replies[0] = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(60, 1, "\"force_task_id\":\"A\"")); });
    REQUIRE(wait_for_step(s.port));
    ts.emplace_back([&] { replies[1] = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(2, 2, "\"force_task_id\":\"B\"")); });
    for (int i = 0; i < 500 && !s.engine.task("B").queued; i++) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ts.emplace_back([&] { replies[2] = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(2, 3, "\"force_task_id\":\"C\"")); });
    for (int i = 0; i < 500 && !s.engine.task("C").queued; i++) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    // A client that sends a job and hangs up: the queue goes on without it.
    int fd = dial(s.port);
    send_all(fd, request_text("POST", "/sdapi/v1/txt2img", tiny_job(2, 4)));
    close(fd);
    JsonValue c = call(s.port, "POST", "/internal/progress", "{\"id_task\":\"C\"}").json();
    CHECK(member(c, "queued").boolean);
    CHECK(member(c, "queue_position").text == "2");
    CHECK(member(c, "textinfo").text.find("In queue: 2/") == 0);
    JsonValue a = call(s.port, "POST", "/internal/progress", "{\"id_task\":\"A\"}").json();
    CHECK(member(a, "active").boolean);
    JsonValue p = call(s.port, "GET", "/sdapi/v1/progress?skip_current_image=true").json();
    CHECK(member(member(p, "state"), "queued").number >= 2);
    for (auto& t : ts) t.join();
    for (int i = 0; i < 3; i++) {
        REQUIRE(replies[i].status == 200);
        CHECK(member(parse_json(member(replies[i].json(), "info").text), "seed").text == std::to_string(i + 1));
    }
    // Still serving; the three tasks are completed.
    CHECK(member(call(s.port, "POST", "/internal/progress", "{\"id_task\":\"B\"}").json(), "completed").boolean);
    CHECK(call(s.port, "GET", "/sdapi/v1/samplers").status == 200);
}

TEST_CASE("server: pipelined requests on one connection are answered in order; keep-alive; 100-continue") {
    cache_dir();
    TestServer s;
    int fd = dial(s.port);
    send_all(fd, request_text("GET", "/sdapi/v1/samplers", "", "", false) +
                     request_text("POST", "/sdapi/v1/txt2img", tiny_job(1, 9), "", false) +
                     request_text("GET", "/sdapi/v1/nothing", "", "", false) +
                     request_text("GET", "/sdapi/v1/options", "", "", true));
    std::string buf;
    Reply r;
    REQUIRE(read_reply(fd, buf, &r));
    CHECK(r.status == 200);
    CHECK(r.body.find("Euler") != std::string::npos);
    CHECK(r.headers["connection"] == "keep-alive");
    REQUIRE(read_reply(fd, buf, &r));
    CHECK(r.status == 200);
    CHECK(r.body.find("\"images\"") != std::string::npos);
    REQUIRE(read_reply(fd, buf, &r));
    CHECK(r.status == 404);
    REQUIRE(read_reply(fd, buf, &r));
    CHECK(r.status == 200);
    CHECK(r.headers["connection"] == "close");
    CHECK(closed_by_server(fd, 5));
    close(fd);
    // Expect: 100-continue: the body follows the interim response.
    fd = dial(s.port);
    std::string body = "{\"CLIP_stop_at_last_layers\":1}";
    send_all(fd, "POST /sdapi/v1/options HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n");
    buf.clear();
    REQUIRE(recv_more(fd, buf, 10));
    CHECK(buf.find("HTTP/1.1 100 Continue\r\n\r\n") == 0);
    send_all(fd, body);
    REQUIRE(read_reply(fd, buf, &r));
    CHECK(r.status == 200);
    close(fd);
    // HTTP/1.0 closes after the answer.
    fd = dial(s.port);
    send_all(fd, "GET /internal/ping HTTP/1.0\r\n\r\n");
    std::string got;
    CHECK(closed_by_server(fd, 5, &got));
    CHECK(got.find("HTTP/1.1 200 OK") == 0);
    close(fd);
}

TEST_CASE("server: huge or malformed headers, truncated bodies and slow clients never block others") {
    cache_dir();
    http::ServerConfig sc;
    sc.request_timeout_s = 0.5;
    sc.idle_timeout_s = 1.0;
    sc.limits.max_body_bytes = 1 << 20;
    TestServer s({}, {}, sc);
    // Header section over the limit: 431, connection closed.
    int fd = dial(s.port);
    send_all(fd, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    std::string got;
    CHECK(closed_by_server(fd, 5, &got));
    CHECK(got.find("HTTP/1.1 431") == 0);
    close(fd);
    // Body over the limit: 413 before reading it.
    fd = dial(s.port);
    send_all(fd, "POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n");
    CHECK(closed_by_server(fd, 5, &got));
    CHECK(got.find("HTTP/1.1 413") == 0);
    close(fd);
    // Garbage: 400.
    fd = dial(s.port);
    send_all(fd, std::string("\x00\x01\x02 junk\r\n\r\n", 12));
    CHECK(closed_by_server(fd, 5, &got));
    CHECK(got.find("HTTP/1.1 400") == 0);
    close(fd);
    // Slow clients: a header that never ends, a body that stops half way, a silent connection. While they
    // hang, a normal request is answered at once; each of them is cut at its deadline (408 or a plain close).
    int slow_header = dial(s.port), slow_body = dial(s.port), silent = dial(s.port);
    send_all(slow_header, "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    send_all(slow_body, "POST /sdapi/v1/options HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"a\":");
    double t0 = now_s();
    Reply r = call(s.port, "GET", "/sdapi/v1/samplers");
    CHECK(r.status == 200);
    CHECK(now_s() - t0 < 0.4);
    CHECK(closed_by_server(slow_header, 5, &got));
    CHECK(got.find("HTTP/1.1 408") == 0);
    CHECK(closed_by_server(slow_body, 5, &got));
    CHECK(got.find("HTTP/1.1 408") == 0);
    CHECK(closed_by_server(silent, 5, &got));
    CHECK(got.empty());
    close(slow_header);
    close(slow_body);
    close(silent);
    // A truncated body from a client that then half-closes: no answer, no harm.
    fd = dial(s.port);
    send_all(fd, "POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{\"prompt\"");
    shutdown(fd, SHUT_WR);
    CHECK(closed_by_server(fd, 5, &got));
    CHECK(got.empty());
    close(fd);
    // A pipelined request followed by a half-close still gets its answer.
    fd = dial(s.port);
    send_all(fd, request_text("GET", "/internal/ping", "", "", false));
    shutdown(fd, SHUT_WR);
    CHECK(closed_by_server(fd, 5, &got));
    CHECK(got.find("HTTP/1.1 200") == 0);
    close(fd);
    CHECK(call(s.port, "GET", "/internal/ping").status == 200);
    CHECK(s.server.open_connections() <= 1);
}

TEST_CASE("server: connection and queue limits answer 503") {
    cache_dir();
    http::ServerConfig sc;
    sc.max_connections = 4;
    serve::EngineConfig ec;
    ec.max_queue = 1;
    TestServer s(ec, {}, sc);
    int a = dial(s.port), b = dial(s.port), a2 = dial(s.port), b2 = dial(s.port);
    send_all(a, request_text("GET", "/internal/ping", "", "", false));  // make sure both are accepted
    std::string buf;
    Reply r;
    REQUIRE(read_reply(a, buf, &r));
    send_all(b, request_text("GET", "/internal/ping", "", "", false));
    buf.clear();
    REQUIRE(read_reply(b, buf, &r));
    for (int fd : {a2, b2}) {
        send_all(fd, request_text("GET", "/internal/ping", "", "", false));
        buf.clear();
        REQUIRE(read_reply(fd, buf, &r));
    }
    int c = dial(s.port);
    std::string got;
    CHECK(closed_by_server(c, 5, &got));
    CHECK(got.find("HTTP/1.1 503") == 0);
    close(a);
    close(b);
    close(a2);
    close(b2);
    close(c);
    for (int i = 0; i < 100 && s.server.open_connections() > 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // Queue: one running, one waiting, the third refused.
    std::vector<std::thread> ts;
    std::vector<Reply> rs(2);
    ts.emplace_back([&] { rs[0] = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(60, 1)); });
    REQUIRE(wait_for_step(s.port));
    ts.emplace_back([&] { rs[1] = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(1, 2)); });
    for (int i = 0; i < 500 && s.engine.progress(false).queued < 1; i++) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    Reply full = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(1, 3));
    CHECK(full.status == 503);
    CHECK(member(full.json(), "errors").text.find("queue is full") != std::string::npos);
    for (auto& t : ts) t.join();
    CHECK(rs[0].status == 200);
    CHECK(rs[1].status == 200);
}

TEST_CASE("server: basic auth on every route when credentials are set") {
    cache_dir();
    serve::ApiConfig ac;
    ac.credentials = http::parse_credentials("alice:s3cret");
    TestServer s({}, ac);
    for (const char* path : {"/", "/sdapi/v1/samplers", "/sdapi/v1/progress", "/sdapi/v1/nothing"}) {
        Reply r = call(s.port, "GET", path);
        CHECK(r.status == 401);
        CHECK(r.headers["www-authenticate"] == "Basic");
        CHECK(r.body == "{\"detail\":\"Not authenticated\"}");
    }
    std::string wrong = "Authorization: Basic " + http::base64_encode("alice:s3creT", 12) + "\r\n";
    Reply r = call(s.port, "POST", "/sdapi/v1/interrupt", "", wrong);
    CHECK(r.status == 401);
    CHECK(r.body == "{\"detail\":\"Incorrect username or password\"}");
    std::string right = "Authorization: Basic " + http::base64_encode("alice:s3cret", 12) + "\r\n";
    CHECK(call(s.port, "GET", "/sdapi/v1/samplers", "", right).status == 200);
    CHECK(call(s.port, "GET", "/", "", right).status == 200);
    CHECK(call(s.port, "POST", "/sdapi/v1/interrupt", "", right).status == 200);
}

// ---- the binary --------------------------------------------------------------------------------------------------

namespace {

struct Child {
    pid_t pid = -1;
    int err_fd = -1;
    std::string err;
    int port = 0;
};

Child start_sd(const std::vector<std::string>& args) {
    std::vector<std::string> argv_s = sd::test::sd_argv();
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    Child c;
    c.pid = fork();
    REQUIRE(c.pid >= 0);
    if (c.pid == 0) {
        dup2(p[1], 2);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(p[1]);
    c.err_fd = p[0];
    return c;
}

// Reads the child's stderr until `what` appears (true) or it closes / times out (false).
bool wait_stderr(Child& c, const std::string& what, double timeout_s) {
    const double until = now_s() + timeout_s * slowdown();
    while (c.err.find(what) == std::string::npos) {
        pollfd pf{c.err_fd, POLLIN, 0};
        if (now_s() > until || poll(&pf, 1, (int)std::max(0.0, (until - now_s()) * 1000)) <= 0) return false;
        char tmp[4096];
        ssize_t n = read(c.err_fd, tmp, sizeof tmp);
        if (n <= 0) return false;
        c.err.append(tmp, (size_t)n);
    }
    return true;
}

int wait_exit(Child& c, double timeout_s) {
    const double until = now_s() + timeout_s * slowdown();
    int status = 0;
    while (waitpid(c.pid, &status, WNOHANG) == 0) {
        if (now_s() > until) {
            kill(c.pid, SIGKILL);
            waitpid(c.pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    char tmp[4096];
    ssize_t n;
    while ((n = read(c.err_fd, tmp, sizeof tmp)) > 0) c.err.append(tmp, (size_t)n);
    close(c.err_fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("sd serve: --listen needs --api-auth (or --insecure); bad flags exit 2 with one sentence") {
    Child c = start_sd({"serve", "-m", kTinyModel, "--listen"});
    CHECK(wait_exit(c, 10) == 2);
    CHECK(c.err.find("--api-auth") != std::string::npos);
    c = start_sd({"serve", "-m", kTinyModel, "--port", "70000"});
    CHECK(wait_exit(c, 10) == 2);
    CHECK(c.err.find("--port") != std::string::npos);
    c = start_sd({"serve", "-m", kTinyModel, "--api-auth", "nocolon"});
    CHECK(wait_exit(c, 10) == 2);
    c = start_sd({"serve"});
    CHECK(wait_exit(c, 10) == 2);
    CHECK(c.err.find("no model") != std::string::npos);
    c = start_sd({"serve", "-m", "/nonexistent.safetensors", "--port", "0"});
    CHECK(wait_exit(c, 10) == 1);
    CHECK(c.err.find("does not exist") != std::string::npos);
}

TEST_CASE("sd serve: SIGTERM during a job answers it, refuses new work and exits 0") {
    cache_dir();
    std::vector<std::string> args = {"serve", "-m", kTinyModel, "--port", "0", "--listen", "--insecure"};
    // The default 30 s of drain is the whole 40-step job many times over natively; under the emulator it is not
    // (the job came back interrupted with 0 images), so the drain is scaled as the deadlines are.
    if (sd::test::emulated()) args.insert(args.end(), {"--drain-seconds", std::to_string((int)(30 * slowdown()))});
    Child c = start_sd(args);
    REQUIRE(wait_stderr(c, "listening on http://0.0.0.0:", 20));
    REQUIRE(wait_stderr(c, "/ (model", 5));
    size_t at = c.err.find("0.0.0.0:");
    c.port = std::atoi(c.err.c_str() + at + 8);
    REQUIRE(c.port > 0);
    Reply result;
    std::thread t([&] { result = call(c.port, "POST", "/sdapi/v1/txt2img", tiny_job(40, 1)); });
    REQUIRE(wait_for_step(c.port));
    kill(c.pid, SIGTERM);
    t.join();
    CHECK(result.status == 200);  // the running job finished (drain) and was answered
    CHECK(member(result.json(), "images").items.size() == 1);
    CHECK(wait_exit(c, 30) == 0);
    CHECK(c.err.find("stopped") != std::string::npos);
}

// ---- textual-inversion embeddings, the memory check, img2img -----------------------------------------------------

#include <fstream>

#include "app/model_hash.h"
#include "safetensors.h"

namespace {

// A webui-style embedding file: one (vectors, width) tensor named emb_params.
void write_embedding(const std::string& path, int64_t vectors, int64_t width, float scale) {
    Tensor v = Tensor::zeros({vectors, width});
    for (int64_t i = 0; i < vectors * width; i++) v.f32()[i] = scale * (float)((i * 7) % 13 - 6);
    write_safetensors(path, {{"emb_params", v}});
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

// The webui's /sdapi/v1/embeddings (modules/api/api.py get_embeddings, EmbeddingItem): loaded are those of the
// model's text width (the tiny model's CLIP is 32 wide), skipped the others; a job that names one uses it exactly
// as the CLI does (same pixels, same "TI hashes"), and the folder is read again once it changes.
TEST_CASE("server: textual-inversion embeddings are listed as the webui lists them and used in jobs as the CLI") {
    cache_dir();
    const std::string dir = cache_dir().dir + "/embeddings";
    fs::create_directories(dir + "/sub");
    write_embedding(dir + "/sub/shiny-thing.safetensors", 2, 32, 0.05f);
    write_embedding(dir + "/Big-Style.safetensors", 3, 768, 0.01f);  // an SD 1.5 embedding: another width
    {
        Tensor g = Tensor::zeros({2, 1280}), l = Tensor::zeros({2, 768});  // an SDXL pair: shape 2048
        write_safetensors(dir + "/xl-thing.safetensors", {{"clip_g", g}, {"clip_l", l}});
    }
    { std::ofstream(dir + "/broken.safetensors") << "not a safetensors file"; }  // left out, with a message
    serve::EngineConfig ec;
    ec.embeddings_dir = dir;
    TestServer s(ec);

    Reply r = call(s.port, "GET", "/sdapi/v1/embeddings");
    REQUIRE(r.status == 200);
    JsonValue j = r.json();
    const JsonValue& loaded = member(j, "loaded");
    REQUIRE(loaded.keys.size() == 1);
    const JsonValue& shiny = member(loaded, "shiny-thing");
    CHECK(member(shiny, "step").kind == JsonKind::null);
    CHECK(member(shiny, "sd_checkpoint").kind == JsonKind::null);
    CHECK(member(shiny, "sd_checkpoint_name").kind == JsonKind::null);
    CHECK(member(shiny, "shape").text == "32");
    CHECK(member(shiny, "vectors").text == "2");
    const JsonValue& skipped = member(j, "skipped");
    REQUIRE(skipped.keys.size() == 2);
    CHECK(skipped.keys[0] == "Big-Style");  // sorted by lower-case name
    CHECK(member(member(skipped, "Big-Style"), "shape").text == "768");
    CHECK(member(member(skipped, "Big-Style"), "vectors").text == "3");
    CHECK(member(member(skipped, "xl-thing"), "shape").text == "2048");
    CHECK(member(member(skipped, "xl-thing"), "vectors").text == "2");

    // A job naming it: the CLI's image and TI hashes.
    const std::string prompt = "a (shiny-thing:1.1) cube";
    Reply job = call(s.port, "POST", "/sdapi/v1/txt2img",
                     "{\"prompt\":\"" + prompt + "\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":9,"
                     "\"sampler_name\":\"Euler\"}");
    REQUIRE(job.status == 200);
    JsonValue jj = job.json();
    const std::string infotext = member(parse_json(member(jj, "info").text), "infotexts").items[0].text;
    const std::string hash = sha256_file(dir + "/sub/shiny-thing.safetensors").substr(0, 12);
    CHECK(infotext.find("TI hashes: \"shiny-thing: " + hash + "\"") != std::string::npos);
    CHECK(member(member(parse_json(member(jj, "info").text), "extra_generation_params"), "TI hashes").text ==
          "shiny-thing: " + hash);
    std::vector<uint8_t> png;
    REQUIRE(http::base64_decode(member(jj, "images").items[0].text, &png));
    const std::string served = cache_dir().dir + "/served.png", cli = cache_dir().dir + "/cli.png";
    write_file_atomic(served, png);
    Child c = start_sd({"-m", kTinyModel, "-p", prompt, "--steps", "2", "-W", "64", "-H", "64", "--seed", "9",
                        "--sampler", "Euler", "--precision", "fp32", "--embeddings-dir", dir + "/sub", "-o", cli});
    REQUIRE(wait_exit(c, 60) == 0);
    // Equal bits in the same build; a sanitizer build (-O1) rounds differently from ./sd, hence the one-level margin.
    const Image a = read_image_rgb(served), b = read_image_rgb(cli);
    REQUIRE(a.pixels.size() == b.pixels.size());
    int diff = 0;
    for (size_t i = 0; i < a.pixels.size(); i++) diff = std::max(diff, std::abs(a.pixels[i] - b.pixels[i]));
    CHECK(diff <= 2);
    auto cli_text = read_png_text(read_bytes(cli));
    REQUIRE(!cli_text.empty());
    CHECK(cli_text[0].second.find("TI hashes: \"shiny-thing: " + hash + "\"") != std::string::npos);
    // Without the embedding the prompt reads differently: another image.
    Reply plain = call(s.port, "POST", "/sdapi/v1/txt2img",
                       "{\"prompt\":\"a (shinything:1.1) cube\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":9,"
                       "\"sampler_name\":\"Euler\"}");
    std::vector<uint8_t> plain_png;
    REQUIRE(http::base64_decode(member(plain.json(), "images").items[0].text, &plain_png));
    write_file_atomic(served, plain_png);
    const Image other = read_image_rgb(served);
    int plain_diff = 0;
    for (size_t i = 0; i < a.pixels.size(); i++) plain_diff = std::max(plain_diff, std::abs(a.pixels[i] - other.pixels[i]));
    CHECK(plain_diff > 8);

    // A new file appears in the folder: listed without a refresh (the folder's time changed), and refresh works.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    write_embedding(dir + "/new-one.safetensors", 1, 32, 0.02f);
    CHECK(member(call(s.port, "GET", "/sdapi/v1/embeddings").json(), "loaded").keys.size() == 2);
    Reply refresh = call(s.port, "POST", "/sdapi/v1/refresh-embeddings");
    CHECK(refresh.status == 200);
    CHECK(refresh.body == "null");
}

// The CLI's memory check (app/memory.h) on API requests: a 422 with one sentence and no image, whether the model was
// loaded already (answered at once) or not (the worker answers before the first step).
TEST_CASE("server: a job that cannot fit in the memory left is refused with one sentence before any work") {
    cache_dir();
    serve::EngineConfig ec;
    ec.memory_available = 1 << 20;  // 1 MiB: no image fits
    TestServer s(ec);
    for (int attempt = 0; attempt < 2; attempt++) {  // model not loaded yet, then loaded and idle
        CAPTURE(attempt);
        Reply r = call(s.port, "POST", "/sdapi/v1/txt2img", tiny_job(2, 1));
        CHECK(r.status == 422);
        JsonValue d = member(r.json(), "detail");
        REQUIRE(d.items.size() == 1);
        CHECK(member(d.items[0], "loc").items[1].text == "width");
        const std::string msg = member(d.items[0], "msg").text;
        CHECK(msg.find("a 64x64 image needs about ") == 0);
        CHECK(msg.find("MiB of working memory but only 1 MiB is available; choose a smaller size") !=
              std::string::npos);
        CHECK(msg.find('\n') == std::string::npos);
    }
    CHECK(s.engine.progress(false).job.empty());  // nothing ran
}

// The webui's img2imgapi through the CLI's img2img (pipeline/img2img.h): the same image as `sd --init-img` for the
// same request (a 96x80 RGBA init image, crop-and-resize to 64x64, strength 0.5), "Denoising strength" in the
// infotext and Processed.js, and the refusals: an unreadable image, a sampler img2img lacks.
TEST_CASE("server: /sdapi/v1/img2img makes the CLI's image from a base64 init image; bad ones are 422") {
    cache_dir();
    Image init;
    init.width = 96;
    init.height = 80;
    init.channels = 4;
    for (int y = 0; y < init.height; y++)
        for (int x = 0; x < init.width; x++)
            for (int c = 0; c < 4; c++)
                init.pixels.push_back((uint8_t)(c == 3 ? (x < 8 ? 0 : 255) : (x * 3 + y * 5 + c * 70) % 256));
    const std::vector<uint8_t> init_png = encode_png(init, {});
    const std::string init_path = cache_dir().dir + "/init.png", cli = cache_dir().dir + "/cli_img2img.png";
    write_file_atomic(init_path, init_png);
    const std::string b64 = http::base64_encode(init_png.data(), init_png.size());
    TestServer s;
    Reply r = call(s.port, "POST", "/sdapi/v1/img2img",
                   "{\"init_images\":[\"data:image/png;base64," + b64 + "\"],\"prompt\":\"a red cube\",\"steps\":4,"
                   "\"width\":64,\"height\":64,\"seed\":3,\"sampler_name\":\"Euler\",\"denoising_strength\":0.5,"
                   "\"resize_mode\":1}");
    REQUIRE(r.status == 200);
    JsonValue j = r.json();
    REQUIRE(member(j, "images").items.size() == 1);
    CHECK(member(member(j, "parameters"), "init_images").kind == JsonKind::null);
    CHECK(member(member(j, "parameters"), "denoising_strength").text == "0.5");
    JsonValue info = parse_json(member(j, "info").text);
    CHECK(member(info, "denoising_strength").text == "0.5");
    const std::string infotext = member(info, "infotexts").items[0].text;
    CHECK(infotext.find("Denoising strength: 0.5") != std::string::npos);
    std::vector<uint8_t> png;
    REQUIRE(http::base64_decode(member(j, "images").items[0].text, &png));
    const std::string served = cache_dir().dir + "/served_img2img.png";
    write_file_atomic(served, png);
    Child c = start_sd({"-m", kTinyModel, "-p", "a red cube", "--steps", "4", "-W", "64", "-H", "64", "--seed", "3",
                        "--sampler", "Euler", "--precision", "fp32", "--init-img", init_path, "--strength", "0.5",
                        "--resize-mode", "crop", "-o", cli});
    REQUIRE(wait_exit(c, 60) == 0);
    const Image a = read_image_rgb(served), b = read_image_rgb(cli);
    REQUIRE(a.pixels.size() == b.pixels.size());
    int diff = 0;
    for (size_t i = 0; i < a.pixels.size(); i++) diff = std::max(diff, std::abs(a.pixels[i] - b.pixels[i]));
    CHECK(diff <= 2);  // equal bits in the same build; see the embeddings case for the margin
    CHECK(read_png_text(read_bytes(cli))[0].second.find("Denoising strength: 0.5") != std::string::npos);

    auto refusal = [&](const std::string& body) {
        Reply e = call(s.port, "POST", "/sdapi/v1/img2img", body);
        CHECK(e.status == 422);
        JsonValue d = member(e.json(), "detail");
        REQUIRE(d.items.size() == 1);
        return member(d.items[0], "loc").items.back().text + ": " + member(d.items[0], "msg").text;
    };
    const std::string with_init = "{\"init_images\":[\"" + b64 + "\"],\"width\":64,\"height\":64,";
    CHECK(refusal("{\"init_images\":[\"aGVsbG8=\"]}").find("init_images: init_images[0] is not an image") == 0);
    CHECK(refusal("{\"prompt\":\"x\"}") == "init_images: Init image not found");
    CHECK(call(s.port, "GET", "/sdapi/v1/img2img").status == 405);
}

// The hires fix through /sdapi/v1/txt2img (StableDiffusionProcessingTxt2Img's hr_* fields): the same image as
// `sd --hires-scale` for the same request, the webui's Hires fields in the infotext, the upscaler by its webui
// name, and the refusals that need the server (an unknown upscaler).
TEST_CASE("server: enable_hr makes the CLI's hires image with the webui's Hires infotext; bad values are 422") {
    cache_dir();
    const std::string cli = cache_dir().dir + "/cli_hires.png";
    TestServer s;
    Reply r = call(s.port, "POST", "/sdapi/v1/txt2img",
                   "{\"prompt\":\"a red cube\",\"steps\":3,\"width\":64,\"height\":64,\"seed\":5,"
                   "\"sampler_name\":\"Euler\",\"enable_hr\":true,\"hr_scale\":2,\"hr_upscaler\":\"Latent (bicubic)\","
                   "\"hr_second_pass_steps\":2,\"denoising_strength\":0.6}");
    REQUIRE(r.status == 200);
    JsonValue j = r.json();
    REQUIRE(member(j, "images").items.size() == 1);
    JsonValue info = parse_json(member(j, "info").text);
    CHECK(member(info, "denoising_strength").text == "0.6");
    const std::string infotext = member(info, "infotexts").items[0].text;
    for (const char* field : {"Size: 64x64", "Denoising strength: 0.6", "Hires upscale: 2.0", "Hires steps: 2",
                              "Hires upscaler: Latent (bicubic)"})
        CHECK_MESSAGE(infotext.find(field) != std::string::npos, field, " in ", infotext);
    std::vector<uint8_t> png;
    REQUIRE(http::base64_decode(member(j, "images").items[0].text, &png));
    const std::string served = cache_dir().dir + "/served_hires.png";
    write_file_atomic(served, png);
    Child c = start_sd({"-m", kTinyModel, "-p", "a red cube", "--steps", "3", "-W", "64", "-H", "64", "--seed", "5",
                        "--sampler", "Euler", "--precision", "fp32", "--hires-scale", "2", "--hires-upscaler",
                        "latent-bicubic", "--hires-steps", "2", "--hires-strength", "0.6", "-o", cli});
    REQUIRE(wait_exit(c, 60) == 0);
    const Image a = read_image_rgb(served), b = read_image_rgb(cli);
    CHECK(a.width == 128);
    CHECK(a.height == 128);
    REQUIRE(a.pixels.size() == b.pixels.size());
    int diff = 0;
    for (size_t i = 0; i < a.pixels.size(); i++) diff = std::max(diff, std::abs(a.pixels[i] - b.pixels[i]));
    CHECK(diff <= 2);  // equal bits in the same build; see the embeddings case for the margin
    CHECK(read_png_text(read_bytes(cli))[0].second.find("Hires upscaler: Latent (bicubic)") != std::string::npos);

    // hr_upscaler not given: the webui's default "Latent", and no "Hires upscaler" field (as its init() adds it
    // only when given); hr_resize_x alone keeps the aspect.
    r = call(s.port, "POST", "/sdapi/v1/txt2img",
             "{\"prompt\":\"a\",\"steps\":2,\"width\":64,\"height\":64,\"enable_hr\":true,\"hr_resize_x\":128}");
    REQUIRE(r.status == 200);
    const std::string text2 = member(parse_json(member(r.json(), "info").text), "infotexts").items[0].text;
    CHECK(text2.find("Hires resize: 128x0") != std::string::npos);
    CHECK(text2.find("Denoising strength: 0.75") != std::string::npos);
    CHECK(text2.find("Hires upscaler") == std::string::npos);

    Reply e = call(s.port, "POST", "/sdapi/v1/txt2img",
                   "{\"width\":64,\"height\":64,\"enable_hr\":true,\"hr_upscaler\":\"No such\"}");
    CHECK(e.status == 422);
    JsonValue d = member(e.json(), "detail");
    REQUIRE(d.items.size() == 1);
    CHECK(member(d.items[0], "loc").items.back().text == "hr_upscaler");
}

// ---- LoRAs -----------------------------------------------------------------------------------------------------

#include "models/lora.h"

// The webui's Lora extension routes (extensions-builtin/Lora/scripts/lora_script.py): /loras lists the folder's
// files by stem with create_lora_json's fields (metadata in read_metadata_from_safetensors' form, sorted by
// metadata_tags_order; alias from ss_output_name), refresh-loras answers null; a prompt's <lora:...> tag is
// merged as the CLI merges it (same pixels, same "Lora hashes"), and an unknown name is a 422 naming the prompt.
TEST_CASE("server: /loras lists the LoRA folder as the webui; prompt tags apply them as the CLI does") {
    cache_dir();
    const std::string dir = cache_dir().dir + "/loras";
    fs::create_directories(dir + "/sub");
    fs::copy_file("tests/data/lora/kohya_locon.safetensors", dir + "/sub/kohya_locon.safetensors",
                  fs::copy_options::overwrite_existing);
    {
        Tensor t = Tensor::zeros({1});
        write_safetensors(dir + "/styled.safetensors", {{"t", t}},
                          {{"a_first", "x"}, {"ss_output_name", "nice-style"}, {"ss_resolution", "(512, 512)"},
                           {"ss_tag_frequency", "{\"cats\": {\"cat\": 3}}"}});
    }
    { std::ofstream(dir + "/old.pt") << "pickle"; }  // listed (the webui lists .pt), never read
    serve::EngineConfig ec;
    ec.lora_dir = dir;
    TestServer s(ec);

    Reply r = call(s.port, "GET", "/sdapi/v1/loras");
    REQUIRE(r.status == 200);
    JsonValue j = r.json();
    REQUIRE(j.items.size() == 3);
    CHECK(member(j.items[0], "name").text == "kohya_locon");
    CHECK(member(j.items[0], "alias").text == "kohya_locon");
    CHECK(member(j.items[0], "path").text == dir + "/sub/kohya_locon.safetensors");
    CHECK(member(member(j.items[0], "metadata"), "tool").text == "tools/lora_reference.py");
    CHECK(member(j.items[1], "name").text == "old");
    CHECK(member(j.items[1], "metadata").kind == JsonKind::object);
    const JsonValue& styled = j.items[2];
    CHECK(member(styled, "name").text == "styled");
    CHECK(member(styled, "alias").text == "nice-style");
    const JsonValue& md = member(styled, "metadata");
    REQUIRE(md.keys.size() == 4);
    CHECK(md.keys[0] == "ss_resolution");  // metadata_tags_order 2, then 20, then the rest as in the file
    CHECK(md.keys[1] == "ss_tag_frequency");
    CHECK(member(member(md, "ss_tag_frequency"), "cats").kind == JsonKind::object);  // a '{' string read as JSON
    CHECK(md.keys[2] == "a_first");
    Reply refresh = call(s.port, "POST", "/sdapi/v1/refresh-loras");
    CHECK(refresh.status == 200);
    CHECK(refresh.body == "null");
    CHECK(call(s.port, "GET", "/sdapi/v1/refresh-loras").status == 405);

    const std::string prompt = "a red cube <lora:kohya_locon:0.8>";
    Reply job = call(s.port, "POST", "/sdapi/v1/txt2img",
                     "{\"prompt\":\"" + prompt + "\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":5,"
                     "\"sampler_name\":\"Euler\"}");
    REQUIRE(job.status == 200);
    JsonValue info = parse_json(member(job.json(), "info").text);
    const std::string hash = lora_hash(dir + "/sub/kohya_locon.safetensors").substr(0, 12);
    CHECK(member(member(info, "extra_generation_params"), "Lora hashes").text == "kohya_locon: " + hash);
    CHECK(member(info, "infotexts").items[0].text.find("Lora hashes: \"kohya_locon: " + hash + "\"") != std::string::npos);
    CHECK(member(info, "prompt").text == prompt);  // the tag stays in the prompt, as the webui keeps it
    std::vector<uint8_t> png;
    REQUIRE(http::base64_decode(member(job.json(), "images").items[0].text, &png));
    const std::string served = cache_dir().dir + "/served_lora.png", cli = cache_dir().dir + "/cli_lora.png";
    write_file_atomic(served, png);
    Child c = start_sd({"-m", kTinyModel, "-p", prompt, "--steps", "2", "-W", "64", "-H", "64", "--seed", "5",
                        "--sampler", "Euler", "--precision", "fp32", "--lora-dir", dir, "-o", cli});
    REQUIRE(wait_exit(c, 60) == 0);
    const Image a = read_image_rgb(served), b = read_image_rgb(cli);
    REQUIRE(a.pixels.size() == b.pixels.size());
    int diff = 0;
    for (size_t i = 0; i < a.pixels.size(); i++) diff = std::max(diff, std::abs(a.pixels[i] - b.pixels[i]));
    CHECK(diff <= 2);  // equal bits in the same build; see the embeddings case for the margin
    // Without the tag (the merged weights are put back): another image.
    Reply plain = call(s.port, "POST", "/sdapi/v1/txt2img",
                       "{\"prompt\":\"a red cube\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":5,"
                       "\"sampler_name\":\"Euler\"}");
    std::vector<uint8_t> plain_png;
    REQUIRE(http::base64_decode(member(plain.json(), "images").items[0].text, &plain_png));
    CHECK(plain_png != png);

    auto refusal = [&](const std::string& p) {
        Reply e = call(s.port, "POST", "/sdapi/v1/txt2img", "{\"prompt\":\"" + p + "\",\"width\":64,\"height\":64}");
        CHECK(e.status == 422);
        JsonValue d = member(e.json(), "detail");
        REQUIRE(d.items.size() == 1);
        return member(d.items[0], "loc").items.back().text + ": " + member(d.items[0], "msg").text;
    };
    CHECK(refusal("x <lora:kohya_locn:1>") == "prompt: no LoRA named 'kohya_locn' in " + dir + " (close: kohya_locon)");
    CHECK(refusal("x <lora:kohya_locon:abc>") == "prompt: the weight 'abc' of <lora:kohya_locon:...> in the prompt is not a number");
    CHECK(refusal("x <lora:old:1>").find("prompt: LoRA 'old' is ") == 0);
}

// ---- inpainting ------------------------------------------------------------------------------------------------

// The webui's img2imgapi with a mask (StableDiffusionProcessingImg2Img.init's masking, pipeline/masking.h): the
// same image and infotext as `sd --mask` for the API's defaults (fill, only masked, padding 0, blur 4) and for
// the whole picture with an inverted mask and latent noise; the mask's refusals name their field.
TEST_CASE("server: /sdapi/v1/img2img with a mask inpaints as sd --mask does; bad masks are 422") {
    cache_dir();
    Image init, mask;
    init.width = mask.width = 96;
    init.height = mask.height = 80;
    init.channels = 3;
    mask.channels = 3;
    for (int y = 0; y < init.height; y++)
        for (int x = 0; x < init.width; x++) {
            for (int c = 0; c < 3; c++) init.pixels.push_back((uint8_t)((x * 5 + y * 3 + c * 60) % 256));
            const uint8_t m = x >= 30 && x < 60 && y >= 20 && y < 50 ? 255 : 0;
            for (int c = 0; c < 3; c++) mask.pixels.push_back(m);
        }
    const std::vector<uint8_t> init_png = encode_png(init, {}), mask_png = encode_png(mask, {});
    const std::string init_path = cache_dir().dir + "/inpaint_init.png", mask_path = cache_dir().dir + "/inpaint_mask.png";
    write_file_atomic(init_path, init_png);
    write_file_atomic(mask_path, mask_png);
    const std::string b64 = http::base64_encode(init_png.data(), init_png.size()),
                      mask64 = http::base64_encode(mask_png.data(), mask_png.size());
    TestServer s;
    struct Case {
        std::string fields;
        std::vector<std::string> cli;
        std::vector<std::string> infotext;
    };
    const Case cases[] = {
        {"", {"--inpainting-fill", "fill", "--inpaint-full-res", "--inpaint-padding", "0"},
         {"Mask blur: 4", "Inpaint area: Only masked", "Masked area padding: 0", "Masked content: fill"}},
        {",\"inpaint_full_res\":false,\"inpainting_mask_invert\":1,\"inpainting_fill\":2,\"mask_blur\":2",
         {"--inpainting-fill", "latent_noise", "--invert-mask", "--mask-blur", "2"},
         {"Mask blur: 2", "Mask mode: Inpaint not masked", "Masked content: latent noise"}},
    };
    for (const Case& k : cases) {
        CAPTURE(k.fields);
        Reply r = call(s.port, "POST", "/sdapi/v1/img2img",
                       "{\"init_images\":[\"" + b64 + "\"],\"mask\":\"" + mask64 + "\",\"prompt\":\"a red cube\","
                       "\"steps\":4,\"width\":64,\"height\":64,\"seed\":7,\"sampler_name\":\"Euler\","
                       "\"denoising_strength\":0.6" + k.fields + "}");
        REQUIRE(r.status == 200);
        JsonValue j = r.json();
        CHECK(member(member(j, "parameters"), "mask").kind == JsonKind::null);  // cleared, as init_images
        JsonValue info = parse_json(member(j, "info").text);
        const std::string infotext = member(info, "infotexts").items[0].text;
        for (const std::string& field : k.infotext) CHECK_MESSAGE(infotext.find(field) != std::string::npos, field);
        CHECK(member(member(info, "extra_generation_params"), "Mask blur").kind == JsonKind::string);
        std::vector<uint8_t> png;
        REQUIRE(http::base64_decode(member(j, "images").items[0].text, &png));
        const std::string served = cache_dir().dir + "/served_inpaint.png", cli = cache_dir().dir + "/cli_inpaint.png";
        write_file_atomic(served, png);
        std::vector<std::string> args = {"-m", kTinyModel, "-p", "a red cube", "--steps", "4", "-W", "64", "-H", "64",
                                         "--seed", "7", "--sampler", "Euler", "--precision", "fp32", "--init-img",
                                         init_path, "--strength", "0.6", "--mask", mask_path, "-o", cli};
        args.insert(args.end(), k.cli.begin(), k.cli.end());
        Child c = start_sd(args);
        REQUIRE(wait_exit(c, 60) == 0);
        const Image a = read_image_rgb(served), b = read_image_rgb(cli);
        REQUIRE(a.width == b.width);
        REQUIRE(a.pixels.size() == b.pixels.size());
        int diff = 0;
        for (size_t i = 0; i < a.pixels.size(); i++) diff = std::max(diff, std::abs(a.pixels[i] - b.pixels[i]));
        CHECK(diff <= 2);  // equal bits in the same build; see the embeddings case for the margin
        const std::string cli_text = read_png_text(read_bytes(cli))[0].second;
        auto fields = [](const std::string& t) {  // from the strength to the version (which names the binary)
            const size_t b = t.find("Denoising strength:");
            return t.substr(b, t.find(", Version:") - b);
        };
        CHECK(fields(cli_text) == fields(infotext));
    }

    auto refusal = [&](const std::string& fields) {
        Reply e = call(s.port, "POST", "/sdapi/v1/img2img",
                       "{\"init_images\":[\"" + b64 + "\"],\"width\":64,\"height\":64," + fields + "}");
        CHECK(e.status == 422);
        JsonValue d = member(e.json(), "detail");
        REQUIRE(d.items.size() == 1);
        return member(d.items[0], "loc").items.back().text + ": " + member(d.items[0], "msg").text;
    };
    Image small = mask;
    small.width = 48;
    small.height = 40;
    small.pixels.resize(48 * 40 * 3);
    const std::vector<uint8_t> small_png = encode_png(small, {});
    CHECK(refusal("\"mask\":\"" + http::base64_encode(small_png.data(), small_png.size()) + "\"") ==
          "mask: the mask is 48x40 but init_images[0] is 96x80; they must be the same size");
    CHECK(refusal("\"mask\":\"aGVsbG8=\"").find("mask: mask is not an image") == 0);
    CHECK(refusal("\"mask\":\"!!\"") == "mask: mask is not a base64 image");
    CHECK(refusal("\"mask\":\"" + mask64 + "\",\"mask_blur_x\":65") == "mask_blur_x: ensure this value is less than or equal to 64");
    CHECK(refusal("\"mask\":\"" + mask64 + "\",\"inpainting_fill\":4").find("inpainting_fill: ") == 0);
    CHECK(refusal("\"mask\":\"" + mask64 + "\",\"initial_noise_multiplier\":0.5").find("initial_noise_multiplier: ") == 0);
    CHECK(refusal("\"mask\":\"" + mask64 + "\",\"mask_round\":false").find("mask_round: ") == 0);
}

// ---- upscalers and the Extras tab --------------------------------------------------------------------------------

#include "pipeline/resample.h"

// The webui's /upscalers (shared.sd_upscalers: the built-ins, then the upscaler folder's models) and
// /latent-upscale-modes, and its Extras upscale (postprocessing_upscale.py through run_extras): Lanczos, Nearest and
// a model as `sd upscale` runs it, "scale to" with the crop, the second upscaler's blend, the "postprocessing"
// text and html_info, the batch route; refusals name their field before any work.
TEST_CASE("server: /upscalers, /latent-upscale-modes and /extra-single-image as the webui's Extras upscale") {
    cache_dir();
    const std::string dir = cache_dir().dir + "/upscalers";
    fs::create_directories(dir);
    fs::copy_file("tests/data/upscaler_compact_x4.safetensors", dir + "/compact_x4.safetensors",
                  fs::copy_options::overwrite_existing);
    fs::copy_file("tests/data/upscaler_realesrgan_x2plus.safetensors", dir + "/x2plus.safetensors",
                  fs::copy_options::overwrite_existing);
    { std::ofstream(dir + "/broken.safetensors") << "no"; }  // left out with a note
    serve::EngineConfig ec;
    ec.upscalers_dir = dir;
    TestServer s(ec);

    JsonValue list = call(s.port, "GET", "/sdapi/v1/upscalers").json();
    REQUIRE(list.items.size() == 5);
    const char* names[] = {"None", "Lanczos", "Nearest", "compact_x4", "x2plus"};
    for (int i = 0; i < 5; i++) {
        CHECK(member(list.items[i], "name").text == names[i]);
        CHECK(member(list.items[i], "model_name").kind == JsonKind::null);
        CHECK(member(list.items[i], "model_url").kind == JsonKind::null);
        CHECK(member(list.items[i], "model_path").kind == (i < 3 ? JsonKind::null : JsonKind::string));
    }
    CHECK(member(list.items[3], "scale").text == "4");
    CHECK(member(list.items[4], "scale").text == "2");
    JsonValue modes = call(s.port, "GET", "/sdapi/v1/latent-upscale-modes").json();
    REQUIRE(modes.items.size() == 4);
    CHECK(member(modes.items[0], "name").text == "Latent");
    CHECK(member(modes.items[3], "name").text == "Latent (nearest-exact)");

    Image src;
    src.width = 40;
    src.height = 24;
    src.channels = 3;
    for (int y = 0; y < src.height; y++)
        for (int x = 0; x < src.width; x++)
            for (int c = 0; c < 3; c++) src.pixels.push_back((uint8_t)((x * 11 + y * 7 + c * 50) % 256));
    const std::vector<uint8_t> src_png = encode_png(src, {{"parameters", "a cat\nSteps: 2, Seed: 1, Size: 40x24"}});
    const std::string src64 = http::base64_encode(src_png.data(), src_png.size());
    auto extras = [&](const std::string& fields, std::vector<std::pair<std::string, std::string>>* text = nullptr,
                      std::string* html = nullptr) {
        Reply r = call(s.port, "POST", "/sdapi/v1/extra-single-image", "{\"image\":\"" + src64 + "\"," + fields + "}");
        REQUIRE(r.status == 200);
        JsonValue j = r.json();
        REQUIRE(j.keys.size() == 2);
        CHECK(j.keys[0] == "html_info");
        std::vector<uint8_t> png;
        REQUIRE(http::base64_decode(member(j, "image").text, &png));
        if (text) *text = read_png_text(png);
        if (html) *html = member(j, "html_info").text;
        const std::string path = cache_dir().dir + "/extras.png";
        write_file_atomic(path, png);
        return read_image_rgb(path);
    };
    // Lanczos by 2: one PIL resize to 80x48 (already a multiple of 8); the input's parameters kept.
    std::vector<std::pair<std::string, std::string>> text;
    std::string html;
    Image lanczos = extras("\"upscaler_1\":\"Lanczos\",\"upscaling_resize\":2", &text, &html);
    CHECK(lanczos.pixels == pil_resize(src, 80, 48, PilFilter::lanczos).pixels);
    CHECK(html == "<p>Postprocess upscale by: 2.0, Postprocess upscaler: Lanczos</p>");
    REQUIRE(text.size() == 2);
    CHECK(text[0].first == "parameters");
    CHECK(text[1] == std::pair<std::string, std::string>{"postprocessing", "Postprocess upscale by: 2.0, Postprocess upscaler: Lanczos"});
    // Nearest by 1.5: int(40·1.5) = 60 wide, then Lanczos to the multiple of 8 below (56x32).
    Image nearest = extras("\"upscaler_1\":\"Nearest\",\"upscaling_resize\":1.5");
    CHECK(nearest.pixels == pil_resize(pil_resize(src, 60, 36, PilFilter::nearest), 56, 32, PilFilter::lanczos).pixels);
    // "Scale to" 100x60 with the crop: by max(2.5, 2.5), 96x56, pasted centred on black.
    Image to = extras("\"resize_mode\":1,\"upscaling_resize_w\":100,\"upscaling_resize_h\":60,\"upscaler_1\":\"Nearest\"",
                      nullptr, &html);
    CHECK(html == "<p>Postprocess upscale to: 100x60, Postprocess crop to: 100x60, Postprocess upscaler: Nearest</p>");
    REQUIRE(to.width == 100);
    REQUIRE(to.height == 60);
    CHECK(to.pixels[0] == 0);  // the black border: (100 − 96) / 2 = 2 columns, (60 − 56) / 2 = 2 rows
    // A second upscaler blended at 0.3: Image.blend's truncation of in1 + 0.3·(in2 − in1).
    Image blend = extras("\"upscaler_1\":\"Lanczos\",\"upscaler_2\":\"Nearest\",\"extras_upscaler_2_visibility\":0.3,"
                         "\"upscaling_resize\":2", nullptr, &html);
    CHECK(html == "<p>Postprocess upscale by: 2.0, Postprocess upscaler: Lanczos, Postprocess upscaler 2: Nearest</p>");
    const Image near2 = pil_resize(src, 80, 48, PilFilter::nearest);
    int off = 0;
    for (size_t i = 0; i < blend.pixels.size(); i++)
        off += blend.pixels[i] != (uint8_t)((float)lanczos.pixels[i] + 0.3f * (float)(near2.pixels[i] - lanczos.pixels[i]));
    CHECK(off == 0);
    // A model: the image `sd upscale` makes.
    Image model = extras("\"upscaler_1\":\"compact_x4\",\"upscaling_resize\":4", nullptr, &html);
    CHECK(html == "<p>Postprocess upscale by: 4.0, Postprocess upscaler: compact_x4</p>");
    const std::string in_path = cache_dir().dir + "/extras_in.png", cli = cache_dir().dir + "/extras_cli.png";
    write_file_atomic(in_path, src_png);
    Child c = start_sd({"upscale", "-m", dir + "/compact_x4.safetensors", "-i", in_path, "-o", cli, "--scale", "4",
                        "--precision", "fp32"});
    REQUIRE(wait_exit(c, 60) == 0);
    const Image want = read_image_rgb(cli);
    REQUIRE(model.pixels.size() == want.pixels.size());
    int diff = 0;
    for (size_t i = 0; i < model.pixels.size(); i++) diff = std::max(diff, std::abs(model.pixels[i] - want.pixels[i]));
    CHECK(diff <= 2);  // equal bits in the same build; see the embeddings case for the margin
    // "None": the image as it came, an empty postprocessing text.
    Image none = extras("\"upscaler_1\":\"None\"", &text, &html);
    CHECK(none.pixels == src.pixels);
    CHECK(html == "<p></p>");

    // The batch route: every image, in order.
    Reply b = call(s.port, "POST", "/sdapi/v1/extra-batch-images",
                   "{\"imageList\":[{\"data\":\"" + src64 + "\",\"name\":\"a.png\"},{\"data\":\"data:image/png;base64," +
                   src64 + "\",\"name\":\"b.png\"}],\"upscaler_1\":\"Lanczos\"}");
    REQUIRE(b.status == 200);
    CHECK(member(b.json(), "images").items.size() == 2);
    CHECK(member(b.json(), "html_info").text == "<p>Postprocess upscale by: 2.0, Postprocess upscaler: Lanczos</p>");

    auto refusal = [&](const std::string& path, const std::string& body) {
        Reply e = call(s.port, "POST", path, body);
        CHECK(e.status == 422);
        JsonValue d = member(e.json(), "detail");
        REQUIRE(d.items.size() >= 1);
        return member(d.items[0], "loc").items.back().text + ": " + member(d.items[0], "msg").text;
    };
    const std::string single = "/sdapi/v1/extra-single-image", with = "{\"image\":\"" + src64 + "\",";
    CHECK(refusal(single, with + "\"gfpgan_visibility\":0.5}") ==
          "gfpgan_visibility: GFPGAN face restoration is not available on this server");
    CHECK(refusal(single, with + "\"codeformer_visibility\":1}").find("codeformer_visibility: ") == 0);
    CHECK(refusal(single, with + "\"upscaler_1\":\"ESRGAN_4x\"}") ==
          "upscaler_1: could not find upscaler named ESRGAN_4x (there are: None, Lanczos, Nearest, compact_x4, x2plus)");
    CHECK(refusal(single, with + "\"upscaling_resize\":0}") == "upscaling_resize: ensure this value is greater than 0");
    CHECK(refusal(single, with + "\"upscaling_resize\":17}") == "upscaling_resize: upscaling_resize must be at most 16 on this server");
    CHECK(refusal(single, with + "\"resize_mode\":2}") == "resize_mode: unexpected value; permitted: 0, 1");
    CHECK(refusal(single, with + "\"extras_upscaler_2_visibility\":1.5}") ==
          "extras_upscaler_2_visibility: ensure this value is less than or equal to 1");
    CHECK(refusal(single, with + "\"upscaler_1\":\"Lanczos\",\"resize_mode\":1,\"upscaling_resize_w\":16384,"
                                 "\"upscaling_resize_h\":16384}").find("upscaling_resize_w: upscaling image (40x24) would make a 16384x16384 image") == 0);
    CHECK(refusal(single, "{\"upscaler_1\":\"Lanczos\"}") == "image: image not selected");
    CHECK(refusal(single, "{\"image\":\"aGVsbG8=\"}").find("image: image is not an image") == 0);
    CHECK(refusal("/sdapi/v1/extra-batch-images", "{\"imageList\":[{\"data\":\"" + src64 + "\"}]}") == "name: field required");
    CHECK(call(s.port, "GET", single).status == 405);
}
