// Zone transfers: building AXFR (RFC 5936) and IXFR (RFC 1995) responses as a
// sequence of TCP messages, and pulling a zone from a primary as a client.
#pragma once

#include "journal.hpp"
#include "records.hpp"
#include "socket_address.hpp"
#include "tsig.hpp"

#include <sys/socket.h>

#include <optional>
#include <string>
#include <vector>

namespace aisid::resolver {

/// Packs a record stream into response messages to `query` (its ID and
/// question), at most ~16 KB each, TSIG-signed when `key` is given
/// (RFC 8945 §5.3.1: the first with the request MAC, the next timers-only).
std::vector<std::string> pack_xfr(const ldns_pkt *query, const std::vector<Record> &stream, const TsigKey *key,
                                  const ldns_rdf *request_mac);

/// The IXFR stream (RFC 1995 §4) from `diffs` (consecutive, ending at the
/// current serial): current SOA, each diff, current SOA.
std::vector<Record> ixfr_stream(const Record &cur_soa, const std::vector<const Diff *> &diffs);
/// The AXFR stream: the zone's records framed by its SOA.
std::vector<Record> axfr_stream(const std::vector<Record> &zone);

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

} // namespace aisid::resolver
