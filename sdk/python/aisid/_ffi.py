"""The C API of libaisid (<aisid/aisid.h>), declared for cffi in ABI mode.

Nothing is compiled: the declarations below mirror aisid.h and cffi calls the
installed libaisid.so.0 through libffi. They must match the header exactly
(structure layouts included); tests/python/test_unit.py checks the sizes the
library itself reports where it can, and the ctest suite checks the cdef
against the header (test_cdef_matches_header).
"""

import os

from cffi import FFI

CDEF = r"""
typedef enum aisid_status {
    AISID_OK = 0, AISID_ENOTFOUND = 1, AISID_ENODATA = 2, AISID_EINVAL = 3,
    AISID_ENOMEM = 4, AISID_EZONE = 5, AISID_ETIMEOUT = 6, AISID_ESERVFAIL = 7,
    AISID_ENETWORK = 8, AISID_ECONNECT = 9, AISID_EAGAIN = 10, AISID_ECANCELLED = 11,
    AISID_ESYSTEM = 12
} aisid_status_t;

typedef enum aisid_source { AISID_SOURCE_AISID = 1, AISID_SOURCE_LEGACY = 2 } aisid_source_t;

typedef struct aisid_fields {
    uint64_t prefix;
    uint16_t object;
    uint16_t function;
    uint16_t method;
    uint16_t performance;
} aisid_fields_t;

typedef enum aisid_dim { AISID_DIM_OBJECT = 0, AISID_DIM_FUNCTION = 1, AISID_DIM_METHOD = 2 } aisid_dim_t;

typedef struct aisid_client aisid_client_t;
typedef struct aisid_result aisid_result_t;

struct in6_addr { union { uint8_t s6_addr[16]; uint16_t s6_addr16[8]; uint32_t s6_addr32[4]; }; };
struct sockaddr_in6 {
    uint16_t sin6_family;
    uint16_t sin6_port;
    uint32_t sin6_flowinfo;
    struct in6_addr sin6_addr;
    uint32_t sin6_scope_id;
};
struct pollfd { int fd; short events; short revents; };

#define AISID_CLIENT_NO_HOST_ZONES 0x1
#define AISID_CLIENT_NO_WATCH 0x2

aisid_status_t aisid_client_new(aisid_client_t **out);
aisid_status_t aisid_client_new_flags(aisid_client_t **out, unsigned flags);
void aisid_client_free(aisid_client_t *c);
aisid_status_t aisid_client_add_zone_file(aisid_client_t *c, const char *path);
aisid_status_t aisid_client_set_upstreams(aisid_client_t *c, const char *csv);
aisid_status_t aisid_client_set_attempt_delay(aisid_client_t *c, int ms);
aisid_status_t aisid_client_set_legacy_timeout(aisid_client_t *c, int ms);
aisid_status_t aisid_client_reload(aisid_client_t *c);
uint64_t aisid_client_zone_generation(const aisid_client_t *c);
void aisid_client_forget(aisid_client_t *c);

aisid_status_t aisid_resolve(aisid_client_t *c, const char *name, aisid_result_t **out);
size_t aisid_result_count(const aisid_result_t *r);
int aisid_result_address(const aisid_result_t *r, size_t i, struct in6_addr *out);
int aisid_result_is_aisid(const aisid_result_t *r);
aisid_source_t aisid_result_source(const aisid_result_t *r);
const char *aisid_result_name(const aisid_result_t *r);
uint32_t aisid_result_ttl(const aisid_result_t *r);
int aisid_result_fields(const aisid_result_t *r, aisid_fields_t *out);
const char *aisid_result_term(const aisid_result_t *r, aisid_dim_t d);
const char *aisid_result_zone(const aisid_result_t *r);
size_t aisid_result_fallback_count(const aisid_result_t *r);
int aisid_result_fallback(const aisid_result_t *r, size_t i, const char **target, uint16_t *port);
void aisid_result_free(aisid_result_t *r);

typedef enum aisid_rule {
    AISID_RULE_NONE = 0, AISID_RULE_RECORDS = 1, AISID_RULE_SERVICE = 2,
    AISID_RULE_SYNTHESIZED = 3, AISID_RULE_NXDOMAIN = 4, AISID_RULE_REVERSE = 5
} aisid_rule_t;
aisid_status_t aisid_explain(aisid_client_t *c, const char *query, aisid_result_t **out);
aisid_rule_t aisid_result_rule(const aisid_result_t *r);
const char *aisid_result_local_zone(const aisid_result_t *r);
const char *aisid_result_zone_file(const aisid_result_t *r);
size_t aisid_result_verification_count(const aisid_result_t *r);
int aisid_result_verification(const aisid_result_t *r, size_t i, const char **key, const char **value);
size_t aisid_result_svcb_count(const aisid_result_t *r);
int aisid_result_svcb(const aisid_result_t *r, size_t i, uint16_t *priority, const char **target, uint16_t *port);
#define AISID_NAME_TEXT_MAX 1024
aisid_status_t aisid_name_canonical(const char *name, char *buf, size_t size);
/* struct sockaddr_storage: only ever passed by pointer from Python. */
typedef unsigned int socklen_t;
struct sockaddr_storage;
aisid_status_t aisid_parse_sockaddr(const char *text, uint16_t default_port, struct sockaddr_storage *out,
                                    socklen_t *len);

typedef void (*aisid_resolve_cb)(void *arg, aisid_status_t status, aisid_result_t *result);
aisid_status_t aisid_resolve_async(aisid_client_t *c, const char *name, aisid_resolve_cb cb, void *arg);
size_t aisid_async_fds(aisid_client_t *c, struct pollfd *fds, size_t max);
int aisid_async_timeout(aisid_client_t *c);
void aisid_async_process(aisid_client_t *c, const struct pollfd *fds, size_t n);
void aisid_async_process_fd(aisid_client_t *c, int read_fd, int write_fd);
size_t aisid_async_pending(aisid_client_t *c);
void aisid_async_cancel(aisid_client_t *c);

typedef enum aisid_path {
    AISID_PATH_NONE = 0, AISID_PATH_AISID = 1, AISID_PATH_FALLBACK = 2, AISID_PATH_LEGACY = 3
} aisid_path_t;

typedef enum aisid_fallback_reason {
    AISID_FALLBACK_NONE = 0, AISID_FALLBACK_UNREACHABLE = 1, AISID_FALLBACK_REFUSED = 2,
    AISID_FALLBACK_DELAY = 3, AISID_FALLBACK_REMEMBERED = 4, AISID_FALLBACK_ERROR = 5
} aisid_fallback_reason_t;

typedef struct aisid_connect_info {
    aisid_path_t path;
    aisid_fallback_reason_t reason;
    struct sockaddr_in6 peer;
    uint32_t elapsed_us;
    unsigned attempts;
} aisid_connect_info_t;

int aisid_connect(aisid_client_t *c, const char *name, uint16_t port, int timeout_ms, aisid_status_t *err);
int aisid_connect_ex(aisid_client_t *c, const char *name, uint16_t port, int timeout_ms,
                     aisid_status_t *err, aisid_connect_info_t *info);

typedef struct aisid_counters {
    uint64_t resolve_aisid;
    uint64_t resolve_legacy;
    uint64_t legacy_cache_hits;
    uint64_t legacy_queries;
    uint64_t connect_aisid_won;
    uint64_t connect_fallback_won;
    uint64_t connect_legacy;
    uint64_t connect_failed;
    uint64_t fallback_unreachable;
    uint64_t fallback_refused;
    uint64_t fallback_delay;
    uint64_t fallback_remembered;
    uint64_t fallback_error;
    uint64_t zone_reloads;
    uint64_t zone_reload_errors;
} aisid_counters_t;

void aisid_client_counters(const aisid_client_t *c, aisid_counters_t *out, size_t size);

const char *aisid_strerror(aisid_status_t s);
const char *aisid_last_error(void);
const char *aisid_version(void);
"""

ffi = FFI()
ffi.cdef(CDEF)

#: What is loaded: $AISID_LIBRARY (a path, for a build tree), else the
#: library by its SONAME through the dynamic linker's search path.
LIBRARY = os.environ.get("AISID_LIBRARY") or "libaisid.so.0"

try:
    lib = ffi.dlopen(LIBRARY)
except OSError as e:  # pragma: no cover - depends on the host
    raise ImportError(
        f"aisid: cannot load {LIBRARY} ({e}); install libaisid0, or point "
        "AISID_LIBRARY at a libaisid.so"
    ) from e
