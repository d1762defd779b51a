// Domain names in lowercase wire form, built without allocation.
// Every name the core compares goes through WireName, so case-insensitivity
// (RFC 4343) is decided once, when the name is built.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aisid {

inline constexpr size_t kMaxNameLen = 255;  // RFC 1035 §2.3.4
inline constexpr size_t kMaxLabelLen = 63;

struct WireName {
    uint8_t buf[kMaxNameLen + 1];  // length-prefixed labels, ends with the root's 0
    uint16_t len = 0;              // bytes in buf, the root byte included
    uint8_t nlabels = 0;           // labels, the root excluded
    uint8_t offs[128];             // offset of each label, leftmost first

    std::string_view wire() const { return {reinterpret_cast<const char *>(buf), len}; }
    /// The name from label i on (i == nlabels is the root).
    std::string_view suffix(unsigned i) const {
        size_t o = i < nlabels ? offs[i] : len - 1u;
        return {reinterpret_cast<const char *>(buf) + o, len - o};
    }
    std::string_view label(unsigned i) const {
        return {reinterpret_cast<const char *>(buf) + offs[i] + 1, buf[offs[i]]};
    }
    /// Wire bytes of the labels [0, i), without the root: a name relative to suffix(i).
    std::string_view prefix_labels(unsigned i) const {
        size_t e = i < nlabels ? offs[i] : len - 1u;
        return {reinterpret_cast<const char *>(buf), e};
    }
};

/// Presentation text ("Yolo.ai.example" or "yolo.ai.example.") to lowercase
/// wire form; handles \X and \DDD escapes. "." and "" are the root.
bool name_from_text(std::string_view text, WireName &out);
/// Reads a (possibly compressed, RFC 1035 §4.1.4) name from a message at pos;
/// pos moves past it. False on any malformation or compression loop.
bool name_from_wire(const uint8_t *msg, size_t msglen, size_t &pos, WireName &out);
/// Lowercase wire form (with root) to presentation text with a trailing dot.
std::string name_to_text(std::string_view wire);
/// Appends the text of wire labels (no root byte needed) without trailing dot.
void append_labels_text(std::string &out, std::string_view labels);

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

} // namespace aisid
