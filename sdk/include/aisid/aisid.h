/* aisid.h — the aisid C API (SPEC §5).
 *
 * An application links libaisid to resolve service names in process (no packet
 * per lookup for names under an AISID domain), legacy names through c-ares, and
 * to connect to a service at its AISID with a fallback to the service's legacy
 * endpoint when the host's network does not route AISIDs.
 *
 * Thread safety: one aisid_client_t may be shared by many threads for every
 * call except aisid_client_free. The asynchronous calls (aisid_resolve_async
 * and aisid_async_*) are serialized internally; callbacks run on the thread
 * that calls aisid_async_process*() (or aisid_resolve_async for answers known
 * at once) and may call aisid_resolve_async themselves.
 *
 * The API is additive only: new statuses, fields and functions may appear;
 * existing ones keep their meaning. Structures that may grow are passed with
 * their size.
 */
#ifndef AISID_AISID_H
#define AISID_AISID_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define AISID_EXPORT __attribute__((visibility("default")))
#else
#define AISID_EXPORT
#endif

#include <aisid/version.h> /* AISID_VERSION_MAJOR, _MINOR, _PATCH, AISID_VERSION */

/** Outcome of a call. AISID_OK is 0; every other value is an error. */
typedef enum aisid_status {
    AISID_OK = 0,          /**< success */
    AISID_ENOTFOUND = 1,   /**< the name does not exist (NXDOMAIN, local or legacy) */
    AISID_ENODATA = 2,     /**< the name exists but has no address */
    AISID_EINVAL = 3,      /**< a bad argument (malformed name, address list, NULL) */
    AISID_ENOMEM = 4,      /**< out of memory */
    AISID_EZONE = 5,       /**< a zone file could not be read or broke SPEC §3 (see aisid_last_error) */
    AISID_ETIMEOUT = 6,    /**< no answer or no connection before the deadline */
    AISID_ESERVFAIL = 7,   /**< the legacy upstream failed (SERVFAIL, REFUSED, bad answer) */
    AISID_ENETWORK = 8,    /**< no legacy upstream could be reached */
    AISID_ECONNECT = 9,    /**< every address was tried and none accepted the connection */
    AISID_EAGAIN = 10,     /**< an asynchronous query is still pending */
    AISID_ECANCELLED = 11, /**< the query was cancelled (client freed or aisid_async_cancel) */
    AISID_ESYSTEM = 12     /**< a system call failed (see errno in aisid_last_error) */
} aisid_status_t;

/** Where an answer came from. */
typedef enum aisid_source {
    AISID_SOURCE_AISID = 1,  /**< local AISID zone data (SPEC §2), no packet sent */
    AISID_SOURCE_LEGACY = 2  /**< legacy DNS through c-ares (or its cache), or a local non-AISID zone */
} aisid_source_t;

/** The decoded fields of an AISID (SPEC §1). */
typedef struct aisid_fields {
    uint64_t prefix;      /**< the domain's /64, host byte order */
    uint16_t object;      /**< 0 = any */
    uint16_t function;    /**< 0 = any */
    uint16_t method;      /**< 0 = any */
    uint16_t performance; /**< latency budget in ms; 0 = best effort */
} aisid_fields_t;

/** A codebook dimension. */
typedef enum aisid_dim { AISID_DIM_OBJECT = 0, AISID_DIM_FUNCTION = 1, AISID_DIM_METHOD = 2 } aisid_dim_t;

typedef struct aisid_client aisid_client_t;
typedef struct aisid_result aisid_result_t;

/* ---- client ------------------------------------------------------------ */

/** Flags for aisid_client_new_flags. */
#define AISID_CLIENT_NO_HOST_ZONES 0x1u /**< start without /etc/aisid/zones and /var/lib/aisid/zones */
#define AISID_CLIENT_NO_WATCH 0x2u      /**< do not watch zone files for changes */

/**
 * Creates a client with the host defaults: the zone files in /etc/aisid/zones/
 * and /var/lib/aisid/zones/ (watched for changes), legacy upstreams from
 * /etc/resolv.conf. Unreadable host zone files are skipped (see aisid_last_error).
 * @param out receives the client; free it with aisid_client_free.
 * @return AISID_OK, AISID_ENOMEM, AISID_ESYSTEM or AISID_ENETWORK (c-ares could not start).
 */
AISID_EXPORT aisid_status_t aisid_client_new(aisid_client_t **out);

/**
 * Creates a client like aisid_client_new, with flags (AISID_CLIENT_*).
 * @param out receives the client.
 * @param flags an OR of AISID_CLIENT_NO_HOST_ZONES, AISID_CLIENT_NO_WATCH.
 * @return as aisid_client_new.
 */
AISID_EXPORT aisid_status_t aisid_client_new_flags(aisid_client_t **out, unsigned flags);

/**
 * Frees a client: stops its zone watcher, cancels its pending asynchronous
 * queries (their callbacks run with AISID_ECANCELLED). NULL is allowed.
 */
AISID_EXPORT void aisid_client_free(aisid_client_t *c);

/**
 * Adds a zone file; a zone with the same origin (a host zone or an earlier
 * file) is replaced. The file is watched like the host zones: when it changes
 * on disk the new version is used (a broken version keeps the last good one).
 * @return AISID_OK, or AISID_EZONE with "FILE:LINE: why" in aisid_last_error().
 */
AISID_EXPORT aisid_status_t aisid_client_add_zone_file(aisid_client_t *c, const char *path);

/**
 * Sets the legacy DNS upstreams, replacing those of resolv.conf.
 * @param csv "ADDR[:PORT],..." — IPv4 "192.0.2.1:5353", IPv6 "[2001:db8::1]:53" or bare "2001:db8::1".
 * @return AISID_OK or AISID_EINVAL. Cached legacy answers are dropped.
 */
AISID_EXPORT aisid_status_t aisid_client_set_upstreams(aisid_client_t *c, const char *csv);

/**
 * Sets the connection attempt delay of aisid_connect (RFC 8305 §5): how long
 * an attempt may be in flight before the next one (the fallback, or the next
 * legacy address) starts. Default 250 ms; RFC 8305 recommends 100..2000 ms,
 * values from 10 to 10000 are accepted.
 * @return AISID_OK or AISID_EINVAL.
 */
AISID_EXPORT aisid_status_t aisid_client_set_attempt_delay(aisid_client_t *c, int ms);

/**
 * Sets how long legacy DNS may take per query (all tries) in the blocking API.
 * Default 5000 ms. @return AISID_OK or AISID_EINVAL (ms < 1).
 */
AISID_EXPORT aisid_status_t aisid_client_set_legacy_timeout(aisid_client_t *c, int ms);

/**
 * Forces the zone data to be re-read now (it is also re-read by itself when
 * files change). Returns when the new snapshot is published.
 * @return AISID_OK, or AISID_EZONE when a file failed (the last good version stays).
 */
AISID_EXPORT aisid_status_t aisid_client_reload(aisid_client_t *c);

/**
 * The generation of the zone data in use: it grows by one with each
 * published snapshot (a reload that changed something).
 */
AISID_EXPORT uint64_t aisid_client_zone_generation(const aisid_client_t *c);

/**
 * Forgets what the client learned about the attached networks (whether
 * AISIDs were reachable), and drops the legacy DNS cache.
 */
AISID_EXPORT void aisid_client_forget(aisid_client_t *c);

/* ---- resolution -------------------------------------------------------- */

/**
 * Resolves a name: under an AISID domain from the local zone data (no packet,
 * SPEC §2), otherwise through legacy DNS (AAAA and A, IPv4 as ::ffff:a.b.c.d),
 * with a cache that respects the records' TTLs. Blocks up to the legacy
 * timeout for legacy names. A literal IPv6/IPv4 address resolves to itself.
 * @param out receives the result on AISID_OK; free it with aisid_result_free.
 * @return AISID_OK, AISID_ENOTFOUND, AISID_ENODATA, AISID_EINVAL, AISID_ETIMEOUT,
 *         AISID_ESERVFAIL or AISID_ENETWORK.
 */
AISID_EXPORT aisid_status_t aisid_resolve(aisid_client_t *c, const char *name, aisid_result_t **out);

/** The number of addresses in a result. */
AISID_EXPORT size_t aisid_result_count(const aisid_result_t *r);

/**
 * Copies address i of a result.
 * @return 0 on success, -1 when i is out of range.
 */
AISID_EXPORT int aisid_result_address(const aisid_result_t *r, size_t i, struct in6_addr *out);

/** 1 when the answer came from local AISID zone data, 0 for legacy DNS. */
AISID_EXPORT int aisid_result_is_aisid(const aisid_result_t *r);

/** Where the answer came from. */
AISID_EXPORT aisid_source_t aisid_result_source(const aisid_result_t *r);

/** The resolved name in canonical form ("yolo.detection.image.ai.example."). */
AISID_EXPORT const char *aisid_result_name(const aisid_result_t *r);

/** The answer's TTL in seconds (the time left, for cached legacy answers). */
AISID_EXPORT uint32_t aisid_result_ttl(const aisid_result_t *r);

/**
 * The decoded fields of the result's AISID (the first address when it lies in
 * a loaded AISID prefix).
 * @return 0 and fills out, or -1 when the result holds no AISID.
 */
AISID_EXPORT int aisid_result_fields(const aisid_result_t *r, aisid_fields_t *out);

/**
 * The codebook term of one field ("image", "detection", "yolo").
 * @return the term, or NULL when the code is 0 (any), not in the codebook, or
 *         the result holds no AISID. Valid until aisid_result_free.
 */
AISID_EXPORT const char *aisid_result_term(const aisid_result_t *r, aisid_dim_t d);

/** The AISID domain that answered ("ai.example."), or NULL for legacy answers. */
AISID_EXPORT const char *aisid_result_zone(const aisid_result_t *r);

/** The number of legacy endpoints (SVCB, RFC 9460) of the service. */
AISID_EXPORT size_t aisid_result_fallback_count(const aisid_result_t *r);

/**
 * Legacy endpoint i: its target host ("yolo.legacy.provider.example.") and
 * port (0 when the SVCB has none: use the application's port).
 * @return 0, or -1 when i is out of range. *target is valid until aisid_result_free.
 */
AISID_EXPORT int aisid_result_fallback(const aisid_result_t *r, size_t i, const char **target, uint16_t *port);

/** Frees a result. NULL is allowed. */
AISID_EXPORT void aisid_result_free(aisid_result_t *r);

/* ---- why: which rule, zone and data gave an answer --------------------- */

/** Which rule of SPEC §2 decided a name (aisid_result_rule). */
typedef enum aisid_rule {
    AISID_RULE_NONE = 0,        /**< no local zone: legacy DNS, or a literal address */
    AISID_RULE_RECORDS = 1,     /**< rule 1: the records at the name, in a local zone (AISID domain or not) */
    AISID_RULE_SERVICE = 2,     /**< rule 1: the name of a registered service (its AAAA and SVCB) */
    AISID_RULE_SYNTHESIZED = 3, /**< rule 2: built from the codebook (a dimension left out is 0, any) */
    AISID_RULE_NXDOMAIN = 4,    /**< rule 3: inside a local zone, neither records nor a matching service */
    AISID_RULE_REVERSE = 5      /**< an AISID address: its service name from the codebook (aisid_explain) */
} aisid_rule_t;

/**
 * Resolves like aisid_resolve, for tools that show what a name resolves to
 * and why (aisid-lookup). It differs in two ways:
 * - an IPv6 address is looked up the other way (SPEC §2, reverse, as a PTR
 *   query): the result's name is the service name, its one address the AISID
 *   with its fields, terms and SVCB records; AISID_ENOTFOUND when no loaded
 *   prefix holds it or no registered service matches its codes;
 * - *out is also set when the query is a valid name or address but the
 *   status is an error (AISID_ENOTFOUND, AISID_ENODATA, a legacy DNS failure,
 *   AISID_EINVAL for a name that cannot be resolved such as "."): that
 *   result has no address and tells the name asked (aisid_result_name: the
 *   canonical name; "" for an address without service name), the rule and the
 *   local zone that decided (for an address in a loaded prefix, also its
 *   fields and terms). Free it with aisid_result_free in every case.
 * @param query a name, or an IPv6 address in any valid text form.
 * @return as aisid_resolve; *out is NULL when the query is neither a name
 *         nor an address (AISID_EINVAL) or on AISID_ENOMEM / AISID_ESYSTEM.
 */
AISID_EXPORT aisid_status_t aisid_explain(aisid_client_t *c, const char *query, aisid_result_t **out);

/** The rule that decided the answer; results of aisid_resolve have it too. */
AISID_EXPORT aisid_rule_t aisid_result_rule(const aisid_result_t *r);

/**
 * The local zone whose data decided the answer ("ai.example."), AISID domain
 * or not (aisid_result_zone names AISID domains only), or NULL when legacy DNS
 * answered (or for a literal address outside every loaded prefix).
 */
AISID_EXPORT const char *aisid_result_local_zone(const aisid_result_t *r);

/**
 * The file the local zone was read from, as it was named (to
 * aisid_client_add_zone_file, or a host zone file's path), or NULL.
 */
AISID_EXPORT const char *aisid_result_zone_file(const aisid_result_t *r);

/**
 * How the local zone's data was verified before aisidd wrote it to its state
 * directory (ZONEMD, DNSSEC; SPEC "Additions"): the key=value pairs of the
 * "; aisid-verified:" line that heads such a file, in their order ("time",
 * "zone", "serial", "zonemd", "key-tag", "anchor", "sig-expires", "source";
 * more may come). 0 pairs: the zone data carries no verification (a zone file
 * written by hand, or none).
 */
AISID_EXPORT size_t aisid_result_verification_count(const aisid_result_t *r);

/**
 * Pair i of the verification.
 * @return 0, or -1 when i is out of range. *key and *value are valid until aisid_result_free.
 */
AISID_EXPORT int aisid_result_verification(const aisid_result_t *r, size_t i, const char **key, const char **value);

/**
 * The number of SVCB records (RFC 9460) of the service, as the zone holds
 * them: AliasMode (priority 0) and the owner itself (target ".") included.
 * aisid_result_fallback gives the endpoints among them (ServiceMode, by priority).
 */
AISID_EXPORT size_t aisid_result_svcb_count(const aisid_result_t *r);

/**
 * SVCB record i, in zone order: its priority (0: AliasMode), target host
 * ("." for the owner name itself) and port (0 when it has none).
 * @return 0, or -1 when i is out of range. *target is valid until aisid_result_free.
 */
AISID_EXPORT int aisid_result_svcb(const aisid_result_t *r, size_t i, uint16_t *priority, const char **target,
                                   uint16_t *port);

/* ---- names ------------------------------------------------------------- */

/** A buffer of this size holds any canonical name text, its NUL included. */
#define AISID_NAME_TEXT_MAX 1024

/**
 * The canonical text of a domain name, as results give names: lowercase,
 * with the trailing dot, and RFC 1035 escapes (\. \\ \DDD ...) where a label
 * needs them ("WWW.Example" gives "www.example.").
 * @param buf receives the text and its NUL; AISID_NAME_TEXT_MAX bytes always suffice.
 * @return AISID_OK, or AISID_EINVAL when name is not a domain name (empty
 *         label, label over 63 or name over 255 bytes, bad escape) or buf is too small.
 */
AISID_EXPORT aisid_status_t aisid_name_canonical(const char *name, char *buf, size_t size);

/**
 * A server address as every aisid program takes it (SPEC §6, ADDR[:PORT]):
 * "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53", a bare IPv6 address, or
 * an IPv6 link-local address with its scope ("fe80::1%eth0"). Numeric only:
 * no name is looked up.
 * @param default_port the port when the text gives none (1..65535).
 * @param out receives the address; *len its length.
 * @return AISID_OK, or AISID_EINVAL (port 0 or over 65535, a name, an
 *         unknown scope, trailing text).
 */
AISID_EXPORT aisid_status_t aisid_parse_sockaddr(const char *text, uint16_t default_port, struct sockaddr_storage *out,
                                                 socklen_t *len);

/* ---- asynchronous resolution (for the application's event loop) -------- */

/**
 * Called once per aisid_resolve_async. The result belongs to the callee (free
 * it with aisid_result_free); it is NULL unless status is AISID_OK.
 */
typedef void (*aisid_resolve_cb)(void *arg, aisid_status_t status, aisid_result_t *result);

/**
 * Starts resolving a name. Answers known at once (AISID names, cached legacy
 * answers, errors in the name) call cb before this returns; others are sent
 * through c-ares and cb runs from aisid_async_process*().
 * @return AISID_OK when cb has run or will run, an error (cb not called) otherwise.
 */
AISID_EXPORT aisid_status_t aisid_resolve_async(aisid_client_t *c, const char *name, aisid_resolve_cb cb, void *arg);

/**
 * The file descriptors the pending queries wait on, as struct pollfd
 * (events POLLIN and/or POLLOUT). Call again after each process call: the set changes.
 * @return the number of entries written (at most max).
 */
AISID_EXPORT size_t aisid_async_fds(aisid_client_t *c, struct pollfd *fds, size_t max);

/**
 * Milliseconds until aisid_async_process must be called even without I/O
 * (retransmissions, timeouts); -1 when nothing is pending.
 */
AISID_EXPORT int aisid_async_timeout(aisid_client_t *c);

/**
 * Processes I/O after poll(): fds as filled by aisid_async_fds, with revents
 * set. Also handles expired timeouts; fds may be NULL with n == 0 for that.
 */
AISID_EXPORT void aisid_async_process(aisid_client_t *c, const struct pollfd *fds, size_t n);

/**
 * Processes one readable and/or writable descriptor (-1 for none), like
 * ares_process_fd; for event loops that watch fds one by one.
 */
AISID_EXPORT void aisid_async_process_fd(aisid_client_t *c, int read_fd, int write_fd);

/** The number of asynchronous queries still pending. */
AISID_EXPORT size_t aisid_async_pending(aisid_client_t *c);

/** Cancels every pending asynchronous query (callbacks run with AISID_ECANCELLED). */
AISID_EXPORT void aisid_async_cancel(aisid_client_t *c);

/* ---- connect ----------------------------------------------------------- */

/** Which path a connection took. */
typedef enum aisid_path {
    AISID_PATH_NONE = 0,     /**< no connection */
    AISID_PATH_AISID = 1,    /**< straight to the AISID */
    AISID_PATH_FALLBACK = 2, /**< to the service's SVCB legacy endpoint */
    AISID_PATH_LEGACY = 3    /**< a legacy name (or literal address), Happy Eyeballs v2 */
} aisid_path_t;

/** Why the fallback was used (or tried). */
typedef enum aisid_fallback_reason {
    AISID_FALLBACK_NONE = 0,        /**< the fallback was not needed */
    AISID_FALLBACK_UNREACHABLE = 1, /**< the AISID failed at once: ENETUNREACH or EHOSTUNREACH */
    AISID_FALLBACK_REFUSED = 2,     /**< the AISID refused the connection (ECONNREFUSED) */
    AISID_FALLBACK_DELAY = 3,       /**< the AISID had not connected within the attempt delay */
    AISID_FALLBACK_REMEMBERED = 4,  /**< this network was seen not to reach AISIDs: not tried */
    AISID_FALLBACK_ERROR = 5        /**< the AISID attempt failed otherwise */
} aisid_fallback_reason_t;

/** What aisid_connect_ex did. */
typedef struct aisid_connect_info {
    aisid_path_t path;                  /**< the path of the returned socket */
    aisid_fallback_reason_t reason;     /**< why the fallback was started, if it was */
    struct sockaddr_in6 peer;           /**< the connected address (IPv4 as mapped) */
    uint32_t elapsed_us;                /**< from the call to the connected socket */
    unsigned attempts;                  /**< TCP connection attempts started */
} aisid_connect_info_t;

/**
 * Connects a TCP socket to a name. Under an AISID domain: the AISID first; the
 * service's SVCB legacy endpoint (its port, else `port`), resolved through
 * c-ares, when the AISID fails at once (ENETUNREACH, EHOSTUNREACH,
 * ECONNREFUSED) or has not connected within the attempt delay (RFC 8305 §5);
 * both race, the first connected wins and the other is closed. Legacy names:
 * Happy Eyeballs v2 between AAAA and A (RFC 8305 §4 order, §5 delay).
 * @param timeout_ms overall deadline (<= 0: 30000 ms).
 * @param err receives the status (may be NULL).
 * @return a connected, blocking TCP fd (close it with close()), or -1.
 */
AISID_EXPORT int aisid_connect(aisid_client_t *c, const char *name, uint16_t port, int timeout_ms,
                               aisid_status_t *err);

/**
 * aisid_connect, and says which path was taken, why, and how long it took.
 * The parameters are those of aisid_connect, then:
 * @param info filled on success and on failure (path NONE); may be NULL.
 */
AISID_EXPORT int aisid_connect_ex(aisid_client_t *c, const char *name, uint16_t port, int timeout_ms,
                                  aisid_status_t *err, aisid_connect_info_t *info);

/* ---- counters ---------------------------------------------------------- */

/** Counters since the client was created. New fields are only ever appended. */
typedef struct aisid_counters {
    uint64_t resolve_aisid;          /**< resolutions answered from AISID zone data */
    uint64_t resolve_legacy;         /**< resolutions of legacy names */
    uint64_t legacy_cache_hits;      /**< legacy answers served from the cache */
    uint64_t legacy_queries;         /**< legacy lookups sent through c-ares */
    uint64_t connect_aisid_won;      /**< connects where the AISID path won */
    uint64_t connect_fallback_won;   /**< connects where the SVCB legacy endpoint won */
    uint64_t connect_legacy;         /**< connects to legacy names */
    uint64_t connect_failed;         /**< connects that returned -1 */
    uint64_t fallback_unreachable;   /**< fallback started: ENETUNREACH / EHOSTUNREACH */
    uint64_t fallback_refused;       /**< fallback started: ECONNREFUSED */
    uint64_t fallback_delay;         /**< fallback started: attempt delay expired */
    uint64_t fallback_remembered;    /**< AISID skipped: this network does not reach AISIDs */
    uint64_t fallback_error;         /**< fallback started: another error */
    uint64_t zone_reloads;           /**< zone snapshots published after the first */
    uint64_t zone_reload_errors;     /**< zone files that failed to load on a reload */
} aisid_counters_t;

/**
 * Copies the counters.
 * @param size sizeof(aisid_counters_t) as the caller knows it.
 */
AISID_EXPORT void aisid_client_counters(const aisid_client_t *c, aisid_counters_t *out, size_t size);

/* ---- misc -------------------------------------------------------------- */

/** A static text for a status ("name not found"). Never NULL. */
AISID_EXPORT const char *aisid_strerror(aisid_status_t s);

/**
 * Details of the last error on this thread ("zones/x.zone:12: unknown term"),
 * or "" when none. Valid until the thread's next aisid call.
 */
AISID_EXPORT const char *aisid_last_error(void);

/** The library version, "0.1.0". */
AISID_EXPORT const char *aisid_version(void);

#ifdef __cplusplus
}
#endif

#endif /* AISID_AISID_H */
