// The AISID value type (SPEC §1): a 128-bit IPv6 address laid out as
//   | prefix: 64 | object: 16 | function: 16 | method: 16 | performance: 16 |
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct in6_addr;

namespace aisid {

/// The three codebook dimensions, in the order they sit in the address.
enum class Dim : uint8_t { object = 0, function = 1, method = 2 };
inline constexpr const char *dim_name(Dim d) {
    return d == Dim::object ? "object" : d == Dim::function ? "function" : "method";
}

/// Code 0 means "any" (a wildcard); 0xffff is reserved (SPEC §1).
inline constexpr uint16_t kAnyCode = 0;
inline constexpr uint16_t kReservedCode = 0xffff;

/// An AISID: a plain value, 16 bytes, network byte order.
class Aisid {
public:
    constexpr Aisid() = default;
    explicit constexpr Aisid(const std::array<uint8_t, 16> &b) : bytes_(b) {}
    static Aisid from_in6(const in6_addr &a);
    /// Builds an AISID from its parts.
    static constexpr Aisid make(uint64_t prefix, uint16_t object, uint16_t function,
                                uint16_t method, uint16_t performance) {
        Aisid a;
        a.set_prefix(prefix);
        a.set_object(object);
        a.set_function(function);
        a.set_method(method);
        a.set_performance(performance);
        return a;
    }

    /// Parses any valid IPv6 text (inet_pton rules); nullopt otherwise.
    static std::optional<Aisid> parse(std::string_view text);
    /// RFC 5952 canonical text.
    std::string to_string() const;
    /// RFC 5952 text into buf (at least 46 bytes); returns its length.
    size_t format(char *buf, size_t len) const;
    void to_in6(in6_addr &out) const;

    constexpr uint64_t prefix() const { return get64(0); }
    constexpr uint16_t object() const { return get16(8); }
    constexpr uint16_t function() const { return get16(10); }
    constexpr uint16_t method() const { return get16(12); }
    constexpr uint16_t performance() const { return get16(14); }
    constexpr uint16_t code(Dim d) const { return get16(8 + 2 * static_cast<int>(d)); }

    constexpr void set_prefix(uint64_t p) {
        for (int i = 0; i < 8; ++i) bytes_[i] = static_cast<uint8_t>(p >> (56 - 8 * i));
    }
    constexpr void set_object(uint16_t v) { set16(8, v); }
    constexpr void set_function(uint16_t v) { set16(10, v); }
    constexpr void set_method(uint16_t v) { set16(12, v); }
    constexpr void set_performance(uint16_t v) { set16(14, v); }
    constexpr void set_code(Dim d, uint16_t v) { set16(8 + 2 * static_cast<int>(d), v); }

    constexpr const std::array<uint8_t, 16> &bytes() const { return bytes_; }
    constexpr const uint8_t *data() const { return bytes_.data(); }
    friend constexpr bool operator==(const Aisid &, const Aisid &) = default;

private:
    constexpr uint16_t get16(int o) const {
        return static_cast<uint16_t>((bytes_[o] << 8) | bytes_[o + 1]);
    }
    constexpr void set16(int o, uint16_t v) {
        bytes_[o] = static_cast<uint8_t>(v >> 8);
        bytes_[o + 1] = static_cast<uint8_t>(v);
    }
    constexpr uint64_t get64(int o) const {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | bytes_[o + i];
        return v;
    }
    std::array<uint8_t, 16> bytes_{};
};

/// "2001:db8:abcd:12::/64" → the 64-bit prefix; nullopt unless it is a valid /64
/// with no bits set past the prefix length.
std::optional<uint64_t> parse_prefix64(std::string_view text);
/// The prefix as RFC 5952 text with "/64".
std::string format_prefix64(uint64_t prefix);

} // namespace aisid
