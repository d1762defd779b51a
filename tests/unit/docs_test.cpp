// Runs every ```console block of docs/*.md and README.md and compares the
// output with the text: documentation examples are tests.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace {

struct Example {
    std::string file;
    int line;
    std::string command;
    std::string expected;
};

std::vector<Example> examples() {
    std::vector<Example> out;
    for (const auto &e : std::filesystem::directory_iterator(AISID_SOURCE_DIR "/docs")) {
        if (e.path().extension() != ".md") continue;
        std::ifstream in(e.path());
        std::string line;
        int n = 0;
        bool in_block = false;
        Example cur;
        while (std::getline(in, line)) {
            ++n;
            if (!in_block && line == "```console") {
                in_block = true;
                cur = Example{e.path().filename().string(), n, "", ""};
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
