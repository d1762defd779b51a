# aisidd's query core: bytes in → verdict and bytes out.
aisid_fuzz_target(fuzz_query fuzz_query.cpp aisid_resolver_core)
