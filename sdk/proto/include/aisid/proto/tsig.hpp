// TSIG (RFC 8945) with hmac-sha256: keys from `--key NAME:BASE64SECRET`,
// verification of requests (ldns computes the MAC; the time window is ours:
// ldns does not check it) and signing of responses.
#pragma once

#include "aisid/proto/records.hpp"

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aisid::proto {

inline constexpr const char *kHmacSha256 = "hmac-sha256.";
inline constexpr uint16_t kTsigFudge = 300;  // RFC 8945 §10: 300 s recommended

// RFC 8945 §4.3 / RFC 2845 error codes carried in the TSIG RR.
enum : uint16_t { kTsigBadSig = 16, kTsigBadKey = 17, kTsigBadTime = 18, kTsigBadTrunc = 22 };

struct TsigKey {
    std::string name;        // presentation, lowercase, trailing dot
    std::string name_wire;   // lowercase wire
    std::string secret_b64;  // as given (ldns wants base64)
    std::string secret;      // decoded
};

/// "NAME:BASE64SECRET" (also "hmac-sha256:NAME:BASE64SECRET", as nsupdate -y spells it).
std::optional<TsigKey> parse_tsig_key(std::string_view text);

struct TsigCheck {
    enum class Result { ok, unsigned_msg, bad_key, bad_sig, bad_time, bad_alg, malformed } result = Result::unsigned_msg;
    const TsigKey *key = nullptr;   // ok, bad_time: the key it was signed with
    LdnsRdfPtr request_mac;         // the request's MAC (for signing the response)
    uint64_t time_signed = 0;
    uint16_t fudge = 0;             // the request's: it is accepted while |now - time_signed| <= fudge
    uint16_t original_id = 0;
    std::string key_name_wire;      // as it appeared, for error responses
    const char *text() const;
};

/// Verifies a request's TSIG against the keys, with the clock `now` and the
/// fudge the request carries (RFC 8945 §5.2.3). `wire` is the message as received.
TsigCheck tsig_verify_request(ldns_pkt *pkt, const uint8_t *wire, size_t len, const std::vector<TsigKey> &keys,
                              time_t now);

/// Signs a message with ldns (RFC 8945 §5.3): `prev_mac` is the request's MAC for the
/// first message of a response, the previous message's for the next ones
/// (`timers_only`, §5.3.1). Returns the wire form; `mac_out` gets the new MAC.
bool tsig_sign_pkt(ldns_pkt *pkt, const TsigKey &k, const ldns_rdf *prev_mac, bool timers_only, std::string &wire,
                   LdnsRdfPtr *mac_out);

/// Appends a TSIG RR computed here (not by ldns) to a finished message: for
/// error responses (RFC 8945 §5.3.2: BADKEY/BADSIG unsigned with an empty MAC;
/// BADTIME signed with the server's time in other data) and for clients that
/// need a chosen clock (tests). `request_mac` is empty for requests.
void tsig_append(std::string &wire, const TsigKey *key, std::string_view key_name_wire, uint64_t time_signed,
                 uint16_t fudge, uint16_t error, std::string_view request_mac, std::string_view other);

/// Verifies a response (or the next message of a transfer) with ldns.
bool tsig_verify_response(ldns_pkt *pkt, const uint8_t *wire, size_t len, const TsigKey &k, const ldns_rdf *prev_mac,
                          bool timers_only, LdnsRdfPtr *mac_out);

/// RFC 8945 §5.3.1: the messages of one signed response stream (a zone
/// transfer), checked as they come. The first must be signed; later ones may
/// come unsigned, at most 99 in a row, and the next signed one must cover
/// them all (prior MAC, the unsigned messages, itself, the TSIG timers).
/// `complete()` is true when the stream so far ends on a signed message:
/// a transfer whose last message is unsigned must be refused.
class TsigStream {
public:
    TsigStream(const TsigKey &k, std::string_view request_mac) : k_(k), prev_mac_(request_mac) {}
    /// One message as received (and parsed). False, with why, when it breaks the rules.
    bool next(std::string_view wire, const ldns_pkt *pkt, std::string &why);
    bool complete() const { return !first_ && unsigned_run_ == 0; }

private:
    const TsigKey &k_;
    std::string prev_mac_;   // raw, without its length
    std::string unsigned_;   // the unsigned messages since the last signed one, as received
    unsigned unsigned_run_ = 0;
    bool first_ = true;
};

/// The MAC of a signed packet (rdf with 2-byte length prefix), or nullptr.
const ldns_rdf *tsig_mac_rdf(const ldns_pkt *pkt);

} // namespace aisid::proto
