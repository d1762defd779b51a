// The source layout's rules (docs/DEVELOPING.md, "Layering rules"), checked
// on the tree: headers under their part's prefix with no name used twice,
// bare includes only for a folder's private headers, and no source folder
// exported as an include directory.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const char *kProductDirs[] = {"sdk", "resolver", "cli", "gateway", "eval", "packaging", "examples"};

std::vector<fs::path> product_files(const std::set<std::string> &exts) {
    std::vector<fs::path> out;
    const fs::path root(AISID_SOURCE_DIR);
    for (const char *d : kProductDirs) {
        if (!fs::is_directory(root / d)) continue;
        for (const auto &e : fs::recursive_directory_iterator(root / d)) {
            if (!e.is_regular_file()) continue;
            const std::string rel = fs::relative(e.path(), root).string();
            if (rel.find("/python/") != std::string::npos) continue;
            if (exts.count(e.path().extension().string()) || exts.count(e.path().filename().string()))
                out.push_back(e.path());
        }
    }
    return out;
}

std::string slurp(const fs::path &p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string rel(const fs::path &p) { return fs::relative(p, AISID_SOURCE_DIR).string(); }

} // namespace

TEST_CASE("layout: no header name appears twice") {
    std::map<std::string, std::vector<std::string>> by_name;
    for (const fs::path &p : product_files({".hpp", ".h", ".in"})) {
        std::string n = p.filename().string();
        if (p.extension() == ".in") {
            if (n.find(".h.in") == std::string::npos) continue;
            n = n.substr(0, n.size() - 3);
        }
        by_name[n].push_back(rel(p));
    }
    CHECK(by_name.size() > 50);
    for (const auto &[name, where] : by_name) {
        CAPTURE(name);
        CAPTURE(where.front());
        CHECK(where.size() == 1);
    }
}

TEST_CASE("layout: a bare include names a private header of the same folder") {
    const std::regex inc(R"re(^\s*#\s*include\s+"([^"]+)")re");
    size_t prefixed = 0;
    for (const fs::path &p : product_files({".hpp", ".h", ".cpp", ".c"})) {
        std::ifstream in(p);
        std::string line;
        int n = 0;
        while (std::getline(in, line)) {
            ++n;
            std::smatch m;
            if (!std::regex_search(line, m, inc)) continue;
            const std::string h = m[1];
            CAPTURE(rel(p) + ":" + std::to_string(n) + ": " + h);
            if (h.rfind("aisid/", 0) == 0) {
                ++prefixed;
                continue;
            }
            CHECK(h.find('/') == std::string::npos);
            CHECK(fs::exists(p.parent_path() / h));
        }
    }
    CHECK(prefixed > 100);
}

TEST_CASE("layout: no source folder is a PUBLIC include directory") {
    // target_include_directories(T PUBLIC|INTERFACE dirs...): every directory
    // given to other targets ends in /include (generated headers: the build tree's).
    const std::regex call(R"re(target_include_directories\s*\(([^)]*)\))re");
    size_t seen = 0;
    for (const fs::path &p : product_files({"CMakeLists.txt"})) {
        const std::string s = slurp(p);
        for (auto it = std::sregex_iterator(s.begin(), s.end(), call); it != std::sregex_iterator(); ++it) {
            std::istringstream words((*it)[1].str());
            std::string w, mode;
            words >> w; // the target
            while (words >> w) {
                if (w == "PUBLIC" || w == "PRIVATE" || w == "INTERFACE") {
                    mode = w;
                    continue;
                }
                if (mode == "PRIVATE") continue;
                // $<BUILD_INTERFACE:dir> / $<INSTALL_INTERFACE:dir>
                auto colon = w.find(':');
                if (w.rfind("$<", 0) == 0 && colon != std::string::npos) w = w.substr(colon + 1, w.size() - colon - 2);
                CAPTURE(rel(p) + ": " + w);
                ++seen;
                CHECK((w.ends_with("/include") || w == "${CMAKE_INSTALL_INCLUDEDIR}"));
            }
        }
    }
    CHECK(seen >= 10);
}
