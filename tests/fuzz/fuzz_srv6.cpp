// Fuzz: the userspace SRv6 data plane's packet parsing (End.DT6 decapsulation,
// the flow key, H.Encaps of arbitrary input). Oracles: nothing reads out of
// bounds (ASan), a decapsulated inner packet lies inside the input and is
// itself valid enough to encapsulate again, and encap then decap gives back
// exactly the inner packet.
#include "aisid/dataplane/srv6.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace aisid::gw;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    in6_addr sid{};
    if (size >= 40) std::memcpy(&sid, data + 24, 16); // let the SID match often
    std::span<const uint8_t> in(data, size);
    srv6::Decap d = srv6::end_dt6(in, sid);
    static uint8_t out[70000];
    if (d.error == srv6::DecapError::none) {
        if (d.inner_offset + d.inner_len > size || d.inner_len < 40) std::abort();
        srv6::EncapParams p;
        p.segs = std::span<const in6_addr>(&sid, 1);
        size_t n = srv6::h_encaps(in.subspan(d.inner_offset, d.inner_len), p, out);
        if (n != 64 + d.inner_len) std::abort();
        srv6::Decap again = srv6::end_dt6(std::span<const uint8_t>(out, n), sid);
        if (again.error != srv6::DecapError::none || again.inner_len != d.inner_len ||
            std::memcmp(out + again.inner_offset, data + d.inner_offset, d.inner_len) != 0)
            std::abort();
    }
    aisid::sched::FlowKey k;
    srv6::flow_key(in, k);
    srv6::EncapParams p;
    p.segs = std::span<const in6_addr>(&sid, 1);
    size_t n = srv6::h_encaps(in, p, out);
    if (n != 0 && n > sizeof out) std::abort();
    return 0;
}
