// memory.cpp — see memory.h.
#include "app/memory.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace sd {
namespace {

// A number from the first line of a small file (cgroup limits), or 0 when absent or "max".
size_t read_size_file(const char* path) {
    std::ifstream f(path);
    unsigned long long v = 0;
    return f >> v ? (size_t)v : 0;
}

}  // namespace

size_t available_memory() {
    size_t avail = 0;
    std::ifstream f("/proc/meminfo");
    std::string key, unit;
    size_t kb;
    while (f >> key >> kb >> unit)
        if (key == "MemAvailable:") { avail = kb * 1024; break; }
    auto lower = [&](size_t cap) { if (cap && (!avail || cap < avail)) avail = cap; };
    size_t cg_max = read_size_file("/sys/fs/cgroup/memory.max"), cg_cur = read_size_file("/sys/fs/cgroup/memory.current");
    if (cg_max) lower(cg_max > cg_cur ? cg_max - cg_cur : 1);
    // /proc/self/statm, in pages: address space (what RLIMIT_AS counts) ... data + stack (RLIMIT_DATA's).
    unsigned long long as_pages = 0, data_pages = 0, skip;
    if (std::FILE* s = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(s, "%llu %llu %llu %llu %llu %llu", &as_pages, &skip, &skip, &skip, &skip, &data_pages) != 6)
            as_pages = data_pages = 0;
        std::fclose(s);
    }
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        lower(rl.rlim_cur > as_pages * page ? (size_t)(rl.rlim_cur - as_pages * page) : 1);
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        lower(rl.rlim_cur > data_pages * page ? (size_t)(rl.rlim_cur - data_pages * page) : 1);
    return avail;
}

std::string memory_refusal(size_t need, size_t avail, int width, int height) {
    if (!avail || need <= avail) return "";
    return "a " + std::to_string(width) + "x" + std::to_string(height) + " image needs about " +
           std::to_string(need >> 20) + " MiB of working memory but only " + std::to_string(avail >> 20) +
           " MiB is available; choose a smaller size";
}

double peak_rss_gb() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}

}  // namespace sd
