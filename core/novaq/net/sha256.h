#pragma once
// SHA-256 (OpenSSL's EVP) of a stream or a file, as lower-case hex.

#include "novaq/io/cancel.h"
#include "novaq/io/progress.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

namespace novaq::net {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(std::span<const char> data);
    std::string finishHex(); // the digest; the object is spent afterwards

private:
    struct State;
    std::unique_ptr<State> m_state;
};

// Hashes a file; `progress` (may be empty) is told the bytes done of the file's size (stage
// "verify"). Honours cancel.
std::string sha256File(const std::filesystem::path& path, const CancelToken* cancel, const ProgressFn& progress = {});
std::string sha256Hex(std::span<const char> data);

// True when `text` is 64 hex digits.
bool isSha256Hex(const std::string& text);

} // namespace novaq::net
