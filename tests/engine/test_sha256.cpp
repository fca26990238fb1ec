// SHA-256 against the FIPS 180-4 / NIST example vectors, plus the block and padding boundaries.
#include <gtest/gtest.h>

#include <string>

#include "sha256.h"

using rkeops::Sha256;
using rkeops::sha256_hex;

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                       "klmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Lengths where the padding spills into a second block (56) or the message fills a block (64).
TEST(Sha256, PaddingBoundaries) {
  EXPECT_EQ(sha256_hex(std::string(55, 'a')), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha256_hex(std::string(56, 'a')), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha256_hex(std::string(63, 'a')), "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  EXPECT_EQ(sha256_hex(std::string(64, 'a')), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  EXPECT_EQ(sha256_hex(std::string(119, 'a')), "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
  EXPECT_EQ(sha256_hex(std::string(120, 'a')), "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c");
}

// Feeding in pieces of any size must give the one-shot digest (exercises the partial-block buffer).
TEST(Sha256, IncrementalMatchesOneShot) {
  std::string msg;
  for (int i = 0; i < 1000; ++i) msg.push_back(char(i * 131 + 7));
  const std::string want = sha256_hex(msg);
  for (size_t chunk : {1, 3, 63, 64, 65, 127, 500}) {
    Sha256 h;
    for (size_t at = 0; at < msg.size(); at += chunk) h.update(msg.data() + at, std::min(chunk, msg.size() - at));
    EXPECT_EQ(h.hex_digest(), want) << "chunk " << chunk;
  }
}

// hex_digest() may be read midway: the stream continues as if it had not been called.
TEST(Sha256, DigestDoesNotEndStream) {
  Sha256 h;
  h.update("ab", 2);
  EXPECT_EQ(h.hex_digest(), sha256_hex("ab"));
  h.update("c", 1);
  EXPECT_EQ(h.hex_digest(), sha256_hex("abc"));
  EXPECT_EQ(h.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, BinaryBytesIncludingZero) {
  const char bytes[3] = {'a', '\0', 'b'};
  EXPECT_NE(sha256_hex(bytes, 3), sha256_hex("a"));
  EXPECT_EQ(sha256_hex(bytes, 3), sha256_hex(std::string(bytes, 3)));
}
