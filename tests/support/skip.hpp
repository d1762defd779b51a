// Skipping a test the machine cannot run (not root, a kernel feature or a
// program missing): the reason goes to stderr and the process exits 77, which
// ctest reports as skipped (SKIP_RETURN_CODE 77, set for every test in
// tests/CMakeLists.txt). ctest runs each doctest case in a process of its
// own, so only that case is skipped. Never return early instead: that reads
// as passed.
#pragma once

#include "proc.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace aisid::test {

[[noreturn]] inline void skip(const std::string &why) {
    std::fprintf(stderr, "SKIPPED: %s\n", why.c_str());
    std::fflush(stderr);
    std::_Exit(77);
}

/// Skips the test unless `cond` holds.
inline void skip_unless(bool cond, const std::string &why) {
    if (!cond) skip(why);
}

/// Skips the test unless it runs as root (network namespaces, mounts, raw sockets).
inline void skip_unless_root(const std::string &what_for) { skip_unless(::geteuid() == 0, "needs root " + what_for); }

/// Skips the test when `program` is not in PATH (`package`: where to get it;
/// packaging/test-deps.txt lists the test peers).
inline void skip_unless_program(const std::string &program, const std::string &package = "") {
    skip_unless(have_program(program),
                program + " is not installed" + (package.empty() ? std::string() : " (" + package + ")"));
}

} // namespace aisid::test
