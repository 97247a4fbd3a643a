#include "novaq/net/downloader.h"

#include "novaq/io/error.h"
#include "novaq/io/json.h"
#include "novaq/io/units.h"
#include "novaq/net/sha256.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

namespace novaq::net {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kReportInterval = std::chrono::milliseconds(100);
constexpr auto kSpeedWindow = std::chrono::seconds(5);
constexpr auto kPollInterval = std::chrono::milliseconds(20);

// An open file descriptor, closed on scope exit.
class Fd {
public:
    Fd(const fs::path& path, int flags, const std::string& what)
    {
        m_fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
        if (m_fd < 0)
            throw Error(ErrorKind::Io, "cannot open " + path.string() + " to " + what + ": " + std::strerror(errno));
    }
    ~Fd()
    {
        if (m_fd >= 0)
            ::close(m_fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const noexcept { return m_fd; }

private:
    int m_fd = -1;
};

Error writeError(const fs::path& path, int err)
{
    if (err == ENOSPC || err == EDQUOT)
        return Error(ErrorKind::Io, "the disk is full while writing " + path.string() +
                                        "; free some space and run again: the download resumes where it stopped");
    return Error(ErrorKind::Io, "cannot write " + path.string() + ": " + std::strerror(err));
}

void writeAt(int fd, const fs::path& path, std::optional<uint64_t> offset, std::span<const char> data)
{
    size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = offset ? ::pwrite(fd, data.data() + done, data.size() - done, off_t(*offset + done))
                                 : ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw writeError(path, errno);
        done += size_t(n);
    }
}

uint64_t sizeOrZero(const fs::path& path)
{
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    return ec ? 0 : uint64_t(size);
}

void removeQuietly(const fs::path& path)
{
    std::error_code ec;
    fs::remove(path, ec);
}

// Sleeps up to `seconds`, returning early (by throwing) when cancelled.
void sleepCancellable(double seconds, const CancelToken* cancel)
{
    const auto until =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < until) {
        checkCancel(cancel);
        std::this_thread::sleep_for(std::min<Clock::duration>(kPollInterval, until - Clock::now()));
    }
    checkCancel(cancel);
}

// "bytes a-b/total" -> (a, total); total may be "*".
std::pair<std::optional<uint64_t>, std::optional<uint64_t>> parseContentRange(const std::optional<std::string>& value)
{
    std::pair<std::optional<uint64_t>, std::optional<uint64_t>> out;
    if (!value || !value->starts_with("bytes "))
        return out;
    const std::string v = value->substr(6);
    const size_t slash = v.find('/');
    if (slash == std::string::npos)
        return out;
    try {
        if (v[0] != '*')
            out.first = std::stoull(v.substr(0, v.find('-')));
        if (v.substr(slash + 1) != "*")
            out.second = std::stoull(v.substr(slash + 1));
    } catch (const std::exception&) {
        return {};
    }
    return out;
}

std::string statusText(const HttpResponse& r)
{
    return "HTTP " + std::to_string(r.status) + " from " + redactUrl(r.url);
}

constexpr size_t kMaxValidatorBytes = 512;

// What identifies this version of the file, for If-Range: a strong ETag, else Last-Modified
// (a weak ETag must not be used in If-Range, RFC 9110 13.1.5); empty when there is neither.
std::string validatorOf(const HttpHeaders& headers)
{
    const auto usable = [](const std::string& v) {
        return !v.empty() && v.size() <= kMaxValidatorBytes &&
               std::all_of(v.begin(), v.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
    };
    if (auto etag = headers.get("ETag"); etag && etag->starts_with("\"") && usable(*etag))
        return *etag;
    if (auto date = headers.get("Last-Modified"); date && usable(*date))
        return *date;
    return {};
}

std::string readValidator(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::string v(kMaxValidatorBytes + 1, '\0');
    in.read(v.data(), std::streamsize(v.size()));
    v.resize(in ? v.size() : size_t(std::max<std::streamsize>(0, in.gcount())));
    if (v.size() > kMaxValidatorBytes ||
        !std::all_of(v.begin(), v.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; }))
        return {}; // not ours: as if there were none
    return v;
}

void writeValidator(const fs::path& path, const std::string& validator)
{
    if (validator.empty()) {
        removeQuietly(path);
        return;
    }
    fs::path tmp = path;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << validator;
        if (!out)
            throw writeError(tmp, errno);
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec)
        throw Error(ErrorKind::Io, "cannot write " + path.string() + ": " + ec.message());
}

} // namespace

struct Downloader::Job {
    const DownloadTarget& target;
    fs::path partial;
    fs::path partsFile;
    fs::path validatorFile;
    bool pinned = false; // the SHA-256 is known: any splice is caught at the end
    std::optional<uint64_t> total;
    std::atomic<uint64_t> bytesDone{0};
    std::atomic<int> requests{0};
    std::atomic<int> failures{0};     // failed requests in all
    std::atomic<int> slowFailures{0}; // no answer, or too slow

    std::mutex mutex;      // guards everything below
    std::string directUrl; // the signed storage URL of the last cross-host redirect
    DownloadSink* sink = nullptr;
    Clock::time_point lastReport{};
    std::deque<std::pair<Clock::time_point, uint64_t>> samples;

    Job(const DownloadTarget& t, DownloadSink* s) : target(t), sink(s)
    {
        partial = incompletePathFor(t.destination);
        partsFile = partial;
        partsFile += ".parts";
        validatorFile = validatorPathFor(t.destination);
        pinned = !t.expectedSha256.empty();
        total = t.expectedSize;
    }

    void removePartial()
    {
        removeQuietly(partial);
        removeQuietly(partsFile);
        removeQuietly(validatorFile);
    }

    // A request for the file: to the signed storage URL once a redirect gave one (without the
    // target's headers, which may carry a token for the first host), else to the target.
    HttpRequest request(bool& usedDirect)
    {
        HttpRequest r;
        {
            std::lock_guard lock(mutex);
            usedDirect = !directUrl.empty();
            r.url = usedDirect ? directUrl : target.url;
        }
        if (!usedDirect)
            r.headers = target.headers;
        ++requests;
        return r;
    }

    // After an answer to request(): a redirect to another host gave the signed storage URL
    // the next requests go to directly.
    void rememberRedirect(bool usedDirect, const HttpResponse& response)
    {
        if (!usedDirect && response.redirects > 0 && hostOf(response.url) != hostOf(target.url)) {
            std::lock_guard lock(mutex);
            directUrl = response.url;
        }
    }

    void report(DownloadProgress::Stage stage, const std::string& note = {}, bool force = false)
    {
        if (!sink)
            return;
        std::lock_guard lock(mutex);
        const Clock::time_point now = Clock::now();
        if (!force && now - lastReport < kReportInterval)
            return;
        lastReport = now;
        const uint64_t done = bytesDone.load();
        samples.emplace_back(now, done);
        while (samples.size() > 2 && now - samples.front().first > kSpeedWindow)
            samples.pop_front();
        DownloadProgress p;
        p.stage = stage;
        p.label = target.label;
        p.bytesDone = done;
        p.bytesTotal = total;
        p.note = note;
        const double seconds = std::chrono::duration<double>(now - samples.front().first).count();
        if (seconds > 0.2 && done >= samples.front().second)
            p.bytesPerSecond = double(done - samples.front().second) / seconds;
        if (total && p.bytesPerSecond > 0 && *total >= done)
            p.etaSeconds = double(*total - done) / p.bytesPerSecond;
        sink->onDownload(p);
    }
};

Downloader::Downloader(DownloadSettings settings, DownloadSink* sink, const CancelToken* cancel)
    : m_settings(std::move(settings)), m_sink(sink), m_cancel(cancel), m_client(m_settings.http)
{}

fs::path incompletePathFor(const fs::path& destination)
{
    fs::path p = destination;
    p += ".incomplete";
    return p;
}

fs::path validatorPathFor(const fs::path& destination)
{
    fs::path p = incompletePathFor(destination);
    p += ".validator";
    return p;
}

void requireFreeSpace(const fs::path& folder, uint64_t bytes, const std::string& what)
{
    if (bytes == 0)
        return;
    fs::path probe = folder;
    std::error_code ec;
    while (!probe.empty() && !fs::exists(probe, ec) && probe != probe.parent_path())
        probe = probe.parent_path();
    struct statvfs info {};
    if (probe.empty() || ::statvfs(probe.c_str(), &info) != 0)
        return; // cannot tell; the write itself will report a full disk
    const uint64_t available = uint64_t(info.f_bavail) * uint64_t(info.f_frsize);
    if (available < bytes)
        throw Error(ErrorKind::Io, what + " needs " + humanBytes(bytes) + " but only " + humanBytes(available) +
                                       " is free in " + probe.string() +
                                       "; free some space or choose another folder (HF_HUB_CACHE, --download-dir)");
}

DownloadResult Downloader::download(const DownloadTarget& target)
{
    checkCancel(m_cancel);
    std::error_code ec;
    fs::create_directories(target.destination.parent_path(), ec);
    if (ec)
        throw Error(ErrorKind::Io,
                    "cannot create the folder " + target.destination.parent_path().string() + ": " + ec.message());
    Job job(target, m_sink);
    // One writer per partial file: a second process downloading the same file waits its turn
    // by failing with a message instead of interleaving bytes.
    fs::path lockPath = job.partial;
    lockPath += ".lock";
    Fd lock(lockPath, O_RDWR | O_CREAT, "lock the download");
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0)
        throw Error(ErrorKind::Io, "another download of " + target.label + " into " +
                                       target.destination.parent_path().string() +
                                       " is running; wait for it to finish (or stop it) and run again");
    struct Unlink {
        fs::path path;
        ~Unlink() { removeQuietly(path); }
    } unlinkLock{lockPath};
    DownloadResult result;
    result.path = target.destination;
    if (job.pinned || !readValidator(job.validatorFile).empty())
        result.resumedFrom = sizeOrZero(job.partial);
    job.report(DownloadProgress::Stage::Connecting, {}, true);

    const bool parallel = target.expectedSize && *target.expectedSize >= m_settings.parallelThreshold &&
                          m_settings.connections > 1 && m_settings.partSize > 0;
    if (!parallel || !fetchParallel(job))
        fetchSingle(job);
    verifyAndCommit(job, result);
    result.requests = job.requests.load();
    job.report(DownloadProgress::Stage::Finished, {}, true);
    return result;
}

// Where a single-stream attempt starts: the partial file's size, or 0 after deleting bytes
// that are not ours to resume (an unknown version of the file, or longer than it).
uint64_t Downloader::resumePoint(Job& job, const std::string& validator)
{
    uint64_t have = sizeOrZero(job.partial);
    if (have > 0 && validator.empty() && !job.pinned) {
        // Bytes of an unknown version of the file: appending could splice two versions
        // together, and nothing would notice. Start over.
        job.removePartial();
        have = 0;
    }
    if (job.total && have > *job.total) {
        job.removePartial(); // longer than the file: not ours to resume
        have = 0;
    }
    return have;
}

// The first answer of a single-stream attempt, before its first bytes are appended to `fd`:
// a 200 starts the file over (have = 0), a 206 must continue at `have`; records the validator
// a later resume must match and, without an expected size, the size the answer announces.
// False when a 206 is of another version of the file than the partial bytes (`changed`).
bool Downloader::acceptSingleAnswer(Job& job, int fd, const HttpResponse& head, uint64_t& have,
                                    const std::string& validator, bool& changed)
{
    const DownloadTarget& target = job.target;
    const std::string current = validatorOf(head.headers);
    const auto [start, total] = parseContentRange(head.headers.get("Content-Range"));
    if (head.status == 206 && have > 0 && !validator.empty() && !current.empty() && current != validator) {
        changed = true; // the server honoured Range but not If-Range
        return false;
    }
    if (head.status == 200 && have > 0) {
        // The server ignored our Range, or If-Range said the file changed: appending
        // would corrupt the file. Start over.
        if (::ftruncate(fd, 0) != 0)
            throw writeError(job.partial, errno);
        have = 0;
        job.bytesDone = 0;
    } else if (head.status == 206 && start != have) {
        throw Error(ErrorKind::Network, target.label + ": the server sent bytes from offset " +
                                            (start ? std::to_string(*start) : std::string("?")) + " when asked for " +
                                            std::to_string(have));
    }
    if (have == 0)
        writeValidator(job.validatorFile, current); // what a later resume must match
    if (!target.expectedSize) {
        if (head.status == 200) // a new body: what it announces, or nothing
            job.total = parseDecimal(head.headers.get("Content-Length").value_or(""));
        else if (total)
            job.total = total;
    }
    return true;
}

// After a single-stream attempt: true when the file is complete (a whole body, or a 416 that
// says the partial file is the whole file); else `response` says what failed, for afterFailure.
bool Downloader::singleComplete(Job& job, HttpResponse& response, uint64_t have)
{
    if (response.ok()) {
        const uint64_t now = sizeOrZero(job.partial);
        if (!job.total || now == *job.total)
            return true;
        response.failure = TransportFailure::Truncated;
        response.failureMessage =
            "the body ended at " + std::to_string(now) + " of " + std::to_string(*job.total) + " bytes";
    } else if (response.transportOk() && response.status == 416 && have > 0) {
        const auto [start, total] = parseContentRange(response.headers.get("Content-Range"));
        if (total && *total == have) {
            job.total = have; // complete already (the previous run stopped before the rename)
            return true;
        }
        job.removePartial(); // a partial file that does not fit the server's: start over
    }
    return false;
}

void Downloader::fetchSingle(Job& job)
{
    const DownloadTarget& target = job.target;
    int attempts = 0;
    bool spaceChecked = false;
    for (;;) {
        checkCancel(m_cancel);
        const std::string validator = readValidator(job.validatorFile);
        uint64_t have = resumePoint(job, validator);
        if (job.total && have == *job.total)
            return;
        if (!spaceChecked && m_settings.checkFreeSpace && job.total) {
            requireFreeSpace(job.partial.parent_path(), *job.total - have, "downloading " + target.label);
            spaceChecked = true;
        }
        job.bytesDone = have;
        const uint64_t before = have;

        Fd out(job.partial, O_WRONLY | O_CREAT | O_APPEND, "write the download");
        bool first = true;
        bool changed = false; // a 206 from another version of the file than the partial bytes
        const BodySink sink = [&](const HttpResponse& head, std::span<const char> chunk) {
            if (first) {
                first = false;
                if (!acceptSingleAnswer(job, out.get(), head, have, validator, changed))
                    return false;
            }
            if (job.total && job.bytesDone.load() + chunk.size() > *job.total) {
                // More than the file has: stop now, not when the disk is full.
                job.removePartial();
                throw Error(ErrorKind::Network,
                            target.label + ": " + redactUrl(head.url) + " sent more than the " +
                                std::to_string(*job.total) + " bytes " +
                                (target.expectedSize ? "expected" : "it announced") +
                                "; stopped and deleted the partial download. Check the URL, or try again later");
            }
            writeAt(out.get(), job.partial, std::nullopt, chunk);
            job.bytesDone += chunk.size();
            job.report(DownloadProgress::Stage::Downloading);
            return true;
        };

        bool usedDirect = false;
        HttpRequest request = job.request(usedDirect);
        if (have > 0) {
            request.rangeStart = have;
            if (!validator.empty())
                request.headers.set("If-Range", validator);
        }
        HttpResponse response;
        try {
            response = m_client.send(request, sink, m_cancel);
        } catch (const Error& e) {
            if (!changed || e.kind() != ErrorKind::Cancelled || (m_cancel && m_cancel->cancelled()))
                throw;
            response.url = request.url;
            response.failure = TransportFailure::Other;
            response.failureMessage = "the file changed on the server since the download began; starting over";
            job.removePartial();
        }
        job.rememberRedirect(usedDirect, response);
        if (singleComplete(job, response, have))
            return;
        afterFailure(job, response, usedDirect, attempts, sizeOrZero(job.partial) > before, m_cancel);
    }
}

void Downloader::afterFailure(Job& job, const HttpResponse& r, bool usedDirect, int& attempts, bool progressed,
                              const CancelToken* cancel)
{
    // A trickle is not progress: it must not reset the counter that ends the download.
    const bool slow = r.failure == TransportFailure::NoAnswer || r.failure == TransportFailure::TooSlow;
    if (progressed && !slow)
        attempts = 0;
    ++attempts;
    const int failures = ++job.failures;
    const int slowFailures = slow ? ++job.slowFailures : job.slowFailures.load();
    const DownloadTarget& target = job.target;
    std::string reason;
    double wait =
        std::min(m_settings.maxBackoffSeconds, m_settings.initialBackoffSeconds * std::pow(2.0, attempts - 1));
    const bool fromStorage = usedDirect || hostOf(r.url) != hostOf(target.url);
    if (!r.transportOk()) {
        reason = std::string(failureName(r.failure)) + " (" + r.failureMessage + ")";
        if (!isRetryable(r.failure))
            throw Error(ErrorKind::Network, target.label + ": " + reason + " from " + redactUrl(r.url) +
                                                "; not retried, the same request would fail the same way" +
                                                protocolHint(r));
    } else if ((r.status == 403 || r.status == 410) && fromStorage) {
        std::lock_guard lock(job.mutex);
        job.directUrl.clear();
        reason = "the storage link expired (HTTP " + std::to_string(r.status) + "); asking for a fresh one";
        wait = 0;
    } else if (r.status == 429 || r.status == 408 || r.status >= 500) {
        reason = statusText(r);
        if (const auto after = retryAfterSeconds(r.headers)) {
            if (*after > m_settings.maxRetryAfterSeconds)
                throw HttpStatusError(target.label + ": " + statusText(r) + " asks to wait " +
                                          std::to_string(long(*after)) + " s before retrying; try again later",
                                      r.status, r.headers, redactUrl(r.url));
            wait = *after;
        }
    } else if (r.status == 416) {
        reason = "the server refused the requested range; starting over";
    } else {
        throw HttpStatusError(target.label + ": " + statusText(r) +
                                  (r.status >= 400 && r.status < 500
                                       ? "; not retried, the server refuses this request: check the URL"
                                       : std::string()),
                              r.status, r.headers, redactUrl(r.url));
    }
    std::string limit;
    if (attempts >= m_settings.maxAttempts)
        limit = std::to_string(attempts) + " attempts";
    else if (failures >= m_settings.maxFailures)
        limit = std::to_string(failures) + " failed attempts in all (the server keeps failing part-way)";
    else if (slow && slowFailures >= m_settings.maxSlowAttempts)
        limit = std::to_string(slowFailures) + " attempts that got no answer or too slow an answer";
    if (!limit.empty()) {
        const std::string message = target.label + ": download failed after " + limit + ", last: " + reason +
                                    "; run the command again to resume (" + humanBytes(job.bytesDone.load()) + " kept)";
        if (r.transportOk())
            throw HttpStatusError(message, r.status, r.headers, redactUrl(r.url));
        throw Error(ErrorKind::Network, message);
    }
    char note[64];
    std::snprintf(note, sizeof note, "; retry %d of %d in %.1f s", attempts, m_settings.maxAttempts - 1, wait);
    job.report(DownloadProgress::Stage::Retrying, reason + note, true);
    sleepCancellable(wait, cancel);
}

// A parallel download: its parts of partSize bytes (the last one shorter), which of them are
// done (recorded in job.partsFile so that a restart redoes only the others), the validator
// every part must share, and the token that stops every worker when one fails, the user
// cancels, or the server stops honouring ranges.
struct Downloader::Parts {
    uint64_t total = 0;
    uint64_t partSize = 0;
    size_t count = 0;
    std::unique_ptr<Fd> file;
    std::mutex recordMutex; // guards `done` and the record while workers run
    std::set<size_t> done;
    std::string validator; // guarded by job.mutex while workers run
    CancelToken stop;
    std::atomic<bool> rangeIgnored{false}; // or the file changed: one stream from the start
    std::exception_ptr firstError;         // guarded by errorMutex
    std::mutex errorMutex;

    Parts(uint64_t totalBytes, uint64_t size)
        : total(totalBytes), partSize(size), count(size_t((totalBytes + size - 1) / size))
    {}

    uint64_t bytesOf(size_t i) const { return std::min(partSize, total - uint64_t(i) * partSize); }

    // Reads the record of an earlier run; false (and nothing done) unless it is of this file
    // and size and the parts on disk are provably of this version of the file.
    bool resume(const Job& job)
    {
        bool recordOk = false;
        validator = readValidator(job.validatorFile);
        try {
            std::ifstream in(job.partsFile);
            if (in && (job.pinned || !validator.empty())) {
                const nlohmann::json record = parseJsonStrict(std::string(std::istreambuf_iterator<char>(in), {}),
                                                              job.partsFile, 0, "the record");
                if (record.at("size").get<uint64_t>() == total && record.at("part_size").get<uint64_t>() == partSize &&
                    sizeOrZero(job.partial) == total) {
                    for (const auto& i : record.at("done"))
                        if (i.get<size_t>() < count)
                            done.insert(i.get<size_t>());
                    recordOk = true;
                }
            }
        } catch (const std::exception&) {
            recordOk = false; // an unreadable record: start over
        }
        if (!recordOk) {
            done.clear();
            validator.clear();
            removeQuietly(job.validatorFile);
        }
        return recordOk;
    }

    // Writes the record (through a temporary file and a rename); the caller holds recordMutex.
    void save(const Job& job) const
    {
        nlohmann::json record = {{"size", total}, {"part_size", partSize}, {"done", nlohmann::json::array()}};
        for (size_t i : done)
            record["done"].push_back(i);
        fs::path tmp = job.partsFile;
        tmp += ".tmp";
        {
            std::ofstream o(tmp, std::ios::trunc);
            o << record.dump();
            if (!o)
                throw writeError(tmp, errno);
        }
        std::error_code ec;
        fs::rename(tmp, job.partsFile, ec);
    }
};

bool Downloader::fetchParallel(Job& job)
{
    Parts parts(*job.total, m_settings.partSize);
    const bool resumed = parts.resume(job);
    uint64_t doneBytes = 0;
    for (size_t i : parts.done)
        doneBytes += parts.bytesOf(i);
    if (m_settings.checkFreeSpace)
        requireFreeSpace(job.partial.parent_path(), resumed ? parts.total - doneBytes : parts.total,
                         "downloading " + job.target.label);
    parts.file = std::make_unique<Fd>(job.partial, O_RDWR | O_CREAT | (resumed ? 0 : O_TRUNC), "write the download");
    if (!resumed && ::ftruncate(parts.file->get(), off_t(parts.total)) != 0)
        throw writeError(job.partial, errno);
    job.bytesDone = doneBytes;
    {
        std::lock_guard lock(parts.recordMutex);
        parts.save(job);
    }

    std::vector<size_t> pending;
    for (size_t i = 0; i < parts.count; ++i)
        if (!parts.done.count(i))
            pending.push_back(i);
    fetchParts(job, parts, pending);
    checkCancel(m_cancel);
    if (parts.rangeIgnored) {
        // No ranges, or the file changed under us: one stream from the start, into a fresh file.
        job.removePartial();
        job.bytesDone = 0;
        return false;
    }
    if (parts.firstError)
        std::rethrow_exception(parts.firstError);
    removeQuietly(job.partsFile);
    return true;
}

void Downloader::fetchParts(Job& job, Parts& parts, const std::vector<size_t>& pending)
{
    std::atomic<size_t> next{0};
    std::atomic<int> running{0};
    const int workers = int(std::min<size_t>(size_t(std::max(1, m_settings.connections)), pending.size()));
    std::vector<std::thread> threads;
    running = workers;
    for (int w = 0; w < workers; ++w)
        threads.emplace_back([&] {
            try {
                for (;;) {
                    const size_t k = next++;
                    if (k >= pending.size() || parts.stop.cancelled())
                        break;
                    fetchPart(job, parts, pending[k]);
                    if (parts.rangeIgnored) {
                        parts.stop.cancel();
                        break;
                    }
                    std::lock_guard lock(parts.recordMutex);
                    parts.done.insert(pending[k]);
                    parts.save(job);
                }
            } catch (...) {
                std::lock_guard lock(parts.errorMutex);
                if (!parts.firstError)
                    parts.firstError = std::current_exception();
                parts.stop.cancel();
            }
            --running;
        });
    while (running.load() > 0) {
        if (m_cancel && m_cancel->cancelled())
            parts.stop.cancel();
        std::this_thread::sleep_for(kPollInterval);
    }
    for (std::thread& t : threads)
        t.join();
}

// The first answer to a part's request: a 206 of the range asked for, of the same version of
// the file as the other parts. False when the server ignored the range or the file changed
// (parts.rangeIgnored: the download goes single); throws when the range is another one.
bool Downloader::acceptPartAnswer(Job& job, Parts& parts, const HttpResponse& head, uint64_t from, uint64_t end)
{
    if (head.status != 206) {
        parts.rangeIgnored = true; // no ranges, or If-Range said the file changed
        return false;
    }
    const auto [start, size] = parseContentRange(head.headers.get("Content-Range"));
    if (start != from || (size && *size != parts.total))
        throw Error(ErrorKind::Network, job.target.label + ": the server answered the range " + std::to_string(from) +
                                            "-" + std::to_string(end) + " with " +
                                            head.headers.get("Content-Range").value_or("no Content-Range") +
                                            " (the file has " + std::to_string(parts.total) + " bytes)");
    const std::string current = validatorOf(head.headers);
    std::lock_guard lock(job.mutex);
    if (parts.validator.empty() && !current.empty()) {
        parts.validator = current;
        writeValidator(job.validatorFile, parts.validator);
    } else if (!current.empty() && current != parts.validator) {
        parts.rangeIgnored = true; // another version of the file than the other parts
        return false;
    }
    return true;
}

void Downloader::fetchPart(Job& job, Parts& parts, size_t index)
{
    const DownloadTarget& target = job.target;
    const uint64_t start = uint64_t(index) * parts.partSize;
    const uint64_t end = start + parts.bytesOf(index) - 1;
    int attempts = 0;
    uint64_t received = 0; // of this part, kept across attempts (resume inside the part)
    for (;;) {
        checkCancel(&parts.stop);
        uint64_t thisAttempt = 0;
        bool first = true;
        const BodySink sink = [&](const HttpResponse& head, std::span<const char> chunk) {
            if (first) {
                first = false;
                if (!acceptPartAnswer(job, parts, head, start + received, end))
                    return false;
            }
            const uint64_t room = end + 1 - (start + received);
            if (chunk.size() > room)
                throw Error(ErrorKind::Network, target.label + ": the server sent more than the range " +
                                                    std::to_string(start) + "-" + std::to_string(end) +
                                                    " it was asked for; check the URL, or try again later");
            writeAt(parts.file->get(), job.partial, start + received, chunk);
            received += chunk.size();
            thisAttempt += chunk.size();
            job.bytesDone += chunk.size();
            job.report(DownloadProgress::Stage::Downloading);
            return true;
        };
        bool usedDirect = false;
        HttpRequest request = job.request(usedDirect);
        request.rangeStart = start + received;
        request.rangeEnd = end;
        {
            std::lock_guard lock(job.mutex);
            if (!parts.validator.empty())
                request.headers.set("If-Range", parts.validator);
        }
        HttpResponse response;
        try {
            response = m_client.send(request, sink, &parts.stop);
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::Cancelled && parts.rangeIgnored)
                return;
            throw;
        }
        job.rememberRedirect(usedDirect, response);
        if (response.ok()) {
            if (start + received == end + 1)
                return;
            response.failure = TransportFailure::Truncated;
            response.failureMessage = "a part ended early";
        }
        afterFailure(job, response, usedDirect, attempts, thisAttempt > 0, &parts.stop);
    }
}

void Downloader::verifyAndCommit(Job& job, DownloadResult& result)
{
    const DownloadTarget& target = job.target;
    const uint64_t size = sizeOrZero(job.partial);
    std::error_code ec;
    if (!fs::exists(job.partial, ec))
        Fd(job.partial, O_WRONLY | O_CREAT, "write the download"); // an empty file
    if (target.expectedSize && size != *target.expectedSize) {
        job.removePartial();
        throw Error(ErrorKind::Network, target.label + ": the download has " + std::to_string(size) +
                                            " bytes, expected " + std::to_string(*target.expectedSize) +
                                            "; deleted it. Run the command again to download it afresh");
    }
    if (!target.expectedSha256.empty()) {
        job.report(DownloadProgress::Stage::Verifying, {}, true);
        job.bytesDone = 0;
        const std::string actual = sha256File(job.partial, m_cancel, [&](const ProgressStep& step) {
            job.bytesDone = static_cast<uint64_t>(step.done);
            job.report(DownloadProgress::Stage::Verifying);
        });
        std::string expected = target.expectedSha256;
        std::transform(expected.begin(), expected.end(), expected.begin(),
                       [](unsigned char c) { return char(std::tolower(c)); });
        if (actual != expected) {
            job.removePartial();
            throw Error(ErrorKind::Network, target.label + ": SHA-256 mismatch (expected " + expected.substr(0, 16) +
                                                "..., got " + actual.substr(0, 16) +
                                                "...): the download is corrupt and was deleted. Run the command "
                                                "again to download it afresh");
        }
        result.sha256 = actual;
    }
    fs::rename(job.partial, target.destination, ec);
    if (ec)
        throw Error(ErrorKind::Io,
                    "cannot move the finished download to " + target.destination.string() + ": " + ec.message());
    removeQuietly(job.validatorFile);
    result.size = size;
    job.bytesDone = size;
}

} // namespace novaq::net
