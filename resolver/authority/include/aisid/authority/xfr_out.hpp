// Zone transfers, the server side: the AXFR (RFC 5936) and IXFR (RFC 1995)
// record streams, packed into TCP response messages, TSIG-signed when the
// request was (the client side, xfr_pull, is in aisid/proto/xfr.hpp).
#pragma once

#include "aisid/proto/records.hpp"
#include "aisid/proto/tsig.hpp"

#include <string>
#include <vector>

namespace aisid::resolver {

using proto::Diff;
using proto::Record;
using proto::TsigKey;

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

} // namespace aisid::resolver
