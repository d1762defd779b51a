# UPDATE handling: Authority::handle and the RFC 2136 logic.
aisid_fuzz_target(fuzz_update fuzz_update.cpp aisid_authority)
