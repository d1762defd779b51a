# Reliability: upstream answer handling and the ldns differential.
aisid_fuzz_target(fuzz_upstream fuzz_upstream.cpp aisid_resolver_core PkgConfig::LDNS)
aisid_fuzz_target(fuzz_wire_diff fuzz_wire_diff.cpp aisid_resolver_core PkgConfig::LDNS)
