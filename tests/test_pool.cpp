// Thread pool: static partition covers every index exactly once, results do not depend on thread count.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "kernels/pool.h"

using namespace sd;

TEST_CASE("parallel_for covers [0, n) exactly once for any thread count") {
    for (int threads : {1, 2, 3, 7}) {
        set_num_threads(threads);
        CHECK(num_threads() == threads);
        for (int64_t n : {0, 1, 2, 3, 7, 65, 1000}) {
            std::vector<std::atomic<int>> hits(n);
            parallel_for(n, [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; i++) hits[i]++;
            });
            for (int64_t i = 0; i < n; i++) CHECK(hits[i] == 1);
        }
    }
    set_num_threads(0);
}

TEST_CASE("nested parallel_for runs inline and exceptions reach the caller") {
    set_num_threads(3);
    std::atomic<int64_t> sum{0};
    parallel_for(10, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++)
            parallel_for(10, [&](int64_t b2, int64_t e2) { sum += (e2 - b2) * i; });
    });
    CHECK(sum == 10 * 45);
    auto throwing = [](int64_t b, int64_t) { if (b > 0) throw std::runtime_error("x"); };
    CHECK_THROWS_AS(parallel_for(8, throwing), std::runtime_error);
    set_num_threads(0);
}
