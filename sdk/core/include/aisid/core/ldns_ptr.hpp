// ldns objects owned by std::unique_ptr, one type per ldns kind, for every
// part that calls ldns (zones, records, TSIG, transfers, verification).
#pragma once

// ldns/common.h defines `bool`, `false` and `true` as macros unless
// <stdbool.h> came first (which in C++ defines none of them); without it a
// standard header read after this one (<optional>'s `bool(x) <=> false`)
// breaks.
#include <stdbool.h>

#include <ldns/ldns.h>

#include <memory>

namespace aisid {

template <auto Free> struct LdnsFree {
    template <class T> void operator()(T *p) const { Free(p); }
};

using LdnsPktPtr = std::unique_ptr<ldns_pkt, LdnsFree<ldns_pkt_free>>;
using LdnsRrPtr = std::unique_ptr<ldns_rr, LdnsFree<ldns_rr_free>>;
using LdnsRdfPtr = std::unique_ptr<ldns_rdf, LdnsFree<ldns_rdf_deep_free>>;
using LdnsRrListPtr = std::unique_ptr<ldns_rr_list, LdnsFree<ldns_rr_list_deep_free>>;
using LdnsBufferPtr = std::unique_ptr<ldns_buffer, LdnsFree<ldns_buffer_free>>;

} // namespace aisid
