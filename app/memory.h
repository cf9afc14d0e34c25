// memory.h — how much memory this process may still allocate, so that a job too big for the machine is refused
// with one sentence before any work (CLI and server alike) rather than ended by the OOM killer halfway.
#pragma once
#include <cstddef>
#include <string>

namespace sd {

// The system's MemAvailable, lowered by a container's cgroup limit (MemAvailable shows the host's memory there)
// and by ulimit -v / -d. 0 means unknown.
size_t available_memory();

// The refusal for an image of width × height that needs `need` bytes of working memory when `avail` are
// available: "a 2048x2048 image needs about N MiB of working memory but only M MiB is available; choose a
// smaller size". Empty when it fits or avail is unknown (0).
std::string memory_refusal(size_t need, size_t avail, int width, int height);

// The most memory this process has had resident so far (getrusage's ru_maxrss), in GB.
double peak_rss_gb();

}  // namespace sd
