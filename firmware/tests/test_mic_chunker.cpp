// The chunker turns any sequence of (odd) sizes into 1024-byte messages
// without losing, duplicating or reordering a byte.
#include <vector>

#include "harness.h"
#include "toycore/mic_chunker.h"
#include "toycore/rng.h"

static std::vector<std::vector<uint8_t>> feed(const std::vector<uint8_t>& stream, const std::vector<size_t>& sizes) {
  toy::MicChunker c;
  std::vector<std::vector<uint8_t>> chunks;
  size_t pos = 0;
  size_t k = 0;
  while (pos < stream.size()) {
    size_t n = sizes[k++ % sizes.size()];
    if (n > stream.size() - pos) n = stream.size() - pos;
    const uint8_t* p = stream.data() + pos;
    size_t left = n;
    while (left > 0) {
      const size_t used = c.push(p, left);
      p += used;
      left -= used;
      if (c.full()) {
        chunks.emplace_back(c.chunk(), c.chunk() + toy::kMicChunkBytes);
        c.clear();
      }
    }
    pos += n;
  }
  return chunks;
}

static std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7 + i / 251);
  return v;
}

TEST(exact_multiple) {
  const auto s = pattern(4 * toy::kMicChunkBytes);
  const auto chunks = feed(s, {toy::kMicChunkBytes});
  CHECK_EQ(chunks.size(), 4u);
  CHECK(chunks[2] == std::vector<uint8_t>(s.begin() + 2048, s.begin() + 3072));
}

TEST(odd_sizes_preserve_the_stream) {
  const std::vector<std::vector<size_t>> patterns = {{1}, {3}, {63}, {64}, {1023}, {1025}, {3000}, {1, 2047, 5}, {4097}};
  for (const auto& sizes : patterns) {
    const auto s = pattern(10 * toy::kMicChunkBytes + 333);
    const auto chunks = feed(s, sizes);
    CHECK_EQ(chunks.size(), 10u);  // the 333-byte tail stays pending
    std::vector<uint8_t> joined;
    for (const auto& c : chunks) {
      CHECK_EQ(c.size(), toy::kMicChunkBytes);
      joined.insert(joined.end(), c.begin(), c.end());
    }
    CHECK(joined == std::vector<uint8_t>(s.begin(), s.begin() + 10 * toy::kMicChunkBytes));
  }
}

TEST(random_sizes) {
  toy::Rng rng(5);
  std::vector<size_t> sizes;
  for (int i = 0; i < 500; ++i) sizes.push_back(rng.up_to(5000));
  const auto s = pattern(200 * toy::kMicChunkBytes);
  const auto chunks = feed(s, sizes);
  CHECK_EQ(chunks.size(), 200u);
  CHECK(chunks.back() == std::vector<uint8_t>(s.end() - toy::kMicChunkBytes, s.end()));
}

TEST(push_reports_consumed_and_handles_edges) {
  toy::MicChunker c;
  uint8_t big[3000] = {};
  CHECK_EQ(c.push(big, sizeof(big)), toy::kMicChunkBytes);
  CHECK(c.full());
  CHECK_EQ(c.push(big, 10), 0u);  // full: nothing more until cleared
  c.clear();
  CHECK_EQ(c.pending_bytes(), 0u);
  CHECK_EQ(c.push(big, 0), 0u);
  CHECK_EQ(c.push(nullptr, 100), 0u);
  CHECK_EQ(c.push(big, 1), 1u);
  CHECK_EQ(c.pending_bytes(), 1u);
}

TEST_MAIN()
