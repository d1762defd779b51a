// connect.cpp — connect to a service by name with the libaisid C++ API: the
// AISID first, its legacy endpoint when this network does not route AISIDs.
// Build against an installed aisid:
//   c++ -std=c++20 connect.cpp $(pkg-config --cflags --libs aisid) -o aisid-connect
// usage: aisid-connect [--zone FILE]... [--upstream ADDR[:PORT],...] [--resolve-only] NAME [PORT]
#include <aisid/aisid.hpp>

#include <arpa/inet.h>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    std::vector<std::string> zones, rest;
    std::string upstreams;
    bool resolve_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--zone" && i + 1 < argc) zones.push_back(argv[++i]);
        else if (a == "--upstream" && i + 1 < argc) upstreams = argv[++i];
        else if (a == "--resolve-only") resolve_only = true;
        else rest.push_back(a);
    }
    if (rest.empty() || rest.size() > 2) {
        std::fprintf(stderr, "usage: aisid-connect [--zone FILE]... [--upstream LIST] [--resolve-only] NAME [PORT]\n");
        return 2;
    }
    auto client = aisid::Client::create({.host_zones = zones.empty(), .watch = false});
    if (!client) {
        std::fprintf(stderr, "aisid-connect: %s\n", aisid::to_string(client.status()));
        return 3;
    }
    for (const std::string &z : zones)
        if (client->add_zone_file(z) != aisid::Status::ok) {
            std::fprintf(stderr, "aisid-connect: %s\n", aisid::last_error().c_str());
            return 2;
        }
    if (!upstreams.empty() && client->set_upstreams(upstreams) != aisid::Status::ok) {
        std::fprintf(stderr, "aisid-connect: bad upstream list\n");
        return 2;
    }

    auto answer = client->resolve(rest[0]);
    if (!answer) {
        std::fprintf(stderr, "aisid-connect: %s: %s\n", rest[0].c_str(), aisid::to_string(answer.status()));
        return answer.status() == aisid::Status::not_found ? 1 : 3;
    }
    std::printf("%s source=%s\n", std::string(answer->name()).c_str(),
                answer->source() == aisid::Source::aisid ? "aisid" : "legacy");
    if (auto id = answer->aisid())
        std::printf("aisid %s object=%s function=%s method=%s performance=%u\n", id->to_string().c_str(),
                    std::string(answer->term(aisid::Dim::object)).c_str(),
                    std::string(answer->term(aisid::Dim::function)).c_str(),
                    std::string(answer->term(aisid::Dim::method)).c_str(), id->performance());
    for (const aisid::Fallback &f : answer->fallbacks()) std::printf("fallback %s:%u\n", f.target.c_str(), f.port);
    if (resolve_only) return 0;

    uint16_t port = rest.size() > 1 ? static_cast<uint16_t>(std::stoi(rest[1])) : 443;
    aisid::ConnectInfo info{};
    auto sock = client->connect(rest[0], port, std::chrono::seconds(10), &info);
    if (!sock) {
        std::fprintf(stderr, "aisid-connect: %s: %s\n", rest[0].c_str(), aisid::to_string(sock.status()));
        return 3;
    }
    char peer[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &info.peer.sin6_addr, peer, sizeof peer);
    const char *path = info.path == AISID_PATH_AISID ? "aisid" : info.path == AISID_PATH_FALLBACK ? "fallback" : "legacy";
    std::printf("connected via %s to [%s]:%u in %.1f ms\n", path, peer, ntohs(info.peer.sin6_port),
                info.elapsed_us / 1000.0);
    return 0;
}
