// sd.cpp — the command-line interface (placeholder until the pipeline lands).
#include <cstdio>

#include "kernels/kernels.h"

int main() {
    std::printf("sd: kernels use %s\n", sd::isa_name(sd::active_isa()));
    return 0;
}
