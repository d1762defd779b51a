#include "aisid/core/dname.hpp"

#include <cstdio>
#include <cstring>

namespace aisid {

namespace {

struct LowerTable {
    uint8_t t[256];
    constexpr LowerTable() : t() {
        for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(i >= 'A' && i <= 'Z' ? i + 32 : i);
    }
};
constexpr LowerTable kLower;

// Names with escapes: character by character.
bool name_from_text_escaped(std::string_view text, WireName &out);

} // namespace

// The common case has no escapes: one pass copies each byte through a
// lowercase table and closes a label at each dot; a backslash sends the name
// to the careful parser. (In-process resolution spends most of its time here.)
bool name_from_text(std::string_view text, WireName &out) {
    out.nlabels = 0;
    if (text.empty() || text == ".") {
        out.buf[0] = 0;
        out.len = 1;
        return true;
    }
    if (text.back() == '.') text.remove_suffix(1);
    if (text.size() + 2 > kMaxNameLen) {
        // Escapes can make a long text a short name.
        return text.find('\\') != std::string_view::npos && name_from_text_escaped(text, out);
    }
    const uint8_t *p = reinterpret_cast<const uint8_t *>(text.data());
    size_t n = text.size(), lab = 0, pos = 1;  // buf[lab] is the open label's length byte
    for (size_t i = 0; i < n; ++i) {
        uint8_t c = p[i];
        if (c == '.') {
            size_t len = pos - lab - 1;
            if (len == 0 || len > kMaxLabelLen || out.nlabels >= 126) return false;
            out.buf[lab] = static_cast<uint8_t>(len);
            out.offs[out.nlabels++] = static_cast<uint8_t>(lab);
            lab = pos++;
            continue;
        }
        if (c == '\\') return name_from_text_escaped(text, out);
        out.buf[pos++] = kLower.t[c];
    }
    size_t len = pos - lab - 1;
    if (len == 0 || len > kMaxLabelLen) return false;
    out.buf[lab] = static_cast<uint8_t>(len);
    out.offs[out.nlabels++] = static_cast<uint8_t>(lab);
    out.buf[pos++] = 0;
    out.len = static_cast<uint16_t>(pos);
    return true;
}

namespace {

bool name_from_text_escaped(std::string_view text, WireName &out) {
    out.len = 0;
    out.nlabels = 0;
    if (text == "." || text.empty()) {
        out.buf[0] = 0;
        out.len = 1;
        return true;
    }
    size_t pos = 0;  // write position
    size_t lab = 0;  // current label's length byte
    out.buf[0] = 0;
    pos = 1;
    bool empty_label = true;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '.') {
            if (empty_label) return false;
            if (i + 1 == text.size()) break;  // the trailing dot
            if (out.nlabels >= 127) return false;
            out.offs[out.nlabels++] = static_cast<uint8_t>(lab);
            lab = pos;
            if (pos >= kMaxNameLen) return false;
            out.buf[pos++] = 0;
            empty_label = true;
            continue;
        }
        if (c == '\\') {
            if (i + 1 >= text.size()) return false;
            char n = text[i + 1];
            if (n >= '0' && n <= '9') {
                if (i + 3 >= text.size()) return false;  // \DDD needs three digits
                int v = 0;
                for (int k = 1; k <= 3; ++k) {
                    char d = text[i + k];
                    if (d < '0' || d > '9') return false;
                    v = v * 10 + (d - '0');
                }
                if (v > 255) return false;
                c = static_cast<char>(v);
                i += 3;
            } else {
                c = n;
                i += 1;
            }
        }
        if (pos >= kMaxNameLen || pos - lab > kMaxLabelLen) return false;
        out.buf[pos++] = static_cast<uint8_t>(ascii_lower(c));
        out.buf[lab] = static_cast<uint8_t>(pos - lab - 1);
        empty_label = false;
    }
    if (empty_label) return false;
    if (out.nlabels >= 127) return false;
    out.offs[out.nlabels++] = static_cast<uint8_t>(lab);
    if (pos >= kMaxNameLen + 1) return false;
    out.buf[pos++] = 0;
    out.len = static_cast<uint16_t>(pos);
    return out.len <= kMaxNameLen;
}

} // namespace

bool name_from_wire(const uint8_t *msg, size_t msglen, size_t &pos, WireName &out) {
    out.len = 0;
    out.nlabels = 0;
    size_t p = pos;
    bool jumped = false;
    int jumps = 0;
    for (;;) {
        if (p >= msglen) return false;
        uint8_t l = msg[p];
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= msglen || ++jumps > 64) return false;
            size_t target = (static_cast<size_t>(l & 0x3f) << 8) | msg[p + 1];
            if (!jumped) pos = p + 2;
            jumped = true;
            if (target >= p) return false;  // only backward pointers: no loops
            p = target;
            continue;
        }
        if (l & 0xc0) return false;  // RFC 6891 §5: extended label types are gone
        if (l == 0) {
            if (out.len + 1u > kMaxNameLen) return false;
            out.buf[out.len++] = 0;
            if (!jumped) pos = p + 1;
            return true;
        }
        if (p + 1 + l > msglen || out.len + 1u + l + 1u > kMaxNameLen || out.nlabels >= 127) return false;
        out.offs[out.nlabels++] = static_cast<uint8_t>(out.len);
        out.buf[out.len++] = l;
        for (unsigned i = 0; i < l; ++i)
            out.buf[out.len++] = static_cast<uint8_t>(ascii_lower(static_cast<char>(msg[p + 1 + i])));
        p += 1 + l;
    }
}

void append_labels_text(std::string &out, std::string_view w) {
    size_t p = 0;
    bool first = true;
    while (p < w.size()) {
        uint8_t l = static_cast<uint8_t>(w[p]);
        if (l == 0) break;
        if (!first) out.push_back('.');
        first = false;
        for (size_t i = 1; i <= l && p + i < w.size(); ++i) {
            unsigned char c = static_cast<unsigned char>(w[p + i]);
            if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' || c == '$') {
                out.push_back('\\');
                out.push_back(static_cast<char>(c));
            } else if (c <= 0x20 || c >= 0x7f) {
                char b[5];
                std::snprintf(b, sizeof b, "\\%03u", c);
                out.append(b);
            } else {
                out.push_back(static_cast<char>(c));
            }
        }
        p += 1 + l;
    }
}

std::string name_to_text(std::string_view wire) {
    std::string out;
    append_labels_text(out, wire);
    out.push_back('.');
    return out;
}

} // namespace aisid
