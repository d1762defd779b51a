// The network topology of the experiment: a GraphML file from the Internet
// Topology Zoo (Knight et al., IEEE JSAC 2011, CC BY 4.0), read into an
// undirected graph, plus hop-count shortest paths with deterministic ties.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aisid::eval {

struct TopoNode {
    int id = 0;            ///< the GraphML node id (0..n-1 in the Zoo files)
    std::string label;     ///< city name
    bool internal = true;  ///< Zoo "Internal" attribute (0 = international link stub)
    std::vector<int> nbrs; ///< neighbour ids, ascending
};

struct Topology {
    std::string name;
    std::vector<TopoNode> nodes;             ///< indexed by id
    std::vector<std::pair<int, int>> edges;  ///< undirected, in file order
    size_t degree(int v) const { return nodes[v].nbrs.size(); }
};

/// Parses GraphML text (the subset the Zoo writes: <key>, <node> with <data>,
/// <edge source= target=>). Node ids must be 0..n-1. Error text on failure.
struct TopoResult {
    std::optional<Topology> topo;
    std::string error;
};
TopoResult parse_graphml(std::string_view text);
TopoResult load_graphml(const std::string &path);

/// Directed links: undirected edge e gives link 2e (source→target in file
/// order) and 2e+1 (the reverse). Paths are lists of directed link ids.
class Routing {
public:
    explicit Routing(const Topology &t);
    int nodes() const { return n_; }
    int links() const { return static_cast<int>(link_src_.size()); }
    int link_src(int l) const { return link_src_[l]; }
    int link_dst(int l) const { return link_dst_[l]; }
    /// Hop count of the shortest path u→v.
    int hops(int u, int v) const { return dist_[u * n_ + v]; }
    /// The shortest path u→v as directed link ids (empty when u == v). Ties
    /// between equal-length paths go to the lowest-id predecessor (BFS over
    /// ascending neighbour lists), so every run routes alike.
    const std::vector<int> &path(int u, int v) const { return paths_[u * n_ + v]; }

private:
    int n_;
    std::vector<int> link_src_, link_dst_;
    std::vector<int> dist_;
    std::vector<std::vector<int>> paths_;
};

} // namespace aisid::eval
