// The egress's userspace data plane: End.DT6 over a TUN device. The SID's
// /128 route points at the device; each packet read is validated and
// decapsulated (srv6::end_dt6) and its inner packet written back, so the
// kernel delivers it locally — to the AnyIP prefix where the gateway's
// sockets listen — as after the kernel's own seg6local End.DT6 lookup in
// table local.
//
// Like End.DT6 in table local, the inner packet may only go to this host:
// its destination must be in the gateway's AISID prefix, anything else is
// dropped and counted, so the SID cannot be used to relay packets elsewhere.
#pragma once

#include "aisid/dataplane/srv6.hpp"
#include "aisid/dataplane/tun.hpp"

#include <atomic>
#include <memory>
#include <string>

namespace aisid::gw {

class DecapPlane final : public TunLoop {
public:
    struct Options {
        std::string tun_pattern = "aisid-eg%d";
    };
    struct Stats {
        uint64_t packets = 0, decapsulated = 0, not_local = 0, write_errors = 0;
        uint64_t refused[5] = {}; ///< by srv6::DecapError
    };
    static std::unique_ptr<DecapPlane> create(const in6_addr &sid, uint64_t prefix, const Options &o,
                                              std::string &err);
    ~DecapPlane() override;
    Stats stats() const;

private:
    DecapPlane(int fd, std::string name, const in6_addr &sid, uint64_t prefix)
        : TunLoop(fd, std::move(name)), sid_(sid), prefix_(prefix) {}
    void handle(std::span<uint8_t> pkt) override;

    in6_addr sid_;
    uint64_t prefix_;
    std::atomic<uint64_t> packets_{0}, decapsulated_{0}, not_local_{0};
    std::atomic<uint64_t> refused_[5] = {};
};

} // namespace aisid::gw
