#include "log.hpp"

#include <unistd.h>

namespace aisid::resolver {

void log_line(LogLevel lvl, const std::string &msg) {
    static const char *names[] = {"error", "warning", "info", "debug"};
    std::string line = "aisidd: ";
    line += names[static_cast<int>(lvl)];
    line += ": ";
    line += msg;
    line += '\n';
    (void)!write(2, line.data(), line.size());
}

} // namespace aisid::resolver
