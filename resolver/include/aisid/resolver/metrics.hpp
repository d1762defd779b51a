// `--metrics ADDR:PORT`: Prometheus text format (version 0.0.4) at /metrics,
// served by one small thread (a non-blocking poll loop, each scraper with a
// 2 s deadline: a slow one delays no other); scraping sums the workers' relaxed counters.
#pragma once

#include "aisid/resolver/runtime.hpp"

#include <string>
#include <thread>

namespace aisid::resolver {

/// The exposition text for the current state.
std::string render_metrics(const Shared &sh);

class MetricsServer {
public:
    MetricsServer(Shared &sh) : sh_(sh) {}
    ~MetricsServer();
    /// Binds; "" on success, else the error.
    std::string start(const SockAddr &addr);
    void stop();

private:
    void run();
    Shared &sh_;
    int fd_ = -1;
    std::thread th_;
};

} // namespace aisid::resolver
