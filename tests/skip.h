// skip.h — a test case (or part of one) that cannot run on this machine says so instead of passing silently:
// SKIPPED("no AVX512_BF16 on this CPU") prints "skipped: ..." at that line, and the runner (main.cpp) lists every
// such case again just before its closing "N passed, N failed" line. The caller returns (or skips the block)
// itself. doctest's own skip() decorator is fixed at compile time, so it cannot express "not on this CPU".
#pragma once
#include <doctest/doctest.h>

#include <string>

namespace sd::test {
void note_skip(const std::string& reason);  // main.cpp: remembers the running test case's name and the reason
}

#define SKIPPED(reason)                         \
    do {                                          \
        MESSAGE("skipped: " << (reason));         \
        ::sd::test::note_skip(reason);            \
    } while (0)
