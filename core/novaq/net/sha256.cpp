#include "novaq/net/sha256.h"

#include "novaq/io/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <openssl/evp.h>
#include <vector>

namespace novaq::net {

struct Sha256::State {
    EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : m_state(std::make_unique<State>())
{
    m_state->ctx = EVP_MD_CTX_new();
    if (!m_state->ctx || EVP_DigestInit_ex(m_state->ctx, EVP_sha256(), nullptr) != 1)
        throw Error(ErrorKind::Io, "cannot start a SHA-256 computation (OpenSSL failed)");
}

Sha256::~Sha256() { EVP_MD_CTX_free(m_state->ctx); }

void Sha256::update(std::span<const char> data)
{
    if (!data.empty())
        EVP_DigestUpdate(m_state->ctx, data.data(), data.size());
}

std::string Sha256::finishHex()
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(m_state->ctx, digest, &length);
    static const char* kHex = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
        hex += kHex[digest[i] >> 4];
        hex += kHex[digest[i] & 15];
    }
    return hex;
}

std::string sha256File(const std::filesystem::path& path, const CancelToken* cancel, const ProgressFn& progress)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw Error(ErrorKind::Io, "cannot read " + path.string() + " to verify it: " + std::strerror(errno));
    struct stat st {};
    const double total = ::fstat(fd, &st) == 0 ? double(st.st_size) : 0.0; // 0: not known
    Sha256 hash;
    std::vector<char> buffer(size_t(4) << 20);
    uint64_t done = 0;
    for (;;) {
        if (cancel && cancel->cancelled()) {
            ::close(fd);
            throw Error(ErrorKind::Cancelled, "verification cancelled");
        }
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            throw Error(ErrorKind::Io, "cannot read " + path.string() + " to verify it: " + std::strerror(err));
        }
        if (n == 0)
            break;
        hash.update({buffer.data(), size_t(n)});
        done += uint64_t(n);
        reportProgress(progress, double(done), total, "verify");
    }
    ::close(fd);
    return hash.finishHex();
}

std::string sha256Hex(std::span<const char> data)
{
    Sha256 hash;
    hash.update(data);
    return hash.finishHex();
}

bool isSha256Hex(const std::string& text)
{
    return text.size() == 64 &&
           std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

} // namespace novaq::net
