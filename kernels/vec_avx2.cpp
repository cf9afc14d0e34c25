// vec_avx2.cpp — the AVX2 kernel table for the non-matrix kernels (see ops_internal.h).
#include "kernels/ops_internal.h"

namespace sd {

const OpsTable& ops_avx2() {
    static const OpsTable t = {};  // null entries: the scalar kernels
    return t;
}

}  // namespace sd
