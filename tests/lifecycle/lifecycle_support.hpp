// Helpers shared by the lifecycle tests: records from zone-file text, and the
// test zone (support/test_zone.hpp).
#pragma once

#include "aisid/proto/records.hpp"
#include "test_zone.hpp"

#include <doctest/doctest.h>

#include <string>

namespace lifecycle_test {

using aisid::proto::Record;

inline Record rr(const std::string &text, uint16_t cls = aisid::kClassIN) {
    ldns_rr *raw = nullptr;
    ldns_status st = ldns_rr_new_frm_str(&raw, text.c_str(), 300, nullptr, nullptr);
    REQUIRE_MESSAGE(st == LDNS_STATUS_OK, text);
    Record r = aisid::proto::record_from_ldns(raw);
    ldns_rr_free(raw);
    r.cls = cls;
    if (cls != aisid::kClassIN) r.ttl = 0;
    return r;
}

// A delete or prerequisite without data: class ANY or NONE.
inline Record bare(const std::string &name, uint16_t type, uint16_t cls) {
    Record r;
    REQUIRE(aisid::proto::wire_from_text(name, r.owner));
    r.type = type;
    r.cls = cls;
    r.ttl = 0;
    return r;
}

} // namespace lifecycle_test
