// ops_split.h — how the non-matrix kernels split flat work over the thread pool (generic files only; the
// ISA files never include it, since it pulls in std::function).
#pragma once
#include <cstdint>

#include "kernels/pool.h"

namespace sd {

// Values per chunk for flat elementwise work: large enough to amortise a pool dispatch, small enough to
// balance. A multiple of every vector width, so chunk edges never change how a value is computed.
constexpr int64_t kFlatChunk = 1 << 15;

// Calls f(offset, count) over [0, n) in chunks of kFlatChunk, the chunks spread over the pool.
template <class F>
void for_chunks(int64_t n, F&& f) {
    parallel_for((n + kFlatChunk - 1) / kFlatChunk, [&](int64_t c0, int64_t c1) {
        int64_t i0 = c0 * kFlatChunk, i1 = c1 * kFlatChunk < n ? c1 * kFlatChunk : n;
        f(i0, i1 - i0);
    });
}

// Calls f(r0, r1) over [0, rows) so that each range holds at least about kFlatChunk values of `row_len`.
template <class F>
void for_rows(int64_t rows, int64_t row_len, F&& f) {
    parallel_for(rows, f, row_len > 0 ? (kFlatChunk + row_len - 1) / row_len : 1);
}

}  // namespace sd
