// SHA-256 (FIPS 180-4), used to name and verify cache entries. No external crypto library needed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace rkeops {

// Incremental SHA-256: feed bytes with update(), read the digest with hex_digest().
class Sha256 {
 public:
  Sha256();
  // Appends `n` bytes to the message.
  void update(const void* data, size_t n);
  // Appends the bytes of `s` to the message.
  void update(const std::string& s) { update(s.data(), s.size()); }
  // Lowercase hex digest (64 chars) of everything fed so far; does not end the stream.
  std::string hex_digest() const;

 private:
  void compress(const uint8_t block[64]);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // message length in bytes
};

// Lowercase hex SHA-256 of `n` bytes at `data`.
std::string sha256_hex(const void* data, size_t n);
// Lowercase hex SHA-256 of the bytes of `s`.
std::string sha256_hex(const std::string& s);

}  // namespace rkeops
