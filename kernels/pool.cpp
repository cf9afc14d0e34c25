// pool.cpp — persistent workers that sleep on a condition variable between parallel_for calls.
#include "kernels/pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace sd {
namespace {

class Pool {
public:
    explicit Pool(int n) { resize(n); }
    ~Pool() { stop(); }

    void resize(int n) {
        stop();
        n_ = std::max(1, n);
        quit_ = false;
        uint64_t now = generation_;  // new workers wait for the next region, not the last one
        for (int i = 1; i < n_; i++) workers_.emplace_back([this, i, now] { loop(i, now); });
    }
    int size() const { return n_; }

    void run(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
        if (n <= 0) return;
        int64_t parts = std::min<int64_t>(n_, std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
        if (parts <= 1 || in_parallel_) { fn(0, n); return; }
        std::lock_guard<std::mutex> serial(run_mu_);  // one parallel region at a time
        {
            std::lock_guard<std::mutex> lk(mu_);
            fn_ = &fn; total_ = n; parts_ = (int)parts; pending_ = (int)parts - 1; error_ = nullptr;
            generation_++;
        }
        cv_.notify_all();
        in_parallel_ = true;
        run_part(0);
        in_parallel_ = false;
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.wait(lk, [this] { return pending_ == 0; });
        fn_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

private:
    void run_part(int i) {
        int64_t b = total_ * i / parts_, e = total_ * (i + 1) / parts_;
        try {
            if (b < e) (*fn_)(b, e);
        } catch (...) {
            std::lock_guard<std::mutex> lk(mu_);
            if (!error_) error_ = std::current_exception();
        }
    }
    void loop(int i, uint64_t seen) {
        in_parallel_ = true;  // a worker's own parallel_for calls run inline
        for (;;) {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return quit_ || generation_ != seen; });
            if (quit_) return;
            seen = generation_;
            if (i >= parts_) continue;
            lk.unlock();
            run_part(i);
            lk.lock();
            if (--pending_ == 0) done_cv_.notify_one();
        }
    }
    void stop() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            quit_ = true;
        }
        cv_.notify_all();
        for (auto& t : workers_) t.join();
        workers_.clear();
    }

    std::vector<std::thread> workers_;
    std::mutex mu_, run_mu_;
    std::condition_variable cv_, done_cv_;
    const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
    int64_t total_ = 0;
    int parts_ = 0, pending_ = 0, n_ = 1;
    uint64_t generation_ = 0;
    bool quit_ = false;
    std::exception_ptr error_;
    static thread_local bool in_parallel_;
};
thread_local bool Pool::in_parallel_ = false;

int hardware_threads() { return std::max(1, (int)std::thread::hardware_concurrency()); }

Pool& pool() {
    static Pool p(hardware_threads());
    return p;
}

}  // namespace

void set_num_threads(int n) {
    if (n <= 0) n = hardware_threads();
    if (n != pool().size()) pool().resize(n);
}
int num_threads() { return pool().size(); }
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
    pool().run(n, fn, grain);
}

}  // namespace sd
