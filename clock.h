// clock.h — the two clocks sd reports: seconds that pass (durations, ETAs) and CPU seconds used (the cost of a stage
// on a shared machine, where wall time depends on who else runs).
#pragma once
#include <chrono>
#include <ctime>

namespace sd {

// Seconds on a steady clock: for differences only (it never jumps when the system time is set).
inline double wall_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// CPU seconds the calling thread has used: a kernel's cost when other processes share the cores.
inline double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// CPU seconds used by this process so far, all threads.
inline double process_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

}  // namespace sd
