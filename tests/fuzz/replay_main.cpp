// Replays a fuzz corpus without libFuzzer: every file (or every file in every
// directory) given is fed to LLVMFuzzerTestOneInput once. Used by ctest so the
// corpus is a regression suite in every build.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const std::filesystem::path &p, size_t &n) {
    std::ifstream in(p, std::ios::binary);
    std::vector<char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(buf.data()), buf.size());
    ++n;
}

int main(int argc, char **argv) {
    size_t n = 0;
    for (int i = 1; i < argc; ++i) {
        std::filesystem::path p(argv[i]);
        if (std::filesystem::is_directory(p)) {
            for (const auto &e : std::filesystem::recursive_directory_iterator(p))
                if (e.is_regular_file()) run(e.path(), n);
        } else {
            run(p, n);
        }
    }
    std::printf("replayed %zu inputs\n", n);
    return n ? 0 : 1;
}
