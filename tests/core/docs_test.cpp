// Documentation is tested: every ```console block of docs/*.md and of every
// README.md is run and its output compared with the text; the files a
// README's file map names exist; docs/metrics.md lists every aisidd_* metric
// the sources emit, and no other.
#include <doctest/doctest.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <cstring>
#include <sys/wait.h>
#include <vector>

namespace {

struct Example {
    std::string file;
    int line;
    std::string command;
    std::string expected;
};

namespace fs = std::filesystem;

// The README.md files of the source tree (build trees and .git left out).
std::vector<fs::path> readmes() {
    std::vector<fs::path> out;
    const fs::path root(AISID_SOURCE_DIR);
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
        const std::string name = it->path().filename().string();
        if (it->is_directory() && (name.rfind("build", 0) == 0 || name == ".git" || name == "node_modules")) {
            it.disable_recursion_pending();
            continue;
        }
        if (it->is_regular_file() && name == "README.md") out.push_back(it->path());
    }
    return out;
}

// docs/*.md and every README.md.
std::vector<fs::path> documents() {
    std::vector<fs::path> out = readmes();
    for (const auto &e : fs::directory_iterator(AISID_SOURCE_DIR "/docs"))
        if (e.path().extension() == ".md") out.push_back(e.path());
    return out;
}

std::string in_tree(const fs::path &p) { return fs::relative(p, AISID_SOURCE_DIR).string(); }

std::vector<Example> examples() {
    std::vector<Example> out;
    for (const fs::path &doc : documents()) {
        std::ifstream in(doc);
        std::string line;
        int n = 0;
        bool in_block = false;
        Example cur;
        while (std::getline(in, line)) {
            ++n;
            if (!in_block && line == "```console") {
                in_block = true;
                cur = Example{in_tree(doc), n, "", ""};
            } else if (in_block && line == "```") {
                in_block = false;
                if (!cur.command.empty()) out.push_back(cur);
            } else if (in_block && line.rfind("$ ", 0) == 0) {
                if (!cur.command.empty()) out.push_back(cur);
                cur.command = line.substr(2);
                cur.expected.clear();
                cur.line = n;
            } else if (in_block) {
                cur.expected += line + "\n";
            }
        }
    }
    return out;
}

std::string run(const std::string &cmd) {
    std::string full = "cd " AISID_SOURCE_DIR " && PATH=" AISID_BINARY_DIR "/cli:$PATH " + cmd + " 2>/dev/null";
    FILE *p = popen(full.c_str(), "r");
    REQUIRE(p);
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    pclose(p);
    return out;
}

} // namespace

TEST_CASE("documentation examples produce the output they show") {
    auto ex = examples();
    CHECK(ex.size() >= 5);
    for (const Example &e : ex) {
        std::string where = e.file + ":" + std::to_string(e.line) + ": " + e.command;
        CAPTURE(where);
        CHECK(run(e.command) == e.expected);
    }
}

TEST_CASE("README: .ci/run runs the README's second command") {
    std::ifstream in(AISID_SOURCE_DIR "/README.md");
    std::string line;
    std::vector<std::string> blocks;
    bool in_block = false;
    std::string cur;
    for (int n = 0; std::getline(in, line) && n < 40; ++n) {
        if (line == "```sh") {
            in_block = true;
            cur.clear();
        } else if (in_block && line == "```") {
            in_block = false;
            blocks.push_back(cur);
        } else if (in_block) {
            cur += line;
        }
    }
    REQUIRE(blocks.size() >= 2);
    CHECK(blocks[0].find("apt-get install") != std::string::npos);
    CHECK(blocks[1].find("ctest") != std::string::npos);
    std::ifstream ci(AISID_SOURCE_DIR "/.ci/run");
    std::stringstream ss;
    ss << ci.rdbuf();
    CHECK(ss.str().find("README.md") != std::string::npos);
}

namespace {

// {a,b} alternatives in a file map entry ("dname.{hpp,cpp}") expanded.
std::vector<std::string> expand(const std::string &t) {
    size_t open = t.find('{'), close = t.find('}', open);
    if (open == std::string::npos || close == std::string::npos) return {t};
    std::vector<std::string> out;
    std::string alts = t.substr(open + 1, close - open - 1);
    for (size_t at = 0;;) {
        size_t comma = alts.find(',', at);
        for (const std::string &rest : expand(t.substr(close + 1)))
            out.push_back(t.substr(0, open) + alts.substr(at, comma - at) + rest);
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    return out;
}

// Whether `token`, as a README names it, is a file or folder of the tree:
// relative to the README's folder, to the source root, or (file maps list
// bare names under a heading that gives their folder) the end of a path
// under the README's folder.
bool names_something(const fs::path &dir, const std::string &token) {
    if (fs::exists(dir / token) || fs::exists(fs::path(AISID_SOURCE_DIR) / token)) return true;
    if (token.find('/') != std::string::npos && token.back() != '/') {
        for (const auto &e : fs::recursive_directory_iterator(dir))
            if (e.path().string().ends_with("/" + token)) return true;
        return false;
    }
    for (const auto &e : fs::recursive_directory_iterator(dir))
        if (e.path().filename() == token) return true;
    return false;
}

// What a backtick span must look like to be taken for a path: a name with a
// source-like extension, or a relative path with a '/'.
bool looks_like_path(const std::string &t) {
    static const char *exts[] = {".cpp", ".hpp", ".h", ".c", ".md", ".txt", ".in", ".map", ".py"};
    if (t.empty() || !(std::isalnum(static_cast<unsigned char>(t[0])) || t[0] == '_')) return false;
    for (char c : t)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_./-{},", c))) return false;
    if (t.find("//") != std::string::npos || t.find("..") != std::string::npos) return false;
    for (const char *e : exts)
        if (t.ends_with(e) || (t.find('{') != std::string::npos && t.find('.') != std::string::npos)) return true;
    return t.find('/') != std::string::npos && t.find('.') == std::string::npos;
}

std::string slurp(const fs::path &p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

TEST_CASE("READMEs: every file and folder a README names exists") {
    size_t checked = 0;
    for (const fs::path &readme : readmes()) {
        const fs::path dir = readme.parent_path();
        std::ifstream in(readme);
        std::string line;
        bool fenced = false;
        int n = 0;
        while (std::getline(in, line)) {
            ++n;
            if (line.rfind("```", 0) == 0) fenced = !fenced;
            if (fenced || line.rfind("    ", 0) == 0) continue; // commands, not file maps
            std::string where = in_tree(readme) + ":" + std::to_string(n);
            // `path` spans.
            for (size_t a = line.find('`'); a != std::string::npos; a = line.find('`', a + 1)) {
                size_t b = line.find('`', a + 1);
                if (b == std::string::npos) break;
                std::string t = line.substr(a + 1, b - a - 1);
                a = b;
                if (!looks_like_path(t)) continue;
                // A path without an extension ("sdk/src") only when it starts
                // at a folder of the tree ("application/dns-message" is no path).
                if (t.find('.') == std::string::npos) {
                    std::string first = t.substr(0, t.find('/'));
                    if (!fs::is_directory(dir / first) && !fs::is_directory(fs::path(AISID_SOURCE_DIR) / first))
                        continue;
                }
                for (const std::string &x : expand(t)) {
                    CAPTURE(where);
                    CAPTURE(x);
                    CHECK(names_something(dir, x));
                    ++checked;
                }
            }
            // [text](relative link)
            for (size_t a = line.find("]("); a != std::string::npos; a = line.find("](", a + 2)) {
                size_t b = line.find(')', a);
                if (b == std::string::npos) break;
                std::string t = line.substr(a + 2, b - a - 2);
                t = t.substr(0, t.find('#'));
                if (t.empty() || t.find("://") != std::string::npos || t.rfind("mailto:", 0) == 0) continue;
                CAPTURE(where);
                CAPTURE(t);
                CHECK(fs::exists(dir / t));
                ++checked;
            }
        }
    }
    CHECK(checked > 100); // the file maps were read
}

TEST_CASE("docs/metrics.md lists every aisidd_* metric the sources emit, and no other") {
    std::set<std::string> emitted, documented;
    const std::regex type_line(R"(# TYPE (aisidd_[a-z0-9_]+) )");
    for (const auto &e : fs::recursive_directory_iterator(AISID_SOURCE_DIR "/resolver")) {
        if (e.path().extension() != ".cpp") continue;
        std::string text = slurp(e.path());
        for (std::sregex_iterator it(text.begin(), text.end(), type_line), end; it != end; ++it)
            emitted.insert((*it)[1]);
    }
    const std::regex row(R"(^\| `(aisidd_[a-z0-9_]+)` \|)");
    std::ifstream in(AISID_SOURCE_DIR "/docs/metrics.md");
    std::string line;
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_search(line, m, row)) documented.insert(m[1]);
    }
    CHECK(emitted.size() >= 15); // the scan found the sources
    for (const std::string &name : emitted) {
        CAPTURE(name);
        CHECK(documented.count(name) == 1);
    }
    for (const std::string &name : documented) {
        CAPTURE(name);
        CHECK(emitted.count(name) == 1);
    }
}
