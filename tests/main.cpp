// main.cpp — the doctest runner for every test file, plus a closing line "N passed, N failed"
// (counting test cases) that CI reads; the exit status is non-zero on any failure. Before it, the cases that
// skipped part of their work on this machine (SKIPPED, tests/skip.h), each with its reason.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "skip.h"

namespace {
unsigned g_passed = 0, g_failed = 0;
std::string g_current;                  // the test case running now
std::vector<std::string> g_skips;       // "case: reason", in run order
struct Summary : doctest::IReporter {
    explicit Summary(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats& s) override {
        g_failed = s.numTestCasesFailed;
        g_passed = s.numTestCasesPassingFilters - g_failed;
    }
    void test_case_start(const doctest::TestCaseData& d) override { g_current = d.m_name; }
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};
}  // namespace
REGISTER_LISTENER("summary", 1000, Summary);

void sd::test::note_skip(const std::string& reason) { g_skips.push_back(g_current + ": " + reason); }

int main(int argc, char** argv) {
    doctest::Context ctx(argc, argv);
    int rc = ctx.run();
    // The kernel tests loop over the instruction sets this CPU has; name the ones whose bodies went untested.
#if defined(__x86_64__)
    for (sd::Isa isa : {sd::Isa::avx2, sd::Isa::avx512})
#else
    for (sd::Isa isa : {sd::Isa::neon})
#endif
        if (!sd::isa_supported(isa))
            g_skips.push_back(std::string("every per-ISA kernel test: ") + sd::isa_name(isa) + " not on this CPU");
    if (ctx.shouldExit()) return rc;  // --help, --list-test-cases, ...
    std::fflush(stderr);
    if (!g_skips.empty()) {
        std::printf("skipped on this machine (%zu):\n", g_skips.size());
        for (const std::string& s : g_skips) std::printf("  %s\n", s.c_str());
    }
    std::printf("%u passed, %u failed\n", g_passed, g_failed);  // the closing line CI reads
    return rc != 0 || g_failed ? 1 : 0;
}
