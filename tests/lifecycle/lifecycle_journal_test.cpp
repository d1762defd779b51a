// The journal: entries survive a reopen; a torn last entry is dropped with a
// note and the file cut back to the last whole entry.
#include "aisid/authority/journal.hpp"
#include "lifecycle_support.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace aisid::resolver;
using namespace aisid::proto;
using lifecycle_test::rr;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/aisid-journal-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    return tmpl;
}

Diff make_diff(uint32_t from, uint32_t to, const std::string &name) {
    Diff d;
    d.from = from;
    d.to = to;
    d.del.push_back(rr("ai.example. 300 IN SOA ns.ai.example. admin.ai.example. " + std::to_string(from) +
                       " 3600 600 86400 60"));
    d.add.push_back(rr("ai.example. 300 IN SOA ns.ai.example. admin.ai.example. " + std::to_string(to) +
                       " 3600 600 86400 60"));
    d.add.push_back(rr(name + " 300 IN TXT \"code=" + std::to_string(to) + "\""));
    return d;
}

} // namespace

TEST_CASE("journal: entries round-trip through the file") {
    std::string dir = temp_dir();
    std::string path = dir + "/z.jnl";
    {
        Journal j;
        std::vector<Diff> got;
        std::string note, err;
        REQUIRE(j.open(path, got, note, err));
        CHECK(got.empty());
        for (uint32_t i = 1; i <= 5; ++i) REQUIRE(j.append(make_diff(i, i + 1, "t" + std::to_string(i) + "._object.ai.example."), err));
    }
    Journal j;
    std::vector<Diff> got;
    std::string note, err;
    REQUIRE(j.open(path, got, note, err));
    CHECK(note.empty());
    REQUIRE(got.size() == 5);
    CHECK(got[4].from == 5);
    CHECK(got[4].to == 6);
    CHECK(got[2].add.at(1).same_rr(make_diff(3, 4, "t3._object.ai.example.").add.at(1)));
    std::filesystem::remove_all(dir);
}

TEST_CASE("journal: a torn last entry is dropped, with a note, and the journal goes on from there") {
    std::string dir = temp_dir();
    std::string path = dir + "/z.jnl";
    uint64_t whole = 0;
    {
        Journal j;
        std::vector<Diff> got;
        std::string note, err;
        REQUIRE(j.open(path, got, note, err));
        for (uint32_t i = 1; i <= 3; ++i) REQUIRE(j.append(make_diff(i, i + 1, "a._object.ai.example."), err));
        whole = j.size();
        REQUIRE(j.append(make_diff(4, 5, "b._object.ai.example."), err));
    }
    for (uint64_t cut : {uint64_t{3}, uint64_t{11}, uint64_t{30}}) {
        // A crash mid-append: only part of the last entry reached the disk.
        std::filesystem::resize_file(path, whole + cut);
        Journal j;
        std::vector<Diff> got;
        std::string note, err;
        REQUIRE(j.open(path, got, note, err));
        CHECK(got.size() == 3);
        CHECK(note.find("torn last entry") != std::string::npos);
        CHECK(std::filesystem::file_size(path) == whole);
        REQUIRE(j.append(make_diff(4, 5, "c._object.ai.example."), err));
    }
    {
        // A flipped byte in the payload fails the checksum the same way.
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(whole + 20));
        f.put('\x5a');
    }
    Journal j;
    std::vector<Diff> got;
    std::string note, err;
    REQUIRE(j.open(path, got, note, err));
    CHECK(got.size() == 3);
    CHECK(note.find("checksum") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("journal: rewrite keeps only the given entries") {
    std::string dir = temp_dir();
    std::string path = dir + "/z.jnl";
    Journal j;
    std::vector<Diff> got;
    std::string note, err;
    REQUIRE(j.open(path, got, note, err));
    for (uint32_t i = 1; i <= 4; ++i) REQUIRE(j.append(make_diff(i, i + 1, "a._object.ai.example."), err));
    REQUIRE(j.rewrite({make_diff(3, 4, "a._object.ai.example."), make_diff(4, 5, "a._object.ai.example.")}, err));
    REQUIRE(j.append(make_diff(5, 6, "a._object.ai.example."), err));
    Journal k;
    got.clear();
    REQUIRE(k.open(path, got, note, err));
    REQUIRE(got.size() == 3);
    CHECK(got[0].from == 3);
    CHECK(got[2].to == 6);
    std::filesystem::remove_all(dir);
}

TEST_CASE("journal: CRC-32C of the standard check string") { CHECK(crc32c("123456789") == 0xE3069283u); }

TEST_CASE("journal: the signer of an entry (key, MAC, time, fudge) round-trips - entries without one still read") {
    Diff d = make_diff(1, 2, "a._method.ai.example.");
    Diff plain = d;
    d.tsig_key = std::string("\x02k1\x00", 4);
    d.tsig_mac = std::string(32, '\xab');
    d.tsig_time = 0x0001'2345'6789ull;
    d.tsig_fudge = 300;
    Diff back;
    REQUIRE(decode_diff(encode_diff(d), back));
    CHECK(back.tsig_key == d.tsig_key);
    CHECK(back.tsig_mac == d.tsig_mac);
    CHECK(back.tsig_time == d.tsig_time);
    CHECK(back.tsig_fudge == 300);
    CHECK(back.add.size() == d.add.size());
    Diff back2;
    REQUIRE(decode_diff(encode_diff(plain), back2));
    CHECK(back2.tsig_mac.empty());
    std::string bad = encode_diff(d);
    bad.pop_back();
    CHECK_FALSE(decode_diff(bad, back2));
}
