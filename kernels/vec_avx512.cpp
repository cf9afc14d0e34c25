// vec_avx512.cpp — the AVX512 kernel table for the non-matrix kernels (see ops_internal.h).
#include "kernels/ops_internal.h"

namespace sd {

const OpsTable& ops_avx512() {
    static const OpsTable t = {};  // null entries: the scalar kernels
    return t;
}

}  // namespace sd
