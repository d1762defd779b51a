// Generates an AISID zone with N registered services, for benchmarks.
#pragma once

#include <cstddef>
#include <string>

namespace aisid::bench {

/// The zone text: origin `bench.example.`, a cube of k objects × k functions ×
/// k methods (k = ceil(cbrt(n))), the first n triples registered with an SVCB.
std::string generate_zone(size_t n);
/// The k of generate_zone(n).
unsigned cube_side(size_t n);
/// The relative service name of the i-th registered service ("m3.f2.o1").
std::string service_name(size_t n, size_t i);

} // namespace aisid::bench
