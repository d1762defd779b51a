// Leveled logging to stderr: "aisidd: LEVEL: message". One write per line so
// lines from several threads do not interleave.
#pragma once

#include "config.hpp"

#include <atomic>
#include <string>

namespace aisid::resolver {

inline std::atomic<int> g_log_level{static_cast<int>(LogLevel::info)};

void log_line(LogLevel lvl, const std::string &msg);

inline bool log_enabled(LogLevel l) { return static_cast<int>(l) <= g_log_level.load(std::memory_order_relaxed); }
#define AISIDD_LOG(lvl, expr)                                                     \
    do {                                                                          \
        if (::aisid::resolver::log_enabled(lvl)) ::aisid::resolver::log_line(lvl, (expr)); \
    } while (0)

} // namespace aisid::resolver
