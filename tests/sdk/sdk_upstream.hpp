// The upstream of the SDK's legacy-path tests: Unbound serving the legacy
// names and the SVCB fallback targets of zones/ai.example.zone and of the
// test zones, refusing every other name.
#pragma once

#include "unbound.hpp"

namespace aisid::test {

inline UnboundOptions sdk_legacy_upstream() {
    return UnboundOptions()
        .local_zone("legacy.example.")
        .local_zone("legacy.provider.example.")
        .local_data({
            "www.legacy.example. 300 IN A 192.0.2.10",
            "www.legacy.example. 300 IN AAAA 2001:db8:1::10",
            "v4only.legacy.example. 300 IN A 192.0.2.11",
            "short.legacy.example. 1 IN A 192.0.2.12",
            "lo.legacy.example. 300 IN A 127.0.0.1",
            "lo.legacy.example. 300 IN AAAA ::1",
            "lo4.legacy.example. 300 IN A 127.0.0.1",
            "yolo-detection-image.legacy.provider.example. 300 IN A 127.0.0.1",
            "yolo-detection-image.legacy.provider.example. 300 IN AAAA ::1",
            "resnet-classification-image.legacy.provider.example. 300 IN A 127.0.0.1",
            "llama-generation-text.legacy.provider.example. 300 IN AAAA ::1",
        });
}

} // namespace aisid::test
