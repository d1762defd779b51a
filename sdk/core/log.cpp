#include "aisid/core/log.hpp"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>

namespace aisid {

std::optional<LogLevel> parse_log_level(std::string_view t) {
    if (t == "error") return LogLevel::error;
    if (t == "warn" || t == "warning") return LogLevel::warn;
    if (t == "info") return LogLevel::info;
    if (t == "debug") return LogLevel::debug;
    return std::nullopt;
}

void log_line(LogLevel lvl, std::string_view msg) {
    static const char *names[] = {"error", "warning", "info", "debug"};
    std::string line = log_detail::program.load(std::memory_order_relaxed);
    line += ": ";
    line += names[static_cast<int>(lvl)];
    line += ": ";
    line += msg;
    line += '\n';
    (void)!write(2, line.data(), line.size());
}

void logf(LogLevel lvl, const char *fmt, ...) {
    if (!log_enabled(lvl)) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_line(lvl, buf);
}

} // namespace aisid
