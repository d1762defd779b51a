#include "aisid/eval/topology.hpp"

#include <algorithm>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>

namespace aisid::eval {
namespace {

// Value of attribute `name` inside one tag's text ("<node id=\"3\">").
std::optional<std::string> attr(std::string_view tag, std::string_view name) {
    size_t pos = 0;
    while ((pos = tag.find(name, pos)) != std::string_view::npos) {
        const bool start_ok = pos > 0 && (tag[pos - 1] == ' ' || tag[pos - 1] == '\t' || tag[pos - 1] == '\n');
        const size_t eq = pos + name.size();
        if (start_ok && eq + 1 < tag.size() && tag[eq] == '=' && (tag[eq + 1] == '"' || tag[eq + 1] == '\'')) {
            const char q = tag[eq + 1];
            const size_t end = tag.find(q, eq + 2);
            if (end == std::string_view::npos) return std::nullopt;
            return std::string(tag.substr(eq + 2, end - eq - 2));
        }
        pos = eq;
    }
    return std::nullopt;
}

std::string unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '&') {
            static const std::pair<const char *, char> ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
            bool done = false;
            for (auto [e, c] : ents) {
                if (s.substr(i).starts_with(e)) {
                    out += c;
                    i += std::string_view(e).size() - 1;
                    done = true;
                    break;
                }
            }
            if (done) continue;
        }
        out += s[i];
    }
    return out;
}

bool parse_int(const std::string &s, int &out) {
    if (s.empty()) return false;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9' || v > 1000000) return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

} // namespace

TopoResult parse_graphml(std::string_view text) {
    TopoResult r;
    std::map<std::string, std::string> node_keys; // key id → attr.name (for="node")
    std::string graph_label_key;
    struct RawNode {
        int id;
        std::map<std::string, std::string> data;
    };
    std::vector<RawNode> raw;
    std::vector<std::pair<int, int>> edges;
    std::string graph_name;

    size_t pos = 0;
    RawNode *cur = nullptr;
    bool in_graph = false;
    while ((pos = text.find('<', pos)) != std::string_view::npos) {
        const size_t end = text.find('>', pos);
        if (end == std::string_view::npos) {
            r.error = "unterminated tag";
            return r;
        }
        std::string_view tag = text.substr(pos, end - pos + 1);
        if (tag.starts_with("<key ")) {
            auto id = attr(tag, "id"), nm = attr(tag, "attr.name"), f = attr(tag, "for");
            if (id && nm && f && *f == "node") node_keys[*id] = *nm;
            if (id && nm && f && *f == "graph" && *nm == "label") graph_label_key = *id;
        } else if (tag.starts_with("<graph")) {
            in_graph = true;
        } else if (tag.starts_with("<node ")) {
            auto id = attr(tag, "id");
            int v;
            if (!id || !parse_int(*id, v)) {
                r.error = "node without a numeric id";
                return r;
            }
            raw.push_back(RawNode{v, {}});
            cur = tag.ends_with("/>") ? nullptr : &raw.back();
        } else if (tag.starts_with("</node")) {
            cur = nullptr;
        } else if (tag.starts_with("<data ")) {
            auto key = attr(tag, "key");
            const size_t close = text.find("</data>", end);
            if (!key || close == std::string_view::npos) {
                r.error = "malformed <data>";
                return r;
            }
            std::string val = unescape(text.substr(end + 1, close - end - 1));
            if (cur) {
                auto k = node_keys.find(*key);
                if (k != node_keys.end()) cur->data[k->second] = val;
            } else if (in_graph && *key == graph_label_key) {
                graph_name = val;
            }
            pos = close + 7;
            continue;
        } else if (tag.starts_with("<edge ")) {
            auto s = attr(tag, "source"), t = attr(tag, "target");
            int a, b;
            if (!s || !t || !parse_int(*s, a) || !parse_int(*t, b)) {
                r.error = "edge without numeric source/target";
                return r;
            }
            edges.emplace_back(a, b);
        }
        pos = end + 1;
    }
    if (raw.empty()) {
        r.error = "no nodes";
        return r;
    }
    Topology t;
    t.name = graph_name;
    t.nodes.resize(raw.size());
    std::vector<bool> seen(raw.size(), false);
    for (auto &rn : raw) {
        if (rn.id < 0 || static_cast<size_t>(rn.id) >= raw.size() || seen[rn.id]) {
            r.error = "node ids are not 0..n-1";
            return r;
        }
        seen[rn.id] = true;
        TopoNode &n = t.nodes[rn.id];
        n.id = rn.id;
        n.label = rn.data.count("label") ? rn.data["label"] : std::to_string(rn.id);
        n.internal = !(rn.data.count("Internal") && rn.data["Internal"] == "0");
    }
    for (auto [a, b] : edges) {
        if (a < 0 || b < 0 || static_cast<size_t>(a) >= raw.size() || static_cast<size_t>(b) >= raw.size() || a == b) {
            r.error = "edge to an unknown node or a self-loop";
            return r;
        }
        auto &na = t.nodes[a].nbrs;
        if (std::find(na.begin(), na.end(), b) != na.end()) {
            r.error = "parallel edge";
            return r;
        }
        na.push_back(b);
        t.nodes[b].nbrs.push_back(a);
    }
    for (auto &n : t.nodes) std::sort(n.nbrs.begin(), n.nbrs.end());
    t.edges = std::move(edges);
    r.topo = std::move(t);
    return r;
}

TopoResult load_graphml(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return TopoResult{std::nullopt, path + ": cannot open"};
    std::stringstream ss;
    ss << f.rdbuf();
    TopoResult r = parse_graphml(ss.str());
    if (!r.topo) r.error = path + ": " + r.error;
    return r;
}

Routing::Routing(const Topology &t) : n_(static_cast<int>(t.nodes.size())) {
    std::vector<int> link_of(n_ * n_, -1);
    for (size_t e = 0; e < t.edges.size(); ++e) {
        auto [a, b] = t.edges[e];
        link_src_.push_back(a), link_dst_.push_back(b), link_of[a * n_ + b] = static_cast<int>(2 * e);
        link_src_.push_back(b), link_dst_.push_back(a), link_of[b * n_ + a] = static_cast<int>(2 * e + 1);
    }
    dist_.assign(n_ * n_, -1);
    paths_.assign(n_ * n_, {});
    for (int s = 0; s < n_; ++s) {
        std::vector<int> pred(n_, -1);
        std::deque<int> q{s};
        dist_[s * n_ + s] = 0;
        while (!q.empty()) {
            int u = q.front();
            q.pop_front();
            for (int v : t.nodes[u].nbrs) {
                if (dist_[s * n_ + v] >= 0) continue;
                dist_[s * n_ + v] = dist_[s * n_ + u] + 1;
                pred[v] = u;
                q.push_back(v);
            }
        }
        for (int v = 0; v < n_; ++v) {
            if (v == s || dist_[s * n_ + v] < 0) continue;
            std::vector<int> p;
            for (int x = v; x != s; x = pred[x]) p.push_back(link_of[pred[x] * n_ + x]);
            std::reverse(p.begin(), p.end());
            paths_[s * n_ + v] = std::move(p);
        }
    }
}

} // namespace aisid::eval
