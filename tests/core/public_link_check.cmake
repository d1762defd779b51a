cmake_minimum_required(VERSION 3.25)
# Fails when a program meant to use only the public API (aisid-lookup) links
# more than libaisid.so and the libraries it names, or carries code of the
# SDK's internals. Run by ctest (tests/unit/CMakeLists.txt):
#   cmake -DBINARY=... -DLIBS=a|b -DALLOWED_LIBS=a|b -DNM=... -DOBJDUMP=... -P public_link_check.cmake
string(REPLACE "|" ";" libs "${LIBS}")
string(REPLACE "|" ";" allowed "${ALLOWED_LIBS}")
set(failures "")

# 1. What CMake links: only the allowed targets (the public library, ldns).
foreach(l IN LISTS libs)
  if(NOT l IN_LIST allowed)
    string(APPEND failures "  links ${l} (allowed: ${allowed})\n")
  endif()
endforeach()

# 2. The binary needs libaisid.so.0: the public API comes from the shared library.
execute_process(COMMAND ${OBJDUMP} -p ${BINARY} OUTPUT_VARIABLE dyn RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  string(APPEND failures "  ${OBJDUMP} -p failed\n")
elseif(NOT dyn MATCHES "NEEDED +libaisid\\.so\\.0")
  string(APPEND failures "  does not load libaisid.so.0\n")
endif()

# 3. No code of the internals is in the binary: every symbol it defines in
# namespace aisid is its own (aisid::cli) or the inline code of the public
# headers (<aisid/aisid.hpp>, <aisid/address.hpp>).
execute_process(COMMAND ${NM} -C --defined-only ${BINARY} OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  string(APPEND failures "  ${NM} failed\n")
endif()
string(REPLACE "\n" ";" lines "${syms}")
set(public "cli::|Client|Answer|Outcome<|Explanation|Socket|Aisid|Svcb|Fallback|Rule|Status|Source|Dim|to_string|last_error|canonical_name|dim_name")
foreach(line IN LISTS lines)
  # "ADDRESS TYPE NAME": the name starts after the type letter.
  if(line MATCHES "^[0-9a-fA-F]* *[A-Za-z] (.*)$")
    set(name "${CMAKE_MATCH_1}")
    if(name MATCHES "^aisid::" AND NOT name MATCHES "^aisid::(${public})")
      string(APPEND failures "  defines ${name}\n")
    endif()
  endif()
endforeach()

if(failures)
  message(FATAL_ERROR "${BINARY} is not an application of the public API alone:\n${failures}")
endif()
message(STATUS "${BINARY}: links ${libs}, loads libaisid.so.0, no internal code")
