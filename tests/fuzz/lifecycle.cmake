# UPDATE handling (issue 5): Authority::handle and the RFC 2136 logic.
if(NOT TARGET aisid_authority)
  add_subdirectory(${PROJECT_SOURCE_DIR}/resolver/authority ${PROJECT_BINARY_DIR}/resolver/authority)
endif()
aisid_fuzz_target(fuzz_update fuzz_update.cpp aisid_authority)
