// The ./sd command line under hostile input, run as a user would: the built binary in a child process
// (`make test` builds ./sd first; SD_BIN=path overrides it), each case in a fresh folder under /tmp.
//
// The failure contract every case checks: a non-zero exit (2 for command-line mistakes), no crash, stderr
// one line "sd: ..." naming the culprit, and nothing left in the output folder — no image, no temporary file.
// Broken models are made here from tests/data/tiny_sd.safetensors (header rewritten, file cut) or written with
// write_safetensors; a full disk is RLIMIT_FSIZE, Ctrl-C is a real SIGINT. The success paths check what the
// README promises: --help lists every flag, tokenize / info output, the PNG's webui "parameters" text, batch
// seeds and latent dumps. Left out: the numerics of generation (test_txt2img.cpp and the golden tests).
// GCC 12 at -O1 (the sanitizer build) reports a false "may be used uninitialized" inside libstdc++'s std::regex
// automaton; the warning is in the standard library's code, not ours.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <doctest/doctest.h>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app/image_io.h"
#include "sha256.h"
#include "json.h"
#include "safetensors.h"
#include "sd_command.h"
#include "skip.h"

extern char** environ;

using namespace sd;
using sd::test::sd_binary;
using sd::test::slowdown;
namespace fs = std::filesystem;

namespace {

const char* kTiny = "tests/data/tiny_sd.safetensors";

// A fresh folder per case: dir/out is the output folder a failed run must leave empty, dir/cache the
// model-hash cache (XDG_CACHE_HOME), so the user's own cache is never touched.
struct Scratch {
    std::string dir, out, cache;
    Scratch() {
        char tmpl[] = "/tmp/sd_test_cli_XXXXXX";
        const char* d = mkdtemp(tmpl);
        REQUIRE(d != nullptr);
        dir = d;
        out = dir + "/out";
        cache = dir + "/cache";
        REQUIRE(mkdir(out.c_str(), 0755) == 0);
        REQUIRE(mkdir(cache.c_str(), 0755) == 0);
        chmod(dir.c_str(), 0755);  // reachable by the unprivileged user the permission cases run as under root
    }
    ~Scratch() {
        // Give back the permissions the cases took away, so everything can be removed.
        std::error_code ec;
        chmod(dir.c_str(), 0755);
        for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec))
            chmod(it->path().c_str(), it->is_directory() ? 0755 : 0644);
        fs::remove_all(dir, ec);
    }
    std::string path(const std::string& name) const { return dir + "/" + name; }
    std::vector<std::string> out_files() const {
        std::vector<std::string> names;
        std::error_code ec;
        for (auto& e : fs::directory_iterator(out, ec)) names.push_back(e.path().filename().string());
        return names;
    }
};

struct RunOptions {
    rlim_t file_size_limit = 0;     // RLIMIT_FSIZE in bytes with SIGXFSZ ignored (a full disk); 0: none
    rlim_t address_space_limit = 0; // RLIMIT_AS in bytes; 0: none
    bool unprivileged = false;      // under root: run as nobody (65534), so file permissions apply
    std::string interrupt_when;     // send SIGINT once stderr contains this; empty: never
    double timeout_s = 60;          // then SIGKILL, and the case fails
};

RunOptions unprivileged() {
    RunOptions o;
    o.unprivileged = true;
    return o;
}

struct RunResult {
    int exit_code = -1;          // the exit status, or 128 + signal
    bool signaled = false;       // killed by a signal (a crash, or our timeout)
    bool timed_out = false;
    bool dropped_privileges_failed = false;
    std::string out, err;
    double interrupt_to_exit_s = 0;  // seconds from our SIGINT to the child's exit
};

const int kCannotDropPrivileges = 125;

double now_s() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Runs `sd_binary() args...` from the repository root, capturing stdout and stderr.
RunResult run_sd(const std::vector<std::string>& args, const Scratch& s, const RunOptions& opt = {}) {
    // Everything the child needs is built before fork(): between fork and exec only async-signal-safe calls.
    std::vector<std::string> argv_s = sd::test::sd_argv();
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s;
    for (char** e = environ; *e; e++)
        if (std::strncmp(*e, "XDG_CACHE_HOME=", 15) != 0) env_s.push_back(*e);
    env_s.push_back("XDG_CACHE_HOME=" + s.cache);
    std::vector<char*> envp;
    for (std::string& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    const bool drop = opt.unprivileged && geteuid() == 0;

    int out_pipe[2], err_pipe[2];
    REQUIRE(pipe2(out_pipe, O_CLOEXEC) == 0);
    REQUIRE(pipe2(err_pipe, O_CLOEXEC) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        int null_fd = open("/dev/null", O_RDONLY);
        dup2(null_fd, 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        if (opt.file_size_limit) {
            signal(SIGXFSZ, SIG_IGN);  // writes past the limit then fail with EFBIG, as on a full disk
            struct rlimit rl = {opt.file_size_limit, opt.file_size_limit};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        if (opt.address_space_limit) {
            struct rlimit rl = {opt.address_space_limit, opt.address_space_limit};
            setrlimit(RLIMIT_AS, &rl);
        }
        if (drop && (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0)) {
            const char msg[] = "cannot drop privileges\n";
            ssize_t ignored = write(2, msg, sizeof msg - 1);
            (void)ignored;
            _exit(kCannotDropPrivileges);
        }
        execve(argv[0], argv.data(), envp.data());
        const char msg[] = "exec failed\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);

    RunResult r;
    const double deadline = now_s() + opt.timeout_s * slowdown();
    double interrupted_at = 0;
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
        int left_ms = (int)((deadline - now_s()) * 1000);
        if (left_ms <= 0) {
            r.timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        if (poll(fds, 2, left_ms) < 0 && errno != EINTR) break;
        for (int k = 0; k < 2; k++) {
            bool& open_ = k ? err_open : out_open;
            if (!open_ || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t n = read(fds[k].fd, buf, sizeof buf);
            if (n <= 0) { open_ = false; continue; }
            (k ? r.err : r.out).append(buf, (size_t)n);
        }
        if (!opt.interrupt_when.empty() && !interrupted_at && r.err.find(opt.interrupt_when) != std::string::npos) {
            kill(pid, SIGINT);
            interrupted_at = now_s();
        }
    }
    close(out_pipe[0]);
    close(err_pipe[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (interrupted_at) r.interrupt_to_exit_s = now_s() - interrupted_at;
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) { r.signaled = true; r.exit_code = 128 + WTERMSIG(status); }
    r.dropped_privileges_failed = drop && r.exit_code == kCannotDropPrivileges;
    return r;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

// The failure contract. `parts`: substrings the message must contain (the culprit). With progress_first,
// "step" progress lines may come before the message (failures during or after sampling); otherwise the
// message must be all of stderr.
void check_failure(const std::string& what, const RunResult& r, const Scratch& s,
                   const std::vector<std::string>& parts, int want_exit = -1, bool progress_first = false) {
    INFO("case: ", what);
    INFO("exit status ", r.exit_code, ", stderr:\n", r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK_FALSE(r.signaled);
    CHECK(r.exit_code != 0);
    if (want_exit >= 0) CHECK(r.exit_code == want_exit);
    std::vector<std::string> lines = lines_of(r.err);
    REQUIRE(!lines.empty());
    CHECK(r.err.back() == '\n');
    if (progress_first) {
        for (size_t i = 0; i + 1 < lines.size(); i++) {
            INFO("line ", i, ": ", lines[i]);
            CHECK(lines[i].rfind("step ", 0) == 0);
        }
    } else {
        CHECK(lines.size() == 1);
    }
    const std::string& msg = lines.back();
    CHECK(msg.rfind("sd: ", 0) == 0);
    CHECK(r.err.find("terminate called") == std::string::npos);
    CHECK(r.err.find("what()") == std::string::npos);
    for (const std::string& p : parts) {
        INFO("the message should contain: ", p);
        CHECK(msg.find(p) != std::string::npos);
    }
    std::vector<std::string> left = s.out_files();
    INFO("left in the output folder: ", left.size() ? left[0] : "");
    CHECK(left.empty());
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const void* data, size_t n) {
    std::ofstream f(path, std::ios::binary);
    f.write(static_cast<const char*>(data), (std::streamsize)n);
    REQUIRE(f.good());
}

// A copy of the tiny model with its header rewritten: edit(name, dtype) may change a tensor's dtype label or
// return false to drop the tensor (its bytes stay in the data region, unreferenced, which the format allows).
void write_tiny_variant(const std::string& dst, const std::function<bool(const std::string&, std::string&)>& edit) {
    std::vector<uint8_t> file = read_bytes(kTiny);
    REQUIRE(file.size() > 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | file[i];
    REQUIRE(n <= file.size() - 8);
    JsonValue root = parse_json((const char*)file.data() + 8, (size_t)n);
    std::string header = "{";
    for (size_t i = 0; i < root.keys.size(); i++) {
        const std::string& name = root.keys[i];
        const JsonValue& v = root.items[i];
        std::string entry;
        if (name == "__metadata__") {
            for (size_t j = 0; j < v.keys.size(); j++)
                entry += (j ? "," : "") + json_quote(v.keys[j]) + ":" + json_quote(v.items[j].text);
            entry = "{" + entry + "}";
        } else {
            std::string dtype = v.get("dtype")->text;
            if (!edit(name, dtype)) continue;
            std::string shape, offsets;
            for (const JsonValue& d : v.get("shape")->items) shape += (shape.empty() ? "" : ",") + d.text;
            for (const JsonValue& o : v.get("data_offsets")->items) offsets += (offsets.empty() ? "" : ",") + o.text;
            entry = "{\"dtype\":" + json_quote(dtype) + ",\"shape\":[" + shape + "],\"data_offsets\":[" + offsets + "]}";
        }
        header += (header.size() > 1 ? "," : "") + json_quote(name) + ":" + entry;
    }
    header += "}";
    while (header.size() % 8) header += ' ';
    std::vector<uint8_t> out(8);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)header.size() >> (8 * i));
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), file.begin() + 8 + (ptrdiff_t)n, file.end());
    write_bytes(dst, out.data(), out.size());
}

// Arguments of a small valid job (64x64, 2 steps) writing to s.out/x.png, plus `extra`.
std::vector<std::string> job(const Scratch& s, const std::string& model, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"-m", model, "-p", "a cat", "-W", "64", "-H", "64", "--steps", "2", "--seed", "1",
                                  "-o", s.out + "/x.png"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}

std::string png_parameters(const std::string& path) {
    for (auto& kv : read_png_text(read_bytes(path)))
        if (kv.first == "parameters") return kv.second;
    return "(no parameters chunk)";
}

struct BinaryCheck {
    BinaryCheck() {
        INFO("the CLI tests run ", sd_binary(), ": build it first (`make test` does), or set SD_BIN");
        REQUIRE(access(sd_binary().c_str(), X_OK) == 0);
    }
};

}  // namespace

TEST_CASE("cli: a model file that cannot be read is named in one line") {
    BinaryCheck bin;
    {
        Scratch s;
        std::string model = s.path("none.safetensors");
        // Without --seed: the random seed is announced only once the job can run, so the error stays alone.
        check_failure("missing model file", run_sd({"-m", model, "-p", "a cat", "-o", s.out + "/x.png"}, s), s,
                      {model, "no such file"}, 1);
    }
    {
        Scratch s;
        std::string model = s.path("locked.safetensors");
        fs::copy_file(kTiny, model);
        REQUIRE(chmod(model.c_str(), 0) == 0);
        chmod(s.out.c_str(), 0777);  // writable for nobody: the model must be what fails
        RunResult r = run_sd(job(s, model), s, unprivileged());
        if (r.dropped_privileges_failed)
            SKIPPED("running as root and cannot switch to user nobody: the unreadable-model case");
        else
            check_failure("unreadable model (mode 000)", r, s, {model, "cannot open", "Permission denied"}, 1);
    }
    {
        Scratch s;
        std::string model = s.path("folder.safetensors");
        REQUIRE(mkdir(model.c_str(), 0755) == 0);
        check_failure("a directory as model", run_sd(job(s, model), s), s, {model, "is a directory"}, 1);
    }
    {
        Scratch s;
        std::string model = s.path("pipe.safetensors");
        REQUIRE(mkfifo(model.c_str(), 0644) == 0);  // opening it to read would block: refused before that
        check_failure("a FIFO as model", run_sd(job(s, model), s), s, {model, "not a regular file"}, 1);
    }
    {
        Scratch s;
        std::string model = s.path("empty.safetensors");
        write_bytes(model, "", 0);
        check_failure("an empty file", run_sd(job(s, model), s), s, {model, "empty file"}, 1);
    }
    {
        Scratch s;
        std::string model = s.path("notes.safetensors");
        const char text[] = "These are not the weights you are looking for.\nJust some text.\n";
        write_bytes(model, text, sizeof text - 1);
        check_failure("random text", run_sd(job(s, model), s), s, {model, "not a safetensors file"}, 1);
    }
    {
        Scratch s;
        std::string model = s.path("half.safetensors");
        std::vector<uint8_t> tiny = read_bytes(kTiny);
        write_bytes(model, tiny.data(), tiny.size() / 2);
        check_failure("truncated file (first half of tiny_sd)", run_sd(job(s, model), s), s, {model, "truncated"}, 1);
    }
    {
        Scratch s;
        std::string model = s.path("short.safetensors");
        const uint8_t bytes[] = {0x00, 0x10, 0, 0, 0, 0, 0, 0, '{', '}'};  // claims a 4096-byte header
        write_bytes(model, bytes, sizeof bytes);
        check_failure("header length past the end", run_sd(job(s, model), s), s,
                      {model, "header length 4096 runs past the end of the file"}, 1);
    }
}

TEST_CASE("cli: a checkpoint sd cannot run is refused, saying why") {
    BinaryCheck bin;
    const std::string victim = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight";
    {
        Scratch s;
        std::string model = s.path("int.safetensors");
        std::string relabelled;
        // The same element size, so the file stays valid and only the dtype is wrong: I32 for F32, I16 for F16.
        write_tiny_variant(model, [&](const std::string& name, std::string& dtype) {
            if (name == victim) {
                relabelled = dtype == "F32" ? "I32" : "I16";
                dtype = relabelled;
            }
            return true;
        });
        REQUIRE(!relabelled.empty());
        check_failure("unsupported dtype for a UNet tensor", run_sd(job(s, model), s), s,
                      {model, victim, "dtype " + relabelled}, 1);
    }
    {
        Scratch s;
        std::string model = s.path("missing.safetensors");
        write_tiny_variant(model, [&](const std::string& name, std::string&) { return name != victim; });
        check_failure("missing UNet tensor", run_sd(job(s, model), s), s, {model, "missing tensor", victim}, 1);
    }
    {
        Scratch s;
        std::string model = s.path("refiner.safetensors");
        // The keys that make a file an SDXL refiner (as in test_checkpoint.cpp), as small zero tensors.
        const std::string U = "model.diffusion_model.";
        std::vector<std::pair<std::string, Tensor>> ts = {
            {U + "input_blocks.0.0.weight", Tensor::zeros({32, 4, 3, 3}, DType::f16)},
            {U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", Tensor::zeros({64, 1280}, DType::f16)},
            {"conditioner.embedders.0.model.token_embedding.weight", Tensor::zeros({10, 1280}, DType::f16)},
            {"first_stage_model.decoder.conv_in.weight", Tensor::zeros({8, 4, 3, 3}, DType::f16)},
        };
        write_safetensors(model, ts);
        check_failure("a checkpoint sd does not run", run_sd(job(s, model), s), s,
                      {model, "is an SDXL refiner checkpoint", "not the refiner"}, 1);
    }
}

TEST_CASE("cli: wrong option values are command-line errors naming the flag") {
    BinaryCheck bin;
    struct Case { std::vector<std::string> extra; std::vector<std::string> parts; };
    const Case cases[] = {
        {{"-W", "100"}, {"width and height must be multiples of 64", "100x64"}},
        {{"--steps", "0"}, {"--steps must be between 1 and 1000, got 0"}},
        {{"--steps", "-3"}, {"--steps must be between 1 and 1000, got -3"}},
        {{"--steps", "100000"}, {"--steps must be between 1 and 1000, got 100000"}},
        {{"--cfg-scale", "nan"}, {"--cfg-scale expects a finite number, got 'nan'"}},
        {{"--cfg-scale", "inf"}, {"--cfg-scale expects a finite number, got 'inf'"}},
        {{"--cfg-scale", "abc"}, {"--cfg-scale expects a finite number, got 'abc'"}},
        {{"--sampler", "eulr"}, {"unknown sampler 'eulr'", "euler_a", "dpmpp_2m", "DPM++ 2M Karras"}},
        {{"--scheduler", "fast"}, {"unknown noise schedule 'fast'", "karras"}},
        {{"--frobnicate"}, {"unknown option '--frobnicate'", "sd --help"}},
        {{"--steps"}, {"--steps needs a value"}},
        {{"-o", ""}, {"-o needs a file name"}},
        {{"a", "dog"}, {"unexpected argument 'a'"}},
    };
    for (const Case& c : cases) {
        Scratch s;
        std::string what;
        for (const std::string& a : c.extra) what += a + " ";
        check_failure(what, run_sd(job(s, kTiny, c.extra), s), s, c.parts, 2);
    }
    {
        Scratch s;  // valid syntax, but the model's text encoder has only 3 layers: known once it is loaded
        check_failure("--clip-skip 12", run_sd(job(s, kTiny, {"--clip-skip", "12"}), s), s,
                      {"--clip-skip 12 is more than the text encoder's 3 layers"}, 1);
    }
    Scratch s;
    check_failure("no -m", run_sd({"-p", "a cat", "-o", s.out + "/x.png"}, s), s,
                  {"no model given", "-m", "README"}, 2);
}

TEST_CASE("cli: an image too large for memory is refused before any work, with the numbers") {
    BinaryCheck bin;
    if (sd::test::emulated()) {  // measured: qemu-aarch64 under a 4 GiB RLIMIT_AS printed nothing in 600 s
        SKIPPED("under an emulator RLIMIT_AS limits the emulator's own address space, not sd's");
        return;
    }
    Scratch s;
    // RLIMIT_AS makes the verdict the same on any machine (a 128 GB one would otherwise start the job).
    RunOptions opt;
    opt.address_space_limit = 4ull << 30;
    opt.timeout_s = 20;  // a CLI that starts the job anyway fails here rather than after an hour
    RunResult r = run_sd(job(s, kTiny, {"-W", "8192", "-H", "8192"}), s, opt);
    check_failure("-W 8192 -H 8192 with 4 GiB of address space", r, s,
                  {"a 8192x8192 image needs about", "MiB of working memory but only", "MiB is available"}, 1);
    // The numbers are the estimate (GiBs for the tiny model: 10 GiB in Nov 2026; SD 1.5 needs ~100 GiB) and
    // what the limit leaves.
    std::smatch m;
    REQUIRE(std::regex_search(r.err, m, std::regex("needs about ([0-9]+) MiB.* only ([0-9]+) MiB")));
    INFO(r.err);
    CHECK(std::stoll(m[1]) > 4 * 1024);
    CHECK(std::stoll(m[2]) < 4 * 1024);
}

TEST_CASE("cli: an unwritable output is refused, naming the path") {
    BinaryCheck bin;
    {
        Scratch s;
        check_failure("output folder does not exist", run_sd(job(s, kTiny, {"-o", "/nonexistent/dir/x.png"}), s), s,
                      {"cannot write '/nonexistent/dir/x.png'", "folder '/nonexistent/dir' does not exist"}, 1);
    }
    {
        Scratch s;
        check_failure("output is a folder", run_sd(job(s, kTiny, {"-o", s.cache}), s), s,
                      {"cannot write '" + s.cache + "': it is a folder"}, 1);
    }
    {
        Scratch s;
        std::string file = s.path("latents");
        write_bytes(file, "x", 1);
        check_failure("--dump-latents into a file", run_sd(job(s, kTiny, {"--dump-latents", file}), s), s,
                      {file + "/noise.npy", "Not a directory"}, 1);
    }
    {
        Scratch s;
        REQUIRE(chmod(s.out.c_str(), 0555) == 0);
        RunResult r = run_sd(job(s, kTiny), s, unprivileged());
        if (r.dropped_privileges_failed)
            SKIPPED("running as root and cannot switch to user nobody: the read-only-folder case");
        else
            check_failure("read-only output folder", r, s, {"cannot write '" + s.out + "/x.png'", "is not writable"}, 1);
    }
}

TEST_CASE("cli: a full disk while writing the PNG leaves nothing behind") {
    BinaryCheck bin;
    Scratch s;
    // 2000 bytes: the 64x64 PNG (~12 KB) cannot be written; the hash cache line (~100 bytes) can.
    RunOptions opt;
    opt.file_size_limit = 2000;
    RunResult r = run_sd(job(s, kTiny), s, opt);
    check_failure("RLIMIT_FSIZE 2000", r, s, {"cannot write '" + s.out + "/x.png'", "File too large", "nothing was written"},
                  1, /*progress_first=*/true);
}

TEST_CASE("cli: Ctrl-C during sampling exits 130 and writes nothing") {
    BinaryCheck bin;
    {
        Scratch s;
        // 256x256 with 1000 steps runs for minutes on the tiny model; SIGINT goes after the first step. Under the
        // emulator a 256x256 step alone takes minutes (measured 166 s, qemu -cpu max at load 6), so one step could
        // outlast the deadline below; at 64x64 its 1000 steps still run for hours there.
        RunOptions opt;
        opt.interrupt_when = "step 1/";
        opt.timeout_s = 30;
        const std::string size = sd::test::emulated() ? "64" : "256";
        RunResult r = run_sd(job(s, kTiny, {"-W", size, "-H", size, "--steps", "1000"}), s, opt);
        check_failure("SIGINT after step 1", r, s, {"interrupted; no image was written"}, 130, /*progress_first=*/true);
        INFO("seconds from SIGINT to exit: ", r.interrupt_to_exit_s);
        CHECK(r.interrupt_to_exit_s < 10 * slowdown());  // stops at the next model evaluation, not at the end of sampling
    }
    {
        Scratch s;
        // A batch: SIGINT while the second image is sampled. The first image stays, and the message says so.
        RunOptions opt;
        opt.interrupt_when = "wrote ";
        opt.timeout_s = 30;
        // Under the emulator a step takes ~30 s on a busy machine: 4 steps still leave the second image sampling.
        const std::string steps = sd::test::emulated() ? "4" : "150";
        RunResult r = run_sd(job(s, kTiny, {"--steps", steps, "--sampler", "euler", "--batch-count", "2"}), s, opt);
        INFO("stderr:\n", r.err);
        CHECK(r.exit_code == 130);
        std::vector<std::string> lines = lines_of(r.err);
        REQUIRE(!lines.empty());
        CHECK(lines.back() == "sd: interrupted; 1 of 2 images were written");
        CHECK(s.out_files() == std::vector<std::string>{"x-1.png"});
    }
}

TEST_CASE("cli: --help lists every flag the parser accepts") {
    BinaryCheck bin;
    Scratch s;
    RunResult r = run_sd({"--help"}, s);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    // Every flag options.cpp compares against, read from its source, so a new flag without help text fails here.
    std::ifstream src("app/options.cpp");
    std::string code((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
    std::set<std::string> flags;
    std::regex flag_re("a == \"(-[-a-zA-Z0-9]+)\"");
    for (auto it = std::sregex_iterator(code.begin(), code.end(), flag_re); it != std::sregex_iterator(); ++it)
        flags.insert((*it)[1]);
    REQUIRE(flags.size() >= 30);
    // Compatibility spellings of documented flags (other tools' names) stay out of the help on purpose.
    const std::set<std::string> aliases = {"--sampling-method", "--schedule", "--cfg", "-b"};
    for (const std::string& f : flags) {
        if (aliases.count(f)) continue;
        INFO("flag ", f, " is not in sd --help");
        CHECK(std::regex_search(r.out, std::regex("(^|[ ,])" + f + "([ ,]|$)", std::regex::multiline)));
    }
}

TEST_CASE("cli: tokenize and info print what the README shows") {
    BinaryCheck bin;
    Scratch s;
    RunResult t = run_sd({"tokenize", "a photo of an astronaut"}, s);
    CHECK(t.exit_code == 0);
    CHECK(t.out == "49406 320 1125 539 550 18376 49407\n");
    RunResult i = run_sd({"info", kTiny}, s);
    CHECK(i.exit_code == 0);
    INFO(i.out);
    CHECK(i.out.find("SD 1.x") != std::string::npos);
    CHECK(i.out.find("runs in sd    yes") != std::string::npos);
}

TEST_CASE("cli: a generation writes a PNG with the webui parameters, and nothing else") {
    BinaryCheck bin;
    Scratch s;
    std::string version = run_sd({"--version"}, s).out;
    REQUIRE(!version.empty());
    version.pop_back();  // newline
    const std::string hash = sha256_file(kTiny).substr(0, 10);
    RunResult r = run_sd({"-m", kTiny, "-p", "a cat, on a mat", "-n", "blurry", "-W", "64", "-H", "128", "--steps", "3",
                          "--seed", "42", "--cfg-scale", "7.5", "-o", s.out + "/x.png"},
                         s);
    INFO("stderr:\n", r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("sd: ") == std::string::npos);
    CHECK(r.err.find("seed: ") == std::string::npos);  // printed only when the seed was random
    CHECK(s.out_files() == std::vector<std::string>{"x.png"});  // no temporary file left
    Image img = read_image_rgb(s.out + "/x.png");
    CHECK(img.width == 64);
    CHECK(img.height == 128);
    CHECK(png_parameters(s.out + "/x.png") ==
          // Euler a has no default schedule: the webui writes the choice, "Automatic"
          "a cat, on a mat\nNegative prompt: blurry\nSteps: 3, Sampler: Euler a, Schedule type: Automatic, "
          "CFG scale: 7.5, Seed: 42, Size: 64x128, Model hash: " + hash + ", Model: tiny_sd, RNG: NV, Version: " +
              version);

    // A random seed is printed, and it is the one in the file.
    RunResult rr = run_sd({"-m", kTiny, "-p", "x", "-W", "64", "-H", "64", "--steps", "1", "-o", s.out + "/r.png"}, s);
    REQUIRE(rr.exit_code == 0);
    std::smatch m;
    REQUIRE(std::regex_search(rr.err, m, std::regex("^seed: ([0-9]+)\n")));
    CHECK(png_parameters(s.out + "/r.png").find("Seed: " + m[1].str() + ",") != std::string::npos);
}

TEST_CASE("cli: schedule type Automatic runs and writes what the webui does") {
    BinaryCheck bin;
    Scratch s;
    auto gen = [&](const std::string& file, std::vector<std::string> extra) {
        std::vector<std::string> a = {"-m", kTiny, "-p", "x", "-W", "64", "-H", "64", "--steps", "2", "--seed", "7",
                                      "-o", s.out + "/" + file};
        a.insert(a.end(), extra.begin(), extra.end());
        RunResult r = run_sd(a, s);
        INFO("stderr:\n", r.err);
        REQUIRE(r.exit_code == 0);
        return png_parameters(s.out + "/" + file);
    };
    // the final latent (the tiny model's pictures are too flat to tell schedules apart)
    auto latent = [&](const std::string& dir) { return read_bytes(s.dir + "/" + dir + "/step_002.npy"); };
    // DPM++ 2M's default schedule is Karras: same latent as asking for Karras, and the webui writes "Karras"
    CHECK(gen("auto.png", {"--sampler", "DPM++ 2M", "--dump-latents", s.dir + "/auto"}).find("Schedule type: Karras,") !=
          std::string::npos);
    gen("karras.png", {"--sampler", "DPM++ 2M", "--scheduler", "karras", "--dump-latents", s.dir + "/karras"});
    gen("uniform.png", {"--sampler", "DPM++ 2M", "--scheduler", "Uniform", "--dump-latents", s.dir + "/uniform"});
    REQUIRE(!latent("auto").empty());
    CHECK(latent("auto") == latent("karras"));
    CHECK(latent("auto") != latent("uniform"));
    CHECK(gen("a2.png", {"--sampler", "DPM++ 2M", "--scheduler", "automatic"}).find("Schedule type: Karras,") !=
          std::string::npos);
    // Beta writes its distribution's parameters where the webui adds them (after RNG)
    std::string beta = gen("beta.png", {"--sampler", "Euler", "--scheduler", "beta", "--beta-alpha", "0.5"});
    CHECK(beta.find("Schedule type: Beta,") != std::string::npos);
    CHECK(beta.find("RNG: NV, Beta schedule alpha: 0.5, Beta schedule beta: 0.6, Version: ") != std::string::npos);
    CHECK(run_sd({"-m", kTiny, "-p", "x", "--scheduler", "cosine", "-o", s.out + "/c.png"}, s).exit_code == 2);
    // The sigma min / max / rho settings: used (a different latent) and written where the webui writes them
    std::string ov = gen("ov.png", {"--sampler", "DPM++ 2M", "--sigma-min", "0.1", "--rho", "5", "--dump-latents",
                                    s.dir + "/ov"});
    CHECK(ov.find("RNG: NV, Schedule min sigma: 0.1, Schedule rho: 5.0, Version: ") != std::string::npos);
    CHECK(latent("ov") != latent("auto"));
    // Euler a runs k-diffusion's own sigmas under Automatic: nothing is used or written
    CHECK(gen("ea.png", {"--sampler", "Euler a", "--sigma-max", "8"}).find("Schedule max sigma") == std::string::npos);
    RunResult bad = run_sd({"-m", kTiny, "-p", "x", "--sigma-min", "5", "--sigma-max", "1", "-o", s.out + "/b.png"}, s);
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--sigma-min must be below --sigma-max") != std::string::npos);
}

TEST_CASE("cli: --batch-count writes numbered files with consecutive seeds") {
    BinaryCheck bin;
    Scratch s;
    RunResult r = run_sd(job(s, kTiny, {"--seed", "1000", "--batch-count", "2"}), s);
    INFO("stderr:\n", r.err);
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> files = s.out_files();
    std::sort(files.begin(), files.end());
    CHECK(files == std::vector<std::string>{"x-1.png", "x-2.png"});
    CHECK(png_parameters(s.out + "/x-1.png").find("Seed: 1000,") != std::string::npos);
    CHECK(png_parameters(s.out + "/x-2.png").find("Seed: 1001,") != std::string::npos);
}

TEST_CASE("cli: --dump-latents writes the noise and every step as .npy") {
    BinaryCheck bin;
    Scratch s;
    std::string dir = s.path("latents");
    RunResult r = run_sd(job(s, kTiny, {"--steps", "3", "--dump-latents", dir}), s);
    INFO("stderr:\n", r.err);
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"noise.npy", "step_000.npy", "step_001.npy", "step_002.npy", "step_003.npy"});
    for (const std::string& n : names) {
        std::vector<uint8_t> b = read_bytes(dir + "/" + n);
        INFO(n);
        REQUIRE(b.size() > 10);
        CHECK(std::memcmp(b.data(), "\x93NUMPY", 6) == 0);
        size_t header = 10 + (size_t)(b[8] | b[9] << 8);
        std::string dict(b.begin() + 10, b.begin() + (ptrdiff_t)std::min(header, b.size()));
        CHECK(dict.find("'shape': (1, 4, 8, 8)") != std::string::npos);
        CHECK(b.size() == header + 4 * 8 * 8 * sizeof(float));
    }
}

TEST_CASE("cli: SD 2.x: info says epsilon or v and why; --vae, --prediction, --preview and the infotext") {
    BinaryCheck bin;
    Scratch s;
    const std::string tiny2 = "tests/data/tiny_sd2.safetensors";
    RunResult i = run_sd({"info", tiny2}, s);
    INFO(i.out, i.err);
    CHECK(i.exit_code == 0);
    CHECK(i.out.find("SD 2.x") != std::string::npos);
    CHECK(i.out.find("prediction    eps (the webui's UNet probe: mean(out - x) at t=999 is -0.46") != std::string::npos);
    CHECK(i.out.find("not below -1)") != std::string::npos);
    RunResult again = run_sd({"info", tiny2}, s);  // the probe's result is cached per file
    CHECK(again.out.find("prediction    eps (the webui's UNet probe (cached): mean(out - x) at t=999 is -0.46") !=
          std::string::npos);
    RunResult iv = run_sd({"info", tiny2, "--prediction", "v"}, s);
    CHECK(iv.out.find("prediction    v (--prediction v)") != std::string::npos);

    // The SD 2.x tiny file has no VAE: without --vae it is refused with a sentence naming what is missing.
    check_failure("SD 2.x without a VAE", run_sd(job(s, tiny2), s), s, {tiny2, "without its VAE"}, 1);

    const std::string hash = sha256_file(tiny2).substr(0, 10), vae_hash = sha256_file(kTiny).substr(0, 10);
    RunResult r = run_sd(job(s, tiny2, {"--vae", kTiny, "--prediction", "v", "--cfg-scale", "1", "--clip-skip", "2",
                                        "--sampler", "euler", "--scheduler", "sgm_uniform", "--preview",
                                        s.dir + "/preview.png"}),
                         s);
    INFO("stderr:\n", r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("--clip-skip 2 is recorded but has no effect on SD 2.x") != std::string::npos);
    CHECK(r.err.find("preview: ") != std::string::npos);
    CHECK(s.out_files() == std::vector<std::string>{"x.png"});
    CHECK(read_image_rgb(s.dir + "/preview.png").width == 64);
    CHECK(png_parameters(s.out + "/x.png") ==
          "a cat\nSteps: 2, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1.0, Seed: 1, Size: 64x64, "
          "Model hash: " + hash + ", Model: tiny_sd2, VAE hash: " + vae_hash + ", VAE: tiny_sd, Clip skip: 2, RNG: NV, "
              "Prediction: v, Version: " + run_sd({"--version"}, s).out.substr(0, run_sd({"--version"}, s).out.size() - 1));
    std::remove((s.out + "/x.png").c_str());
    check_failure("--prediction x", run_sd(job(s, tiny2, {"--prediction", "x0"}), s), s, {"--prediction", "eps or v"}, 2);
}

TEST_CASE("cli: img2img's bad inputs are one sentence each, before the model is loaded") {
    BinaryCheck bin;
    Scratch s;
    write_bytes(s.path("notes.png"), "just some text\n", 15);
    check_failure("missing init image", run_sd(job(s, kTiny, {"--init-img", s.path("nope.png")}), s), s,
                  {"cannot read image", "nope.png", "No such file"}, 1);
    check_failure("a text file as init image", run_sd(job(s, kTiny, {"--init-img", s.path("notes.png")}), s), s,
                  {"notes.png", "is not an image sd can read"}, 1);
    check_failure("a folder as init image", run_sd(job(s, kTiny, {"--init-img", s.out}), s), s,
                  {"cannot read image", "it is a folder"}, 1);
    check_failure("strength above 1", run_sd(job(s, kTiny, {"--init-img", "tests/data/astronaut_256.png",
                                                           "--strength", "1.5"}), s), s,
                  {"--strength must be between 0 and 1, got 1.5"}, 2);
    check_failure("mask without init image", run_sd(job(s, kTiny, {"--mask", "tests/data/astronaut_256.png"}), s), s,
                  {"--mask needs --init-img"}, 2);
    check_failure("unknown resize mode", run_sd(job(s, kTiny, {"--init-img", "tests/data/astronaut_256.png",
                                                              "--resize-mode", "stretch"}), s), s,
                  {"--resize-mode must be resize, crop, fill or latent"}, 2);
    check_failure("absurd hires scale", run_sd(job(s, kTiny, {"--hires-scale", "100"}), s), s,
                  {"--hires-scale must be between 1 and 8, got 100"}, 2);
}

TEST_CASE("cli: img2img writes the webui's infotext with the denoising strength") {
    BinaryCheck bin;
    Scratch s;
    RunResult r = run_sd(job(s, kTiny, {"--init-img", "tests/data/astronaut_256.png", "--strength", "0.5",
                                        "--resize-mode", "crop", "--rng", "cpu"}), s);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    std::string text = png_parameters(s.out + "/x.png");
    CHECK_MESSAGE(text.find("Size: 64x64, Model hash: ") != std::string::npos, text);
    CHECK_MESSAGE(text.find("Model: tiny_sd, Denoising strength: 0.5, RNG: CPU, Version: ") != std::string::npos, text);
    // the timestep samplers run in img2img too (their runs are golden-tested in test_img2img)
    Scratch s2;
    r = run_sd(job(s2, kTiny, {"--init-img", "tests/data/astronaut_256.png", "--strength", "0.5", "--sampler", "ddim"}),
               s2);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    text = png_parameters(s2.out + "/x.png");
    CHECK_MESSAGE(text.find("Sampler: DDIM, ") != std::string::npos, text);
    CHECK_MESSAGE(text.find("Denoising strength: 0.5, ") != std::string::npos, text);
}

TEST_CASE("cli: the hires fix writes the target size and the webui's hires fields") {
    BinaryCheck bin;
    Scratch s;
    RunResult r = run_sd(job(s, kTiny, {"--hires-scale", "2", "--hires-steps", "2", "--hires-upscaler", "lanczos",
                                        "--rng", "cpu"}), s);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    std::string text = png_parameters(s.out + "/x.png");
    CHECK_MESSAGE(text.find("Size: 64x64, Model hash: ") != std::string::npos, text);  // the first pass's size
    CHECK_MESSAGE(text.find("Model: tiny_sd, Denoising strength: 0.7, RNG: CPU, Hires upscale: 2.0, Hires steps: 2, "
                            "Hires upscaler: Lanczos, Version: ") != std::string::npos, text);
    Image img = read_image(s.out + "/x.png");
    CHECK(img.width == 128);
    CHECK(img.height == 128);
}

TEST_CASE("cli: hires fix mistakes are one sentence before any sampling") {
    BinaryCheck bin;
    Scratch s;
    check_failure("unknown hires upscaler", run_sd(job(s, kTiny, {"--hires-scale", "2", "--hires-upscaler", "bilinear"}), s),
                  s, {"--hires-upscaler must be latent"}, 2);
    Scratch s2;
    check_failure("hires size not a multiple of 64", run_sd(job(s2, kTiny, {"--hires-scale", "1.5"}), s2), s2,
                  {"96x96 image; sd needs multiples of 64"}, 1);
    Scratch s3;
    check_failure("a checkpoint as upscaler", run_sd(job(s3, kTiny, {"--hires-upscaler", "tests/data/tiny_sd.safetensors",
                                                                    "--hires-scale", "2"}), s3), s3,
                  {"tiny_sd.safetensors"}, 1);
}

TEST_CASE("cli: inpainting writes the webui's mask fields; a mask of another size is resized as the webui does") {
    BinaryCheck bin;
    Scratch s;
    // a 32x48 mask for a 256x256 init image and a 64x64 output: resized to the output like the image
    Image mask;
    mask.width = 32; mask.height = 48; mask.channels = 3;
    mask.pixels.assign(32 * 48 * 3, 0);
    for (int y = 10; y < 30; y++)
        for (int x = 8; x < 24; x++)
            for (int c = 0; c < 3; c++) mask.pixels[(y * 32 + x) * 3 + c] = 255;
    write_file_atomic(s.path("mask.png"), encode_png(mask, {}));
    RunResult r = run_sd(job(s, kTiny, {"--init-img", "tests/data/astronaut_256.png", "--mask", s.path("mask.png"),
                                        "--invert-mask", "--inpainting-fill", "latent_noise", "--rng", "cpu"}), s);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    std::string text = png_parameters(s.out + "/x.png");
    CHECK_MESSAGE(text.find("Denoising strength: 0.75, RNG: CPU, Mask mode: Inpaint not masked, Mask blur: 4, "
                            "Masked content: latent noise, Version: ") != std::string::npos, text);
    RunResult r2 = run_sd(job(s, kTiny, {"--init-img", "tests/data/astronaut_256.png", "--mask", s.path("mask.png"),
                                         "--inpaint-full-res", "--inpaint-padding", "8", "--mask-blur", "0", "-o",
                                         s.out + "/y.png"}), s);
    REQUIRE_MESSAGE(r2.exit_code == 0, r2.err);
    text = png_parameters(s.out + "/y.png");
    CHECK_MESSAGE(text.find("Denoising strength: 0.75, RNG: NV, Inpaint area: Only masked, Masked area padding: 8, "
                            "Version: ") != std::string::npos, text);
    Image out = read_image(s.out + "/y.png");
    CHECK(out.width == 256);  // only masked: pasted back into the init image
    Scratch s2;
    check_failure("unknown inpainting fill", run_sd(job(s2, kTiny, {"--init-img", "tests/data/astronaut_256.png",
                                                                   "--mask", "tests/data/astronaut_256.png",
                                                                   "--inpainting-fill", "blur"}), s2), s2,
                  {"--inpainting-fill must be fill, original, latent_noise or latent_nothing"}, 2);
    Scratch s3;
    check_failure("missing mask", run_sd(job(s3, kTiny, {"--init-img", "tests/data/astronaut_256.png", "--mask",
                                                        s3.path("none.png")}), s3), s3,
                  {"cannot read image", "none.png"}, 1);
}
