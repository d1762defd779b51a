// The one logger of every aisid daemon (aisidd, aisid-egress, aisid-ingress):
// "PROGRAM: LEVEL: message" on stderr (journald adds the time), one write(2)
// per line so that lines from several threads never interleave.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

namespace aisid {

/// Most severe first: a level shows every line at it and above.
enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

/// "error", "warn" or "warning", "info", "debug".
std::optional<LogLevel> parse_log_level(std::string_view text);

namespace log_detail {
inline std::atomic<int> level{static_cast<int>(LogLevel::info)};
inline std::atomic<const char *> program{"aisid"};
} // namespace log_detail

/// The program name each line starts with (a string literal: it is kept).
inline void set_log_program(const char *name) { log_detail::program.store(name, std::memory_order_relaxed); }
inline void set_log_level(LogLevel l) { log_detail::level.store(static_cast<int>(l), std::memory_order_relaxed); }
inline bool log_enabled(LogLevel l) {
    return static_cast<int>(l) <= log_detail::level.load(std::memory_order_relaxed);
}

/// Writes one line whatever the level (callers check log_enabled, or use AISID_LOG).
void log_line(LogLevel lvl, std::string_view msg);
/// printf-style, for code that formats C strings; checks the level itself.
void logf(LogLevel lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/// The message expression is evaluated only when the level is enabled.
#define AISID_LOG(lvl, expr)                                                         \
    do {                                                                             \
        if (::aisid::log_enabled(lvl)) ::aisid::log_line(lvl, (expr));               \
    } while (0)

} // namespace aisid
