// model_hash.cpp — the model-hash cache and its background job.
#include "app/model_hash.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace sd {

namespace {
std::string cache_file() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    std::string dir = xdg && *xdg ? std::string(xdg) : home && *home ? std::string(home) + "/.cache" : "";
    if (dir.empty()) return "";
    return dir + "/sd/hashes.tsv";
}
}  // namespace

std::string model_hash(const std::string& path, const std::atomic<bool>* stop) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) throw std::runtime_error("cannot stat '" + path + "'");
    char real[PATH_MAX];
    std::string abs = realpath(path.c_str(), real) ? real : path;
    std::string key = abs + "\t" + std::to_string((long long)st.st_size) + "\t" + std::to_string((long long)st.st_mtime);
    std::string cache = cache_file();
    if (!cache.empty()) {
        std::ifstream in(cache);
        std::string line;
        while (std::getline(in, line))
            if (line.size() > key.size() + 1 && line.compare(0, key.size(), key) == 0 && line[key.size()] == '\t')
                return line.substr(key.size() + 1);
    }
    std::string h = sha256_file(path, stop).substr(0, 10);
    if (!cache.empty()) {
        std::string dir = cache.substr(0, cache.rfind('/'));
        mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0755);
        mkdir(dir.c_str(), 0755);
        std::ofstream out(cache, std::ios::app);
        if (out) out << key << '\t' << h << '\n';
    }
    return h;
}

ModelHashJob::ModelHashJob(const std::string& path)
    : thread_([this, path] {
          try {
              hash_ = model_hash(path, &stop_);
          } catch (...) {
              error_ = std::current_exception();
          }
      }) {}

ModelHashJob::~ModelHashJob() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

const std::string& ModelHashJob::get() {
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(error_);
    return hash_;
}

}  // namespace sd
