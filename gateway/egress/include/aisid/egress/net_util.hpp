// Small socket and process helpers the gateway daemons share (aisid_gw_net).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aisid::gw {

/// An IPv6 socket address ("[ADDR]:PORT"; "ADDR" alone when a default port is given).
struct NetEndpoint {
    sockaddr_in6 sa{};
    std::string to_string() const;
};
std::optional<NetEndpoint> parse_endpoint(std::string_view text, int default_port = -1);
std::string format_sockaddr(const sockaddr_in6 &sa);
std::string format_addr(const in6_addr &a);

/// Runs a program (no shell) and waits; returns its exit status, or -1 when it
/// could not be started. Its stderr is captured into *err when err != nullptr.
int run_program(const std::vector<std::string> &argv, std::string *err = nullptr);

/// Connects a TCP socket to ep within timeout_ms; the connected fd (blocking
/// mode restored) or -1 with errno set.
int connect_timeout(const NetEndpoint &ep, int timeout_ms);

/// CLOCK_MONOTONIC in milliseconds.
uint64_t now_ms();

/// Raises RLIMIT_NOFILE to its hard limit (a proxy holds two sockets and four
/// pipe ends per flow).
void raise_nofile_limit();

/// "key=value" fields of a whitespace-separated line.
std::optional<std::string> field(std::string_view line, std::string_view key);

/// Splits on whitespace.
std::vector<std::string> split_ws(std::string_view s);

} // namespace aisid::gw
