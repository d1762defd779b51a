// Clients for the tests: dig and its output, raw DNS over UDP and TCP (for
// what dig cannot send), and HTTP GET (metrics).
#pragma once

#include <string>
#include <vector>

namespace aisid::test {

/// dig @127.0.0.1 -p PORT +tries=1 +time=3 ARGS...; its stdout. Skips the test when dig is missing.
std::string dig(int port, std::vector<std::string> args);
/// The status of dig's output ("NOERROR"), or "(none)".
std::string status_of(const std::string &dig_out);
/// The flags of dig's output ("qr aa rd ra").
std::string flags_of(const std::string &dig_out);
bool has_flag(const std::string &dig_out, const std::string &flag);

/// One UDP exchange with 127.0.0.1:port (from `src` when given); "" when nothing comes back within timeout_ms.
std::string udp_ask(int port, const std::string &msg, int timeout_ms = 1000, const char *src = nullptr);
/// True when a DNS server at ip:port (IPv4) answers a query (any answer) within timeout_ms.
bool dns_answers(const std::string &ip, int port, int timeout_ms = 200);
/// A TCP connection to 127.0.0.1:port; -1 when refused.
int tcp_connect(int port);
bool send_all(int fd, const std::string &bytes);
/// The message with its TCP length prefix (RFC 1035 §4.2.2).
std::string framed(const std::string &msg);
/// Reads until the peer closes, or sends nothing for timeout_ms.
std::string read_until_closed(int fd, int timeout_ms);
/// Reads one length-prefixed message; "" on EOF or timeout.
std::string tcp_read_msg(int fd, int timeout_ms = 2000);

/// GET PATH from 127.0.0.1:port over plain HTTP; the whole response, "" when refused.
std::string http_get(int port, const std::string &path);
/// The value of one metric line ("name{labels} value") in Prometheus text; -1 when absent.
double metric(const std::string &text, const std::string &series);

} // namespace aisid::test
