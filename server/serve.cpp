// serve.cpp — `sd serve`: its flags, the safety rule for --listen, signals, and the start/stop sequence.
//
// Threads: the socket loop (main thread), the engine's worker (and the kernel pool under it), and one thread
// waiting for SIGTERM / SIGINT with sigwait, so no signal handler ever runs inside the server's code. The
// first signal stops accepting, answers queued jobs with 503, lets the running job finish for --drain-seconds,
// then interrupts it; a second signal interrupts at once. Exit status 0 after a signal-driven stop.
#include "server/serve.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "kernels/kernels.h"
#include "kernels/pool.h"
#include "server/api.h"
#include "server/engine.h"
#include "server/server.h"

namespace sd::serve {
namespace {

struct ServeOptions {
    EngineConfig engine;
    ApiConfig api;
    http::ServerConfig server;
    bool listen = false, insecure = false, help = false;
    std::string api_auth, precision;
    int threads = 0;
    double drain_seconds = 30;
};

std::string serve_usage() {
    return R"(usage: sd serve -m MODEL [options]

A web UI at / and the AUTOMATIC1111 webui's HTTP API (/sdapi/v1/...), one job at a time.

  -m, --model PATH          checkpoint loaded first (SD 1.x .safetensors)
  --models-dir DIR          more checkpoints to switch between (sd_model_checkpoint)
  --embeddings-dir DIR      textual-inversion embeddings (.safetensors) named in prompts (default: the
                            folder embeddings/ beside the -m model)
  --lora-dir DIR            LoRAs named by <lora:NAME:WEIGHT> in prompts (default: loras/ beside the -m model)
  --upscalers-dir DIR       upscaler models (ESRGAN family, .safetensors) for /extra-single-image and the
                            hires fix (default: upscalers/ beside the -m model)
  --port N                  TCP port (default 7860; 0: any free port, printed at start)
  --listen                  accept connections from other machines (all interfaces), not only this one;
                            refused without --api-auth unless --insecure is given too
  --api-auth USER:PASS      HTTP basic auth on every route; several as U1:P1,U2:P2
  --insecure                allow --listen without --api-auth
  --outdir DIR              where save_images writes (default: outputs)
  --max-steps N             refuse requests above N sampling steps (default 150)
  --max-pixels N            refuse width*height above N (default 1048576, i.e. 1024x1024)
  --max-images N            refuse batch_size*n_iter above N (default 16)
  --max-queue N             jobs waiting beyond N are refused with 503 (default 32)
  --max-body-mb N           largest request body in MiB (default 32)
  --max-connections N       open connections beyond N are refused with 503 (default 64)
  --request-timeout S       seconds a request may take to arrive (default 30)
  --idle-timeout S          seconds a keep-alive connection may stay idle (default 60)
  --drain-seconds S         on SIGTERM, let the running job finish this long, then interrupt it (default 30)
  -t, --threads N           worker threads (default: all cores)
  --precision fp32|bf16     matrix products precision (default: best for this CPU)
)";
}

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument(what); }

double number_arg(const std::string& flag, const char* v, double lo, double hi) {
    char* end = nullptr;
    double d = std::strtod(v, &end);
    if (!*v || *end || !(d >= lo && d <= hi))
        bad(flag + " expects a number from " + std::to_string((long long)lo) + " to " + std::to_string((long long)hi) +
            ", got '" + v + "'");
    return d;
}

ServeOptions parse(int argc, const char* const* argv) {
    ServeOptions o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) bad(a + " needs a value");
            return argv[++i];
        };
        auto integer = [&](double lo, double hi) { return (long long)number_arg(a, value(), lo, hi); };
        if (a == "-h" || a == "--help") o.help = true;
        else if (a == "-m" || a == "--model") o.engine.model = value();
        else if (a == "--models-dir") o.engine.models_dir = value();
        else if (a == "--embeddings-dir") o.engine.embeddings_dir = value();
        else if (a == "--lora-dir") o.engine.lora_dir = value();
        else if (a == "--upscalers-dir") o.engine.upscalers_dir = value();
        else if (a == "--port") o.server.port = (int)integer(0, 65535);
        else if (a == "--listen") o.listen = true;
        else if (a == "--api-auth") o.api_auth = value();
        else if (a == "--insecure") o.insecure = true;
        else if (a == "--outdir") o.engine.outdir = value();
        else if (a == "--max-steps") o.api.limits.max_steps = (int)integer(1, 10000);
        else if (a == "--max-pixels") o.api.limits.max_pixels = integer(4096, 64.0 * 1024 * 1024);
        else if (a == "--max-images") o.api.limits.max_images = (int)integer(1, 1000);
        else if (a == "--max-queue") o.engine.max_queue = (size_t)integer(0, 100000);
        else if (a == "--max-body-mb") o.server.limits.max_body_bytes = (size_t)integer(1, 1024) << 20;
        else if (a == "--max-connections") o.server.max_connections = (size_t)integer(1, 100000);
        else if (a == "--request-timeout") o.server.request_timeout_s = number_arg(a, value(), 0.1, 86400);
        else if (a == "--idle-timeout") o.server.idle_timeout_s = number_arg(a, value(), 0.1, 86400);
        else if (a == "--drain-seconds") o.drain_seconds = number_arg(a, value(), 0, 86400);
        else if (a == "-t" || a == "--threads") o.threads = (int)integer(1, 1024);
        else if (a == "--precision") o.precision = value();
        else bad("unknown option '" + a + "' for serve (see sd serve --help)");
    }
    if (o.help) return o;
    if (o.engine.model.empty()) bad("no model given: pass -m with an SD 1.x checkpoint");
    if (!o.api_auth.empty()) {
        try {
            o.api.credentials = http::parse_credentials(o.api_auth);
        } catch (const std::exception& e) {
            bad(e.what());
        }
    }
    if (o.listen && o.api.credentials.empty() && !o.insecure)
        bad("--listen makes the server reachable from other machines; add --api-auth USER:PASS (or --insecure if "
            "this network is trusted)");
    o.server.host = o.listen ? "0.0.0.0" : "127.0.0.1";
    o.api.limits.max_side = std::max(2048, o.api.limits.max_side);
    return o;
}

}  // namespace

int serve_main(int argc, const char* const* argv, const char* version) {
    ServeOptions o;
    try {
        o = parse(argc, argv);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "sd serve: %s\n", e.what());
        return 2;
    }
    if (o.help) {
        std::printf("%s", serve_usage().c_str());
        return 0;
    }
    // Before any thread exists, so every thread inherits the mask: only the waiter below sees these signals.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    try {
        if (o.threads > 0) set_num_threads(o.threads);
        if (!o.precision.empty()) set_precision(parse_precision(o.precision.c_str()));
        else if (!std::getenv("SD_PRECISION")) set_precision(best_precision());
        active_precision();
        o.engine.version = version;
        Engine engine(o.engine);
        Api api(engine, o.api);
        http::Server server(o.server, [&api](const http::Request& r, std::shared_ptr<http::Responder> out) {
            api.handle(r, std::move(out));
        });
        int port = server.bind_and_listen();
        engine.start();
        std::fprintf(stderr, "sd serve: listening on http://%s:%d/ (model %s%s)\n",
                     o.listen ? "0.0.0.0" : "127.0.0.1", port, engine.current_checkpoint().filename.c_str(),
                     o.api.credentials.empty() ? "" : ", basic auth on");
        std::fflush(stderr);

        std::thread waiter([&] {
            int sig = 0;
            sigwait(&sigs, &sig);
            std::fprintf(stderr, "sd serve: %s: finishing the running job, refusing new ones\n",
                         sig == SIGTERM ? "SIGTERM" : "SIGINT");
            server.stop();
            std::thread second([&] {
                int s2 = 0;
                sigwait(&sigs, &s2);
                engine.interrupt();
            });
            second.detach();
            engine.shutdown(o.drain_seconds);
        });
        server.run();
        waiter.join();  // run() returns only after stop(), so the waiter has started shutting down
        std::fprintf(stderr, "sd serve: stopped\n");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sd serve: %s\n", e.what());
        return 1;
    }
}

}  // namespace sd::serve
