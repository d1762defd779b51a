// Shared between the transport implementation files; not installed.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "aisid/transport/transport.hpp"

namespace aisid::transport {

inline constexpr size_t npos = size_t(-1);

template <auto F> struct Deleter {
    template <class T> void operator()(T *p) const { F(p); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL_free>>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, Deleter<SSL_SESSION_free>>;

/// The OpenSSL error queue's first reason ("tlsv1 alert unknown ca"), cleared.
std::string openssl_reason();

inline Error make_error(ErrorKind k, std::string upstream, std::string reason) {
    return Error{k, std::move(upstream), std::move(reason)};
}

/// Completions collected while an upstream works, delivered when its state is
/// consistent again (so a callback may re-enter submit()).
class Completions {
public:
    void add(Callback cb, UpstreamResult r) { items_.emplace_back(std::move(cb), std::move(r)); }
    void deliver() {
        while (!items_.empty()) {
            std::vector<std::pair<Callback, UpstreamResult>> now;
            now.swap(items_);
            for (auto &[cb, r] : now)
                if (cb) cb(std::move(r));
        }
    }

private:
    std::vector<std::pair<Callback, UpstreamResult>> items_;
};

std::unique_ptr<Upstream> make_dot(const UpstreamEndpoint &ep, const Options &opt, SslCtxPtr ctx);
Expected<SslCtxPtr, Error> make_dot_ctx(const UpstreamEndpoint &ep, const Options &opt);
Expected<std::unique_ptr<Upstream>, Error> make_doh(const UpstreamEndpoint &ep, const Options &opt);

} // namespace aisid::transport
