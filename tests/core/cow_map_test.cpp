// The copy-on-write containers zones are made of: versions share what a
// change did not touch, a change copies only its shard, and every version
// reads as its own map.
#include "aisid/core/cow_map.hpp"

#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>

using namespace aisid;

namespace {

std::map<std::string, int> contents(const CowStringMap<int> &m) {
    std::map<std::string, int> out;
    m.for_each([&](std::string_view k, int v) { CHECK(out.emplace(std::string(k), v).second); });
    return out;
}

CowStringMap<int> filled(size_t n) {
    CowStringMap<int> m;
    for (size_t i = 0; i < n; ++i) *m.emplace("k" + std::to_string(i)).first = static_cast<int>(i);
    m.rebalance();
    return m;
}

} // namespace

TEST_CASE("cow: CowPtr copies on the first change only, and the old value stays") {
    CowPtr<std::string> a;
    a.mut() = "one";
    CowPtr<std::string> b = a;
    CHECK(b.shares_with(a));
    b.mut() += " two";
    CHECK_FALSE(b.shares_with(a));
    CHECK(*a == "one");
    CHECK(*b == "one two");
    const std::string *before = &*b;
    b.mut() += " three";  // b's own now: changed in place
    CHECK(&*b == before);
}

TEST_CASE("cow: a copy shares every shard - a change copies only the shard it falls in") {
    CowStringMap<int> a = filled(20000);
    REQUIRE(a.shards().count() >= 16);
    CowStringMap<int> b = a;
    CHECK(b.shards().shared_with(a.shards()) == a.shards().count());
    *b.find_mut("k7") = -7;
    CHECK(b.shards().shared_with(a.shards()) == a.shards().count() - 1);
    *b.find_mut("k7") = -8;  // the same shard again: no second copy
    CHECK(b.shards().shared_with(a.shards()) == a.shards().count() - 1);
    CHECK(*a.find("k7") == 7);
    CHECK(*b.find("k7") == -8);
    // A miss or the erase of an absent key copies nothing.
    CowStringMap<int> c = a;
    CHECK(c.find_mut("absent") == nullptr);
    CHECK_FALSE(c.erase("absent"));
    CHECK(c.shards().shared_with(a.shards()) == a.shards().count());
}

TEST_CASE("cow: insert, erase and iteration in one version leave the other as it was") {
    CowStringMap<int> a = filled(3000);
    CowStringMap<int> b = a;
    CHECK(b.erase("k1"));
    CHECK_FALSE(b.erase("k1"));
    auto [v, inserted] = b.emplace("new");
    CHECK(inserted);
    *v = 42;
    CHECK(b.size() == 3000);
    CHECK(a.size() == 3000);
    CHECK(a.find("k1"));
    CHECK_FALSE(b.find("k1"));
    CHECK_FALSE(a.find("new"));
    CHECK(*b.find("new") == 42);
    auto ca = contents(a), cb = contents(b);
    CHECK(ca.size() == 3000);
    CHECK(cb.size() == 3000);
    CHECK(ca.count("k1") == 1);
    CHECK(cb.count("new") == 1);
}

TEST_CASE("cow: the shard count follows the size within a factor of four") {
    CowStringMap<int> m;
    for (int i = 0; i < 100000; ++i) *m.emplace("n" + std::to_string(i)).first = i;
    CHECK(m.shards().count() == 1);  // grown in bulk: split once at the end
    m.rebalance();
    size_t want = 100000 / CowStringMap<int>::kTarget;
    CHECK(m.shards().count() * 4 >= want);
    CHECK(m.shards().count() <= want * 4);
    for (int i = 0; i < 100000; i += 997) CHECK(*m.find("n" + std::to_string(i)) == i);
    for (int i = 0; i < 99000; ++i) m.erase("n" + std::to_string(i));
    m.rebalance();
    CHECK(m.shards().count() <= 8);
    CHECK(contents(m).size() == 1000);
}

TEST_CASE("cow: random operations on versions agree with std::map") {
    std::mt19937 rng(12345);
    struct Version {
        CowStringMap<int> m;
        std::map<std::string, int> ref;
    };
    std::vector<Version> versions(1);
    for (int round = 0; round < 60; ++round) {
        // A new version from a random older one, changed at random.
        Version v = versions[rng() % versions.size()];
        int ops = 1 + static_cast<int>(rng() % 400);
        for (int i = 0; i < ops; ++i) {
            std::string k = "x" + std::to_string(rng() % 5000);
            switch (rng() % 4) {
            case 0:
            case 1: {
                int val = static_cast<int>(rng());
                *v.m.emplace(k).first = val;
                v.ref[k] = val;
                break;
            }
            case 2: CHECK(v.m.erase(k) == (v.ref.erase(k) == 1)); break;
            case 3:
                if (int *p = v.m.find_mut(k)) {
                    REQUIRE(v.ref.count(k));
                    *p += 1;
                    v.ref[k] += 1;
                } else {
                    CHECK(v.ref.count(k) == 0);
                }
                break;
            }
        }
        if (rng() % 3 == 0) v.m.rebalance();
        versions.push_back(std::move(v));
        // Every version, old ones included, still reads as its own map.
        for (const Version &x : versions) {
            REQUIRE(x.m.size() == x.ref.size());
            CHECK(contents(x.m) == x.ref);
        }
    }
}
