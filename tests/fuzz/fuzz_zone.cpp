// Zone loading: any text must either load or fail with a FILE:LINE error,
// never crash; a loaded zone must answer lookups of its own names.
#include "zone_set.hpp"

#include <string>

using namespace aisid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 64 * 1024) return 0;
    std::string_view text(reinterpret_cast<const char *>(data), size);
    if (text.find("$INCLUDE") != std::string_view::npos) return 0;  // no file system access from the fuzzer
    auto z = load_zone_text(text, "fuzz.zone", "fuzz.example.");
    if (!z) {
        if (z.error().message.empty()) __builtin_trap();
        return 0;
    }
    ZoneSet s;
    s.add(*z);
    (*z)->for_each_node([&](std::string_view rel, const Node &) {
        std::string wire = std::string(rel) + (*z)->origin_wire();
        WireName n;
        size_t pos = 0;
        if (!name_from_wire(reinterpret_cast<const uint8_t *>(wire.data()), wire.size(), pos, n)) __builtin_trap();
        if (s.lookup(n).kind == Match::Kind::NotLocal) __builtin_trap();
    });
    (*z)->for_each_service([&](uint16_t o, uint16_t f, uint16_t m, const Service &) {
        std::string out;
        if (!s.reverse((*z)->aisid_of(o, f, m, 0), out)) __builtin_trap();
    });
    return 0;
}
