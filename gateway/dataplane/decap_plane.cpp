#include "aisid/dataplane/decap_plane.hpp"

namespace aisid::gw {

std::unique_ptr<DecapPlane> DecapPlane::create(const in6_addr &sid, uint64_t prefix, const Options &o,
                                               std::string &err) {
    std::string name;
    // The largest MTU: forwarding into the device must never refuse an outer
    // packet the link delivered (it would send Packet Too Big to the ingress).
    int fd = open_tun(o.tun_pattern, 65535, name, err);
    if (fd < 0) return nullptr;
    return std::unique_ptr<DecapPlane>(new DecapPlane(fd, name, sid, prefix));
}

DecapPlane::~DecapPlane() { stop(); }

DecapPlane::Stats DecapPlane::stats() const {
    Stats s;
    s.packets = packets_.load();
    s.decapsulated = decapsulated_.load();
    s.not_local = not_local_.load();
    s.write_errors = write_errors_.load();
    for (int i = 0; i < 5; ++i) s.refused[i] = refused_[i].load();
    return s;
}

void DecapPlane::handle(std::span<uint8_t> pkt) {
    packets_.fetch_add(1, std::memory_order_relaxed);
    srv6::Decap d = srv6::end_dt6(pkt, sid_);
    if (d.error != srv6::DecapError::none) {
        refused_[static_cast<int>(d.error)].fetch_add(1, std::memory_order_relaxed);
        return;
    }
    std::span<uint8_t> inner = pkt.subspan(d.inner_offset, d.inner_len);
    uint64_t dst_prefix = 0;
    for (int i = 0; i < 8; ++i) dst_prefix = dst_prefix << 8 | inner[24 + i];
    if (dst_prefix != prefix_) {
        not_local_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (emit(inner)) decapsulated_.fetch_add(1, std::memory_order_relaxed);
}

} // namespace aisid::gw
