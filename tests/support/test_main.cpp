// doctest main for every test binary. ctest runs one test case per process
// (`--test-case=NAME`); a filter that matches nothing would pass silently
// (a test name with a comma splits in discovery), so such a run fails here.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <cstring>

namespace {

std::atomic<int> g_started{0};

struct StartCounter : doctest::IReporter {
    explicit StartCounter(const doctest::ContextOptions &) {}
    void report_query(const doctest::QueryData &) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats &) override {}
    void test_case_start(const doctest::TestCaseData &) override { ++g_started; }
    void test_case_reenter(const doctest::TestCaseData &) override {}
    void test_case_end(const doctest::CurrentTestCaseStats &) override {}
    void test_case_exception(const doctest::TestCaseException &) override {}
    void subcase_start(const doctest::SubcaseSignature &) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData &) override {}
    void log_message(const doctest::MessageData &) override {}
    void test_case_skipped(const doctest::TestCaseData &) override {}
};

} // namespace

REGISTER_LISTENER("aisid-start-counter", 1, StartCounter);

int main(int argc, char **argv) {
    bool filtered = false;
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], "--test-case=", 12) == 0 || std::strncmp(argv[i], "-tc=", 4) == 0) filtered = true;
    doctest::Context ctx(argc, argv);
    int rc = ctx.run();
    if (ctx.shouldExit()) return rc;  // --list-test-cases, --help, ...
    if (filtered && g_started == 0) {
        std::fprintf(stderr, "test_main: no test case matched the filter (a comma or ';' in a TEST_CASE name?)\n");
        return rc ? rc : 1;
    }
    return rc;
}
