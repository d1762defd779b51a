// aisidd's configuration: the long options and the config file (SPEC §4: the
// file uses the same keys, `listen = 127.0.0.1:5353`). Parsing only; no I/O
// beyond reading the file, so it is unit-testable.
#pragma once

#include "aisid/core/expected.hpp"
#include "aisid/core/log.hpp"
#include "aisid/core/socket_address.hpp"
#include "aisid/resolver/rrl.hpp"
#include "aisid/core/zone.hpp"

#include <string>
#include <vector>

namespace aisid::resolver {

struct UpstreamConfig {
    std::string text;  // as given
    SockAddr addr;     // DoH: empty (a host name, resolved by the transport)
    bool encrypted = false;  // tls:// or https:// (sdk/transport)
};

struct Config {
    std::string config_file;
    std::vector<SockAddr> listen;
    std::vector<std::string> zones;
    std::vector<UpstreamConfig> upstreams;
    bool upstreams_given = false;
    std::vector<Cidr> allow;
    std::vector<Cidr> deny;                  // refused even when loopback (--allow wins)
    LogLevel log_level = LogLevel::info;
    std::string metrics_text;
    std::optional<SockAddr> metrics;
    unsigned threads = 0;                    // 0: one per CPU
    size_t cache_bytes = 64u << 20;          // the cache's memory bound, all workers together
    uint32_t stale_seconds = 86400;          // RFC 8767 §5: 1..3 days suggested
    bool hide_version = false;               // CH TXT version.bind/version.server refused
    bool hide_identity = false;              // CH TXT id.server/hostname.bind refused
    uint32_t upstream_timeout_ms = 1500;     // per try
    uint32_t tcp_idle_ms = 10000;            // RFC 7766 §6.2.3
    // Limits against one client taking everything (docs/reliability.md, "Threats").
    size_t tcp_output_limit = 256u << 10;    // reply bytes queued per TCP connection before it is no longer read
    uint32_t tcp_connections = 4096;         // client TCP connections, all workers together
    uint32_t tcp_connections_per_client = 64;  // per client address (IPv4 /32, IPv6 /64); 0: no limit
    uint32_t max_inflight = 4096;            // queries waiting for an upstream, all workers together
    uint32_t max_inflight_per_client = 256;  // of them, per client address; 0: no limit
    uint32_t authority_queue = 256;          // messages waiting for the authority side (fixed at start)
    uint32_t cache_max_ttl = 86400;          // TTLs passed on and cached are capped (Unbound cache-max-ttl)
    uint32_t cache_max_negative_ttl = 10800; // negative answers (RFC 2308 §5)
    // Authority; kept here so that side only has to wire them.
    std::vector<std::string> keys;           // NAME:BASE64
    std::vector<std::string> update_keys;    // NAME
    std::vector<std::string> secondaries;    // ZONE=ADDR[:PORT]
    std::vector<std::string> notify;         // ADDR[:PORT]
    std::string state_dir;
    // Zones from HTTPS mirrors, and what every zone must prove (docs/lifecycle.md
    // "Distribution at scale"); fixed at start, like the authority options.
    std::vector<std::string> zone_urls;      // ZONE=https://...
    std::vector<std::string> trust_anchors;  // ZONE=FILE (DS or DNSKEY records)
    bool require_zonemd = false;             // files, transfers and mirrors alike
    uint32_t zone_fetch_timeout_s = 30;      // per mirror request
    std::string ca_file;
    std::string user;                        // drop to this user after binding (when started as root)
    // aisid-control's socket (control.hpp); empty: none. Off unless given, so
    // an aisidd started by hand or by a test creates nothing under /run; the
    // packaged aisidd.conf turns it on at /run/aisid/control (systemd's
    // RuntimeDirectory=aisid). Fixed at start.
    std::string control_socket;
    ZoneLoadLimits zone_limits;              // $INCLUDE files, bytes, directories
    size_t max_records_per_name = 100;       // per owner name and type, by UPDATE and transfers
    RrlSettings rrl;                         // response rate limiting (off unless --rate-limit N)
    size_t rrl_table_size = 65536;           // buckets; fixed at start
};

enum class ParseOutcome { ok, help, version };

struct ConfigError {
    std::string message;  // "FILE:LINE: ..." for the config file
};

/// Parses the command line (argv[1..]) into `out`. A `--config FILE` is read
/// first and the command line applied over it. Repeatable options given on
/// the command line replace the file's list for that key.
Expected<ParseOutcome, ConfigError> parse_command_line(int argc, char **argv, Config &out);
/// Applies one key = value (as in the file, or an option without its dashes).
Expected<bool, ConfigError> apply_option(Config &c, const std::string &key, const std::string &value);
/// The upstream's text as shown in metrics and logs: the query string and
/// any user:password of a DoH URL left out (they may hold a token).
std::string redacted_upstream(const std::string &text);
/// Reads a config file: `key = value` lines, `#` comments, blank lines.
Expected<bool, ConfigError> read_config_file(const std::string &path, Config &out);
/// Fills defaults: listen, upstreams from resolv.conf (minus ourselves), and
/// checks for forwarding loops. `resolv_conf` is a path for tests.
Expected<bool, ConfigError> finish_config(Config &c, const std::string &resolv_conf = "/etc/resolv.conf");

const char *usage_text();

} // namespace aisid::resolver
