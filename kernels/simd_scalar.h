// simd_scalar.h — the vector wrapper with one float per "vector": the Winograd transform bodies compiled as plain
// C++ for the scalar table (isa_scalar.cpp). The other scalar entries are written as plain loops instead.
#pragma once

namespace sd {
namespace {

typedef float vf;
const int VL = 1;
inline vf vload(const float* p) { return *p; }
inline void vstore(float* p, vf v) { *p = v; }
inline vf vadd(vf a, vf b) { return a + b; }
inline vf vsub(vf a, vf b) { return a - b; }
inline vf vmul(vf a, vf b) { return a * b; }
inline vf vset1(float x) { return x; }
inline void vdeinterleave(const float* p, vf& even, vf& odd) { even = p[0], odd = p[1]; }
inline void vzip(vf lo, vf hi, vf& first, vf& second) { first = lo, second = hi; }

}  // namespace
}  // namespace sd
