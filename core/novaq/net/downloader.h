#pragma once
// Downloads one file to disk, the way users expect after years of broken downloaders
// (formats-and-protocols.md part 2):
//
// - bytes go to "<destination>.incomplete" and the file appears under its real name only
//   after its size and SHA-256 were checked; a mismatch deletes the partial file, so a bad
//   download is never kept or used as good;
// - an interrupted download resumes with Range and If-Range, also in a later process, but only
//   when the file is provably the same: the validator (a strong ETag, else Last-Modified) of
//   the answer that began it is kept beside the partial file ("<destination>.incomplete.validator")
//   and a server that answers with 200, or with a 206 of another validator, makes it start over
//   instead of splicing two versions; a partial file without a validator starts over too, unless
//   its SHA-256 is known (the check at the end then catches any splice);
// - stalls (no bytes for a while), truncated bodies, 5xx, 408 and 429 are retried with
//   exponential backoff, honouring Retry-After; the attempt counter resets when the file grows,
//   but the failures of one download are bounded in all (a server that cuts every answer ends);
// - failures a retry cannot cure (TLS to a plain-HTTP port, a malformed answer, 4xx but 408
//   and 429) fail at once; a server that does not answer or trickles below the minimum rate
//   is tried at most maxSlowAttempts times;
// - bytes beyond the expected size (the caller's, else Content-Length or Content-Range) stop
//   the transfer at once: a hostile server cannot fill the disk;
// - a signed storage URL that expired (403/410 from the redirect target) is re-resolved
//   from the canonical URL;
// - large files with a known size download as parallel ranged parts written in place,
//   recorded in "<destination>.incomplete.parts" so a restart redoes only unfinished parts;
// - free disk space is checked before the first byte;
// - progress reports bytes, speed and ETA; cancel works at any moment.

#include "novaq/io/cancel.h"
#include "novaq/net/http_client.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace novaq::net {

struct DownloadProgress {
    enum class Stage { Connecting, Downloading, Retrying, Verifying, Finished };
    Stage stage = Stage::Connecting;
    std::string label; // the file, as the user knows it
    uint64_t bytesDone = 0;
    std::optional<uint64_t> bytesTotal;
    double bytesPerSecond = 0; // over the last few seconds
    std::optional<double> etaSeconds;
    std::string note; // why a retry happens, e.g. "stalled; retry 2 of 5 in 2 s"
};

// Receives download progress, at most ~10 times a second plus every stage change. Calls are
// serialized (never concurrent) but may come from worker threads.
class DownloadSink {
public:
    virtual ~DownloadSink() = default;
    virtual void onDownload(const DownloadProgress& progress) = 0;
};

struct DownloadSettings {
    HttpSettings http;
    int maxAttempts = 6;     // per file (or part): failures in a row without the file growing
    int maxFailures = 20;    // per download: failed requests in all, whatever the progress
    int maxSlowAttempts = 2; // per download: a server that does not answer, or is too slow (HttpSettings)
    double initialBackoffSeconds = 1.0;
    double maxBackoffSeconds = 30.0;
    double maxRetryAfterSeconds = 300.0;              // a longer Retry-After fails with a message instead
    uint64_t parallelThreshold = uint64_t(256) << 20; // files at least this large go in parts
    uint64_t partSize = uint64_t(64) << 20;
    int connections = 4;
    bool checkFreeSpace = true;
};

struct DownloadTarget {
    std::string url;     // the canonical URL; redirects may lead to a storage host
    HttpHeaders headers; // sent to the canonical URL's host only (Authorization)
    std::filesystem::path destination;
    std::optional<uint64_t> expectedSize;
    std::string expectedSha256; // lower-case hex; empty: not verified (size still is)
    std::string label;
};

struct DownloadResult {
    std::filesystem::path path;
    uint64_t size = 0;
    std::string sha256;       // empty when none was expected
    uint64_t resumedFrom = 0; // bytes already on disk when this run started
    int requests = 0;
};

class Downloader {
public:
    Downloader(DownloadSettings settings, DownloadSink* sink, const CancelToken* cancel);

    // Throws Error(Network) when the server keeps failing or the bytes are wrong (the
    // partial file is then deleted when it cannot be resumed), HttpStatusError for a status
    // the caller should explain (401, 403, 404, ...), Error(Io) for disk problems,
    // Error(Cancelled) on cancel (the partial file stays, for resume).
    DownloadResult download(const DownloadTarget& target);

    const DownloadSettings& settings() const noexcept { return m_settings; }

private:
    struct Job;
    struct Parts;
    void fetchSingle(Job& job);
    uint64_t resumePoint(Job& job, const std::string& validator);
    bool acceptSingleAnswer(Job& job, int fd, const HttpResponse& head, uint64_t& have, const std::string& validator,
                            bool& changed);
    bool singleComplete(Job& job, HttpResponse& response, uint64_t have);
    bool fetchParallel(Job& job); // false: the server ignores ranges, go single
    // Runs m_settings.connections workers over the `pending` parts until all are done or one
    // failed (parts.firstError) or the ranges stopped working (parts.rangeIgnored).
    void fetchParts(Job& job, Parts& parts, const std::vector<size_t>& pending);
    void fetchPart(Job& job, Parts& parts, size_t index);
    bool acceptPartAnswer(Job& job, Parts& parts, const HttpResponse& head, uint64_t from, uint64_t end);
    // After a failed attempt: waits (backoff, Retry-After) before the next one, or throws.
    void afterFailure(Job& job, const HttpResponse& response, bool usedDirect, int& attempts, bool progressed,
                      const CancelToken* cancel);
    void verifyAndCommit(Job& job, DownloadResult& result);

    DownloadSettings m_settings;
    DownloadSink* m_sink;
    const CancelToken* m_cancel;
    HttpClient m_client;
};

std::filesystem::path incompletePathFor(const std::filesystem::path& destination);
// Where the validator of an incomplete download is kept ("<destination>.incomplete.validator").
std::filesystem::path validatorPathFor(const std::filesystem::path& destination);

// Throws Error(Io) when `folder` (or its closest existing parent) has less than `bytes` free.
void requireFreeSpace(const std::filesystem::path& folder, uint64_t bytes, const std::string& what);

} // namespace novaq::net
