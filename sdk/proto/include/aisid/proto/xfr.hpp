// Zone transfers: building AXFR (RFC 5936) and IXFR (RFC 1995) responses as a
// sequence of TCP messages, and pulling a zone from a primary as a client.
#pragma once

#include "aisid/proto/records.hpp"
#include "aisid/core/socket_address.hpp"
#include "aisid/proto/tsig.hpp"

#include <sys/socket.h>

#include <optional>
#include <string>
#include <vector>

namespace aisid::proto {


/// What a transfer brought.
struct XfrResult {
    enum class Kind { failed, up_to_date, full, incremental } kind = Kind::failed;
    std::string why;          // failed
    bool refused = false;     // the primary said REFUSED/NOTAUTH or TSIG failed
    uint32_t serial = 0;      // the primary's serial
    std::vector<Record> full; // Kind::full: every record, SOA first
    std::vector<Diff> diffs;  // Kind::incremental
};

/// Parses a transfer's record stream; nullopt while incomplete.
std::optional<XfrResult> parse_xfr_stream(const std::vector<Record> &rrs, bool asked_ixfr,
                                          std::optional<uint32_t> have_serial, bool last_message_single);

/// "1.2.3.4:53", "[::1]:53" (SockAddr::to_string for a bare sockaddr_storage).
inline std::string sockaddr_text(const sockaddr_storage &ss) { return SockAddr::from(ss).to_string(); }

/// Pulls `origin_wire` from a primary over TCP: IXFR from `have` when given,
/// else AXFR. Signed with `key` when given; the answer's TSIG is checked.
XfrResult xfr_pull(const sockaddr_storage &server, socklen_t slen, std::string_view origin_wire,
                   std::optional<Record> have_soa, const TsigKey *key, int timeout_ms);

/// One request/response exchange over TCP (length-prefixed), for UPDATE and
/// queries from tools. Returns false on a network failure (err says why).
bool tcp_exchange(const sockaddr_storage &server, socklen_t slen, const std::string &request,
                  std::vector<std::string> &responses, int timeout_ms, std::string &err,
                  bool (*done)(const std::string &msg, void *ctx) = nullptr, void *ctx = nullptr);
/// One exchange over UDP; false on timeout/network error.
bool udp_exchange(const sockaddr_storage &server, socklen_t slen, const std::string &request, std::string &response,
                  int timeout_ms, std::string &err);

} // namespace aisid::proto
