// SPEC §4 `--upstream` URIs for the encrypted transports, and error texts.
#include <arpa/inet.h>
#include <openssl/err.h>

#include <cctype>
#include <charconv>

#include "aisid/transport/transport.hpp"
#include "transport_internal.hpp"

namespace aisid::transport {

const char *error_kind_name(ErrorKind k) {
    switch (k) {
    case ErrorKind::bad_uri: return "bad upstream";
    case ErrorKind::bad_query: return "bad query";
    case ErrorKind::connect: return "connection failed";
    case ErrorKind::tls_verify: return "certificate rejected";
    case ErrorKind::tls: return "TLS failure";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::closed: return "connection closed";
    case ErrorKind::http: return "HTTP failure";
    case ErrorKind::bad_answer: return "bad answer";
    case ErrorKind::all_failed: return "all upstreams failed";
    }
    return "error";
}

std::string Error::text() const { return upstream.empty() ? reason : upstream + ": " + reason; }

std::string openssl_reason() {
    unsigned long e = ERR_get_error();
    std::string out;
    if (e) {
        const char *r = ERR_reason_error_string(e);
        if (r) {
            out = r;
        } else {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            out = buf;
        }
    }
    ERR_clear_error();
    return out;
}

bool is_encrypted_uri(std::string_view u) { return u.starts_with("tls://") || u.starts_with("https://"); }

namespace {

bool parse_port(std::string_view s, uint16_t &out) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return false;
    out = uint16_t(v);
    return true;
}

bool is_ip_literal(const std::string &h) {
    in6_addr a6;
    in_addr a4;
    return inet_pton(AF_INET, h.c_str(), &a4) == 1 || inet_pton(AF_INET6, h.c_str(), &a6) == 1;
}

// A DNS host name (RFC 1123 §2.1 letters, digits, hyphens, dots).
bool is_hostname(std::string_view h) {
    if (h.empty() || h.size() > 253) return false;
    for (char c : h)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
    return true;
}

/// "ADDR[:PORT]" or "[V6][:PORT]" into host and port.
bool split_host_port(std::string_view hp, std::string &host, uint16_t &port) {
    if (hp.starts_with("[")) {
        size_t close = hp.find(']');
        if (close == std::string_view::npos) return false;
        host = std::string(hp.substr(1, close - 1));
        std::string_view rest = hp.substr(close + 1);
        if (rest.empty()) return true;
        return rest[0] == ':' && parse_port(rest.substr(1), port);
    }
    size_t colon = hp.rfind(':');
    if (colon != std::string_view::npos && hp.find(':') == colon) {
        host = std::string(hp.substr(0, colon));
        return parse_port(hp.substr(colon + 1), port);
    }
    host = std::string(hp);
    return true;
}

} // namespace

Expected<UpstreamEndpoint, Error> parse_upstream(std::string_view uri) {
    std::string u(uri);
    auto bad = [&](std::string why) { return unexpected(make_error(ErrorKind::bad_uri, u, std::move(why))); };
    UpstreamEndpoint ep;
    ep.uri = u;
    if (uri.starts_with("tls://")) {
        // RFC 7858 §3.1 (port 853) and RFC 8310 §8: the authentication name
        // comes from configuration (#NAME), else the address itself.
        ep.kind = UpstreamEndpoint::Kind::dot;
        ep.port = 853;
        std::string_view rest = uri.substr(6);
        size_t hash = rest.find('#');
        if (hash != std::string_view::npos) {
            ep.auth_name = std::string(rest.substr(hash + 1));
            rest = rest.substr(0, hash);
            if (!is_hostname(ep.auth_name)) return bad("bad authentication name '" + ep.auth_name + "'");
        }
        if (!split_host_port(rest, ep.host, ep.port)) return bad("want tls://ADDR[:PORT][#NAME]");
        if (!is_ip_literal(ep.host)) return bad("'" + ep.host + "' is not an IP address (want tls://ADDR[:PORT][#NAME])");
        return ep;
    }
    if (uri.starts_with("https://")) {
        // RFC 8484 §3: an https URI template; we use POST so no {?dns}.
        ep.kind = UpstreamEndpoint::Kind::doh;
        ep.port = 443;
        std::string_view rest = uri.substr(8);
        size_t slash = rest.find('/');
        if (slash == std::string_view::npos) return bad("want https://HOST[:PORT]/PATH");
        if (!split_host_port(rest.substr(0, slash), ep.host, ep.port) || ep.host.empty())
            return bad("want https://HOST[:PORT]/PATH");
        if (!is_ip_literal(ep.host) && !is_hostname(ep.host)) return bad("bad host '" + ep.host + "'");
        std::string_view path = rest.substr(slash);
        for (char c : path)
            if (c <= ' ' || c == '#' || c == 0x7f) return bad("bad path");
        ep.url = u;
        return ep;
    }
    if (uri.starts_with("http://")) return bad("clear-text HTTP is not allowed (want https://)");
    return bad("not an encrypted upstream (want tls:// or https://)");
}

Expected<std::unique_ptr<Upstream>, Error> make_upstream(const UpstreamEndpoint &ep, const Options &opt) {
    if (ep.kind == UpstreamEndpoint::Kind::doh) return make_doh(ep, opt);
    auto ctx = make_dot_ctx(ep, opt);
    if (!ctx) return unexpected(ctx.error());
    return make_dot(ep, opt, std::move(*ctx));
}

} // namespace aisid::transport
