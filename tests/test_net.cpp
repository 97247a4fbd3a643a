// The HTTP client and the downloader against scripted servers on 127.0.0.1: resume, a
// server that ignores Range, stalls, 429 with Retry-After, 5xx, truncated bodies, checksum
// mismatch, expired storage links, credentials kept from the storage host, parallel parts,
// cancel before the first byte and mid-file, the free-disk check; and URL downloads.
// Hostile servers: a file that changes between a cut and its resume (If-Range and the stored
// validator), a server that cuts every answer, a body past the expected size, a trickle below
// the minimum rate, a silent server, and failures a retry cannot cure (TLS to a plain port, a
// NUL in a header, a malformed status line, 4xx).

#include "http_test_server.h"
#include "test_support.h"

#include "novaq/io/error.h"
#include "novaq/net/downloader.h"
#include "novaq/net/http_client.h"
#include "novaq/net/sha256.h"
#include "novaq/sources/url_source.h"

#include <QProcess>
#include <QtTest>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

using namespace novaq;
using namespace novaq::net;
using novaq::test::HttpTestServer;
using novaq::test::ScriptedResponse;
using novaq::test::SeenRequest;
namespace fs = std::filesystem;

namespace {

std::string payload(size_t size, uint32_t seed = 7)
{
    std::string s(size, '\0');
    uint32_t x = seed;
    for (char& c : s) {
        x = x * 1664525u + 1013904223u;
        c = char(x >> 24);
    }
    return s;
}

// Fast retries and a 0.5 s stall limit, so the suite stays quick.
DownloadSettings fastSettings()
{
    DownloadSettings s;
    s.http.connectTimeoutSeconds = 2;
    s.http.stallSeconds = 0.5;
    s.initialBackoffSeconds = 0.02;
    s.maxBackoffSeconds = 0.1;
    s.maxAttempts = 4;
    s.parallelThreshold = uint64_t(1) << 40; // single stream unless a test asks
    return s;
}

// A parallel download: eight parts of 32 KiB over two connections for a 256 KiB file.
DownloadSettings parallelSettings()
{
    DownloadSettings s = fastSettings();
    s.parallelThreshold = 100000;
    s.partSize = 32768;
    s.connections = 2;
    return s;
}

std::string readFile(const fs::path& p)
{
    const auto bytes = test::readAll(p);
    return std::string(bytes.begin(), bytes.end());
}

class Recorder : public DownloadSink {
public:
    void onDownload(const DownloadProgress& p) override
    {
        ++events;
        last = p;
        if (p.stage == DownloadProgress::Stage::Retrying)
            notes.push_back(p.note);
        if (cancelAt && p.bytesDone >= cancelAt && token)
            token->cancel();
    }
    int events = 0;
    DownloadProgress last;
    std::vector<std::string> notes;
    uint64_t cancelAt = 0;
    CancelToken* token = nullptr;
};

// Runs `target` with `s` and cancels once 140,000 bytes have arrived; what the run threw.
ErrorKind cancelledMidway(const DownloadSettings& s, const DownloadTarget& target)
{
    CancelToken token;
    Recorder progress;
    progress.token = &token;
    progress.cancelAt = 140000;
    Downloader d(s, &progress, &token);
    ErrorKind kind{};
    test::failureMessage([&] { d.download(target); }, &kind);
    return kind;
}

} // namespace

class TestNet : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void helpers();
    void hashingReportsBytes();
    void protocolHints_data();
    void protocolHints();
    void fileNames_data();
    void fileNames();
    void plainDownloadVerifies();
    void cancelMidFileThenResume();
    void cancelBeforeFirstByte();
    void cancelWhileConnecting();
    void serverIgnoresRange();
    void stallIsRetried();
    void retryAfterIsHonoured();
    void serverErrorsAreRetried();
    void truncatedBodyResumes();
    void checksumMismatchDeletes();
    void sizeMismatchDeletes();
    void expiredRedirectIsRenewed();
    void tokenNeverReachesStorage();
    void givesUpWithMessage();
    void notFoundIsNotRetried();
    void parallelParts();
    void parallelFallsBackWithoutRanges();
    void parallelResumesUnfinishedParts();
    void freeSpaceChecked();
    void urlDownload();
    void urlCliEndToEnd();
    void resumeOnlyWhenUnchanged_data();
    void resumeOnlyWhenUnchanged();
    void parallelPartsOfAChangedFileStartOver();
    void urlCliDoesNotSplice();
    void cutEveryAnswerEnds();
    void bodyPastExpectedSizeStops_data();
    void bodyPastExpectedSizeStops();
    void tooSlowFails();
    void silentServerFailsSoon();
    void deterministicFailuresAreNotRetried_data();
    void deterministicFailuresAreNotRetried();
    void urlFailsAtOnce_data();
    void urlFailsAtOnce();
};

// What a request that fails the same way every time tells the user to check. The messages are
// libcurl 7.88's own (Debian 12) for each case.
void TestNet::protocolHints_data()
{
    QTest::addColumn<QString>("url");
    QTest::addColumn<QString>("curlMessage");
    QTest::addColumn<QString>("expected");
    QTest::newRow("no CA certificates (no ca-certificates package)")
        << "https://huggingface.co/x"
        << "error setting certificate verify locations:  CAfile: /etc/ssl/certs/ca-certificates.crt  CApath: "
           "/etc/ssl/certs"
        << "apt install ca-certificates";
    QTest::newRow("TLS to a plain-HTTP port") << "https://127.0.0.1:8080/f"
                                              << "OpenSSL/3.0.17: error:0A00010B:SSL routines::wrong version number"
                                              << "then write http://";
    QTest::newRow("a NUL in a header") << "http://127.0.0.1:8080/f"
                                       << "Nul byte in header"
                                       << "the server's answer is malformed";
}

void TestNet::protocolHints()
{
    QFETCH(QString, url);
    QFETCH(QString, curlMessage);
    QFETCH(QString, expected);
    HttpResponse r;
    r.url = url.toStdString();
    r.failure = TransportFailure::Protocol;
    r.failureMessage = curlMessage.toStdString();
    const std::string hint = net::protocolHint(r);
    QVERIFY2(hint.find(expected.toStdString()) != std::string::npos, hint.c_str());
}

void TestNet::helpers()
{
    QCOMPARE(hostOf("http://Example.COM:8080/a?b"), std::string("example.com:8080"));
    QCOMPARE(hostOf("https://huggingface.co/x"), std::string("huggingface.co"));
    QCOMPARE(resolveUrl("http://a.b/x/y?z", "/c?d=1"), std::string("http://a.b/c?d=1"));
    QCOMPARE(resolveUrl("http://a.b/x/y", "https://cdn.c/z"), std::string("https://cdn.c/z"));
    QCOMPARE(redactUrl("https://user:pw@cdn.c/f.bin?X-Amz-Signature=secret"), std::string("https://cdn.c/f.bin"));
    // Not a URL curl parses: said as given (not "an invalid URL"), still without secrets.
    QCOMPARE(redactUrl("example.com/model.gguf?sig=secret"), std::string("example.com/model.gguf"));
    QCOMPARE(redactUrl("user:pw@example.com/m.gguf#x"), std::string("example.com/m.gguf"));
    QCOMPARE(redactUrl("C:\\models\\m.gguf"), std::string("C:\\models\\m.gguf"));
    QCOMPARE(redactUrl(""), std::string("(an empty URL)"));
    QCOMPARE(linkTarget(R"(<https://h/api/models?cursor=abc>; rel="next")", "next"),
             std::string("https://h/api/models?cursor=abc"));
    QCOMPARE(linkTarget(R"(<https://h/p1>; rel="prev", <https://h/p3>; rel="next")", "next"),
             std::string("https://h/p3"));
    QCOMPARE(linkTarget("", "next"), std::string());
    HttpHeaders h;
    h.set("Retry-After", "7");
    QCOMPARE(*retryAfterSeconds(h), 7.0);
    h.set("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT");
    QCOMPARE(*retryAfterSeconds(h), 0.0); // a date in the past
    QCOMPARE(percentEncode("a b/c", true), std::string("a%20b/c"));
    QCOMPARE(sha256Hex(std::span<const char>("abc", 3)),
             std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    QVERIFY(isSha256Hex(std::string(64, 'a')));
    QVERIFY(!isSha256Hex(std::string(63, 'a')));
}

// sha256File reports through io/progress.h's one signature: the bytes read of the file's size,
// stage "verify" (the downloader shows them while it verifies).
void TestNet::hashingReportsBytes()
{
    QTemporaryDir dir;
    const std::filesystem::path file = test::toPath(dir.path()) / "f.bin";
    std::string body((size_t(4) << 20) + 1000, '\0'); // more than one 4 MiB read
    for (size_t i = 0; i < body.size(); ++i)
        body[i] = char(i * 7 + (i >> 12));
    test::writeAll(file, body);
    std::vector<ProgressStep> steps;
    const std::string hex = sha256File(file, nullptr, [&](const ProgressStep& s) { steps.push_back(s); });
    QCOMPARE(hex, sha256Hex(body));
    QCOMPARE(steps.size(), size_t(2));
    QCOMPARE(steps[0].done, double(size_t(4) << 20));
    for (const ProgressStep& s : steps) {
        QCOMPARE(s.total, double(body.size()));
        QCOMPARE(std::string(s.stage), std::string("verify"));
    }
    QCOMPARE(steps.back().done, double(body.size()));
    QCOMPARE(steps.back().fraction(), 1.0);
}

void TestNet::fileNames_data()
{
    QTest::addColumn<QString>("contentDisposition");
    QTest::addColumn<QString>("url");
    QTest::addColumn<QString>("expected");
    QTest::newRow("from the URL path") << ""
                                       << "http://h/models/tiny.gguf?x=1"
                                       << "tiny.gguf";
    QTest::newRow("percent-decoded") << ""
                                     << "http://h/my%20model.safetensors"
                                     << "my_model.safetensors";
    QTest::newRow("content-disposition") << R"(attachment; filename="real.gguf")"
                                         << "http://h/dl?id=3"
                                         << "real.gguf";
    QTest::newRow("rfc 5987 wins") << R"(attachment; filename="a.bin"; filename*=UTF-8''b%2Egguf)"
                                   << "http://h/x"
                                   << "b.gguf";
    QTest::newRow("traversal in the header") << R"(attachment; filename="../../etc/passwd")"
                                             << "http://h/x"
                                             << "passwd";
    QTest::newRow("backslashes") << R"(attachment; filename="..\\..\\evil.bin")"
                                 << "http://h/x"
                                 << "evil.bin";
    QTest::newRow("hidden file") << R"(attachment; filename=".bashrc")"
                                 << "http://h/x"
                                 << "bashrc";
    QTest::newRow("only dots") << R"(attachment; filename="..")"
                               << "http://h/x"
                               << "download";
    QTest::newRow("no name at all") << ""
                                    << "http://h/"
                                    << "download";
    QTest::newRow("encoded slash in the URL") << ""
                                              << "http://h/a%2F..%2F..%2Fescape.gguf"
                                              << "escape.gguf";
}

void TestNet::fileNames()
{
    QFETCH(QString, contentDisposition);
    QFETCH(QString, url);
    QFETCH(QString, expected);
    std::string name = sources::fileNameFromContentDisposition(contentDisposition.toStdString());
    if (name.empty())
        name = sources::fileNameFromUrl(url.toStdString());
    const std::string safe = sources::sanitizeFileName(name);
    QCOMPARE(QString::fromStdString(safe), expected);
    const fs::path folder = "/tmp/dl";
    QCOMPARE((folder / safe).parent_path(), folder);
}

void TestNet::plainDownloadVerifies()
{
    HttpTestServer server;
    const std::string body = payload(300000);
    server.route("/f", [&](const SeenRequest&) { return ScriptedResponse::file(body); });
    QTemporaryDir dir;
    Recorder progress;
    Downloader d(fastSettings(), &progress, nullptr);
    const fs::path dest = test::toPath(dir.path()) / "f.bin";
    const DownloadResult r = d.download({server.url() + "/f", {}, dest, body.size(), sha256Hex(body), "f.bin"});
    QCOMPARE(readFile(dest), body);
    QCOMPARE(r.sha256, sha256Hex(body));
    QVERIFY(!fs::exists(incompletePathFor(dest)));
    QCOMPARE(progress.last.stage, DownloadProgress::Stage::Finished);
    QCOMPARE(progress.last.bytesDone, uint64_t(body.size()));
    QCOMPARE(*progress.last.bytesTotal, uint64_t(body.size()));
    QCOMPARE(server.requests().front().header("accept-encoding"), std::string("identity"));
}

void TestNet::cancelMidFileThenResume()
{
    HttpTestServer server;
    const std::string body = payload(400000);
    server.route("/slow", [&](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file(body);
        r.chunkBytes = 8192;
        r.chunkDelayMs = 5;
        return r;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "m.bin";
    {
        CancelToken token;
        Recorder progress;
        progress.token = &token;
        progress.cancelAt = 100000;
        Downloader d(fastSettings(), &progress, &token);
        ErrorKind kind{};
        test::failureMessage(
            [&] {
                d.download({server.url() + "/slow", {}, dest, body.size(), sha256Hex(body), "m"});
            },
            &kind);
        QCOMPARE(kind, ErrorKind::Cancelled);
    }
    QVERIFY(!fs::exists(dest));
    const uint64_t kept = fs::file_size(incompletePathFor(dest));
    QVERIFY2(kept >= 100000 && kept < body.size(), std::to_string(kept).c_str());

    // A later run (a new process in real life) resumes from what is on disk.
    Downloader again(fastSettings(), nullptr, nullptr);
    const DownloadResult r = again.download({server.url() + "/slow", {}, dest, body.size(), sha256Hex(body), "m"});
    QCOMPARE(r.resumedFrom, kept);
    QCOMPARE(readFile(dest), body);
    QCOMPARE(server.requests().back().header("range"), "bytes=" + std::to_string(kept) + "-");
}

void TestNet::cancelBeforeFirstByte()
{
    HttpTestServer server;
    server.route("/", [](const SeenRequest&) { return ScriptedResponse::file("x"); });
    QTemporaryDir dir;
    CancelToken token;
    token.cancel();
    Downloader d(fastSettings(), nullptr, &token);
    ErrorKind kind{};
    test::failureMessage(
        [&] {
            d.download({server.url() + "/a", {}, test::toPath(dir.path()) / "a", {}, {}, "a"});
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Cancelled);
    QCOMPARE(int(server.requests().size()), 0);
}

void TestNet::cancelWhileConnecting()
{
    // A server that accepts and then says nothing for seconds: cancel must not wait for it.
    HttpTestServer server;
    server.route("/", [](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file(payload(10));
        r.cutAfter = 0;
        r.stallMs = 5000;
        return r;
    });
    QTemporaryDir dir;
    CancelToken token;
    DownloadSettings s = fastSettings();
    s.http.stallSeconds = 30;
    Downloader d(s, nullptr, &token);
    std::thread canceller([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        token.cancel();
    });
    const auto start = std::chrono::steady_clock::now();
    ErrorKind kind{};
    test::failureMessage(
        [&] {
            d.download({server.url() + "/a", {}, test::toPath(dir.path()) / "a", 10, {}, "a"});
        },
        &kind);
    canceller.join();
    QCOMPARE(kind, ErrorKind::Cancelled);
    QVERIFY(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500));
}

void TestNet::serverIgnoresRange()
{
    HttpTestServer server;
    const std::string body = payload(50000);
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r;
        r.body = body; // 200 with the whole body, whatever the Range
        return r;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "f";
    test::writeAll(incompletePathFor(dest), std::string(1000, 'x')); // a partial file from an earlier run
    Downloader d(fastSettings(), nullptr, nullptr);
    d.download({server.url() + "/f", {}, dest, body.size(), sha256Hex(body), "f"});
    QCOMPARE(readFile(dest), body); // started over instead of appending
    QCOMPARE(server.requests().front().header("range"), std::string("bytes=1000-"));
}

void TestNet::stallIsRetried()
{
    HttpTestServer server;
    const std::string body = payload(60000);
    std::atomic<int> calls{0};
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file(body);
        if (calls++ == 0) {
            r.cutAfter = 20000;
            r.stallMs = 6000; // silent, connection open
        }
        return r;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "f";
    Recorder progress;
    Downloader d(fastSettings(), &progress, nullptr);
    const auto start = std::chrono::steady_clock::now();
    d.download({server.url() + "/f", {}, dest, body.size(), sha256Hex(body), "f"});
    QVERIFY(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    QCOMPARE(readFile(dest), body);
    QCOMPARE(calls.load(), 2);
    QCOMPARE(server.requests().back().header("range"), std::string("bytes=20000-"));
    QVERIFY(!progress.notes.empty());
    QVERIFY2(progress.notes.front().find("stalled") != std::string::npos, progress.notes.front().c_str());
}

void TestNet::retryAfterIsHonoured()
{
    HttpTestServer server;
    const std::string body = payload(1000);
    std::atomic<int> calls{0};
    server.route("/f", [&](const SeenRequest&) {
        if (calls++ == 0) {
            ScriptedResponse r = ScriptedResponse::json(R"({"error":"slow down"})", 429);
            r.headers.emplace_back("Retry-After", "1");
            return r;
        }
        return ScriptedResponse::file(body);
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "f";
    Downloader d(fastSettings(), nullptr, nullptr);
    const auto start = std::chrono::steady_clock::now();
    d.download({server.url() + "/f", {}, dest, body.size(), {}, "f"});
    const auto elapsed = std::chrono::steady_clock::now() - start;
    QVERIFY(elapsed >= std::chrono::milliseconds(950)); // waited as asked, not the 20 ms backoff
    QVERIFY(elapsed < std::chrono::seconds(3));
    QCOMPARE(readFile(dest), body);
}

void TestNet::serverErrorsAreRetried()
{
    HttpTestServer server;
    const std::string body = payload(1000);
    std::atomic<int> calls{0};
    server.route("/f", [&](const SeenRequest&) {
        const int n = calls++;
        if (n < 2)
            return ScriptedResponse::json("{}", n == 0 ? 503 : 500);
        return ScriptedResponse::file(body);
    });
    QTemporaryDir dir;
    Downloader d(fastSettings(), nullptr, nullptr);
    d.download({server.url() + "/f", {}, test::toPath(dir.path()) / "f", body.size(), sha256Hex(body), "f"});
    QCOMPARE(calls.load(), 3);
}

void TestNet::truncatedBodyResumes()
{
    HttpTestServer server;
    const std::string body = payload(80000);
    std::atomic<int> calls{0};
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file(body);
        if (calls++ == 0)
            r.cutAfter = 30000; // Content-Length says 80000; the connection closes at 30000
        return r;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "f";
    Downloader d(fastSettings(), nullptr, nullptr);
    // No expected size: the client still sees the short body (Content-Length) and resumes.
    d.download({server.url() + "/f", {}, dest, {}, sha256Hex(body), "f"});
    QCOMPARE(readFile(dest), body);
    QCOMPARE(server.requests().back().header("range"), std::string("bytes=30000-"));
}

void TestNet::checksumMismatchDeletes()
{
    HttpTestServer server;
    const std::string body = payload(20000);
    server.route("/f", [&](const SeenRequest&) { return ScriptedResponse::file(payload(20000, 99)); });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "f";
    Downloader d(fastSettings(), nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            d.download({server.url() + "/f", {}, dest, body.size(), sha256Hex(body), "model.gguf"});
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    QVERIFY2(message.find("SHA-256 mismatch") != std::string::npos, message.c_str());
    QVERIFY2(message.find("model.gguf") != std::string::npos, message.c_str());
    QVERIFY(!fs::exists(dest));
    QVERIFY(!fs::exists(incompletePathFor(dest)));
}

void TestNet::sizeMismatchDeletes()
{
    HttpTestServer server;
    server.route("/f", [&](const SeenRequest&) { return ScriptedResponse::file(payload(5000)); });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "f";
    Downloader d(fastSettings(), nullptr, nullptr);
    const std::string message = test::failureMessage([&] {
        d.download({server.url() + "/f", {}, dest, 4000, {}, "f"});
    });
    QVERIFY2(message.find("4000 bytes expected") != std::string::npos, message.c_str());
    QVERIFY(!fs::exists(dest));
    QVERIFY(!fs::exists(incompletePathFor(dest)));
}

void TestNet::expiredRedirectIsRenewed()
{
    HttpTestServer hub;
    HttpTestServer storage;
    const std::string body = payload(120000);
    std::atomic<int> signatures{0};
    hub.route("/resolve", [&](const SeenRequest&) {
        return ScriptedResponse::redirect(storage.url() + "/blob?sig=" + std::to_string(++signatures));
    });
    storage.route("/blob", [&](const SeenRequest& r) {
        const bool first = r.target.ends_with("sig=1");
        const int seen = storage.count("/blob");
        if (first && seen > 1)
            return ScriptedResponse::json(R"(<Error>Request has expired</Error>)", 403);
        ScriptedResponse out = ScriptedResponse::file(body);
        if (first)
            out.cutAfter = 50000; // the connection drops; by the retry the link has expired
        return out;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "f";
    Downloader d(fastSettings(), nullptr, nullptr);
    d.download({hub.url() + "/resolve/main/f", {}, dest, body.size(), sha256Hex(body), "f"});
    QCOMPARE(readFile(dest), body);
    QCOMPARE(signatures.load(), 2); // re-resolved once, after the 403
    const auto requests = storage.requests();
    QCOMPARE(requests.size(), size_t(3));
    QCOMPARE(requests[1].target, std::string("/blob?sig=1")); // the remembered link, reused first
    QCOMPARE(requests[2].header("range"), std::string("bytes=50000-"));
}

void TestNet::tokenNeverReachesStorage()
{
    HttpTestServer hub;
    HttpTestServer storage;
    const std::string body = payload(70000);
    std::atomic<int> leaks{0};
    hub.route("/resolve", [&](const SeenRequest&) { return ScriptedResponse::redirect(storage.url() + "/blob?s=1"); });
    storage.route("/blob", [&](const SeenRequest& r) {
        if (r.hasHeader("authorization"))
            ++leaks;
        ScriptedResponse out = ScriptedResponse::file(body);
        if (storage.count("/blob") == 1)
            out.cutAfter = 10000;
        return out;
    });
    QTemporaryDir dir;
    HttpHeaders auth;
    auth.set("Authorization", "Bearer hf_secret_token");
    DownloadSettings s = fastSettings();
    Downloader d(s, nullptr, nullptr);
    d.download({hub.url() + "/resolve/x", auth, test::toPath(dir.path()) / "f", body.size(), sha256Hex(body), "f"});
    QCOMPARE(leaks.load(), 0);
    QCOMPARE(hub.requests().front().header("authorization"), std::string("Bearer hf_secret_token"));
    QCOMPARE(storage.count("/blob"), 2);
}

void TestNet::givesUpWithMessage()
{
    HttpTestServer server;
    server.route("/f", [](const SeenRequest&) { return ScriptedResponse::json("{}", 503); });
    QTemporaryDir dir;
    Downloader d(fastSettings(), nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            d.download({server.url() + "/f", {}, test::toPath(dir.path()) / "f", 10, {}, "f.gguf"});
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    QVERIFY2(message.find("after 4 attempts") != std::string::npos, message.c_str());
    QVERIFY2(message.find("HTTP 503") != std::string::npos, message.c_str());
    QCOMPARE(server.count("/f"), 4);
}

void TestNet::notFoundIsNotRetried()
{
    HttpTestServer server;
    server.route("/f", [](const SeenRequest&) { return ScriptedResponse::json("{}", 404); });
    QTemporaryDir dir;
    Downloader d(fastSettings(), nullptr, nullptr);
    try {
        d.download({server.url() + "/f", {}, test::toPath(dir.path()) / "f", {}, {}, "f"});
        QFAIL("expected an error");
    } catch (const HttpStatusError& e) {
        QCOMPARE(e.status(), 404L);
    }
    QCOMPARE(server.count("/f"), 1);
}

void TestNet::parallelParts()
{
    HttpTestServer server;
    const std::string body = payload(200000);
    std::atomic<int> failures{0};
    server.route("/f", [&](const SeenRequest& r) {
        ScriptedResponse out = ScriptedResponse::file(body);
        if (r.header("range") == "bytes=65536-98303" && failures++ == 0)
            out.cutAfter = 1000; // one part breaks once; it resumes inside the part
        return out;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "big";
    DownloadSettings s = fastSettings();
    s.parallelThreshold = 100000;
    s.partSize = 32768;
    s.connections = 3;
    Recorder progress;
    Downloader d(s, &progress, nullptr);
    d.download({server.url() + "/f", {}, dest, body.size(), sha256Hex(body), "big"});
    QCOMPARE(readFile(dest), body);
    QVERIFY(!fs::exists(fs::path(incompletePathFor(dest).string() + ".parts")));
    int ranged = 0;
    for (const SeenRequest& r : server.requests())
        ranged += r.hasHeader("range") ? 1 : 0;
    QCOMPARE(ranged, 8); // 7 parts, one of them twice
    QCOMPARE(progress.last.bytesDone, uint64_t(body.size()));
}

void TestNet::parallelFallsBackWithoutRanges()
{
    HttpTestServer server;
    const std::string body = payload(150000);
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r;
        r.body = body;
        return r;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "big";
    DownloadSettings s = fastSettings();
    s.parallelThreshold = 100000;
    s.partSize = 32768;
    s.connections = 2;
    Downloader d(s, nullptr, nullptr);
    d.download({server.url() + "/f", {}, dest, body.size(), sha256Hex(body), "big"});
    QCOMPARE(readFile(dest), body);
}

void TestNet::parallelResumesUnfinishedParts()
{
    HttpTestServer server;
    const std::string body = payload(256 * 1024);
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file(body);
        r.chunkBytes = 4096;
        r.chunkDelayMs = 20;
        return r;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "big";
    const DownloadSettings s = parallelSettings();
    QCOMPARE(cancelledMidway(s, {server.url() + "/f", {}, dest, body.size(), sha256Hex(body), "big"}),
             ErrorKind::Cancelled);
    const fs::path parts = incompletePathFor(dest).string() + ".parts";
    QVERIFY(fs::exists(parts));
    const size_t before = server.requests().size();
    QVERIFY(before < 8);
    Downloader again(s, nullptr, nullptr);
    again.download({server.url() + "/f", {}, dest, body.size(), sha256Hex(body), "big"});
    QCOMPARE(readFile(dest), body);
    QVERIFY(!fs::exists(parts));
    // Only the parts that were not finished are fetched again (8 parts in all).
    QVERIFY2(server.requests().size() - before < 8, std::to_string(server.requests().size() - before).c_str());
    QVERIFY(server.requests().size() - before >= 8 - before);
}

void TestNet::freeSpaceChecked()
{
    HttpTestServer server;
    server.route("/f", [](const SeenRequest&) { return ScriptedResponse::file("x"); });
    QTemporaryDir dir;
    Downloader d(fastSettings(), nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            d.download({server.url() + "/f", {}, test::toPath(dir.path()) / "f", uint64_t(1) << 60, {}, "huge"});
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Io);
    QVERIFY2(message.find("is free in") != std::string::npos, message.c_str());
    QCOMPARE(server.count("/"), 0); // checked before the first request
}

void TestNet::urlDownload()
{
    HttpTestServer server;
    const std::string body = payload(30000);
    server.route("/dl", [&](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file(body);
        r.headers.emplace_back("Content-Disposition", R"(attachment; filename="../../../outside.gguf")");
        return r;
    });
    server.route("/missing", [](const SeenRequest&) { return ScriptedResponse::json("{}", 404); });
    QTemporaryDir dir;
    const fs::path folder = test::toPath(dir.path()) / "downloads";
    const sources::UrlDownload first =
        sources::downloadUrl(server.url() + "/dl?id=1", folder, fastSettings(), nullptr, nullptr);
    QCOMPARE(first.file, folder / "outside.gguf");
    QCOMPARE(readFile(first.file), body);
    QVERIFY(!first.reused);
    const int before = server.count("/dl");
    const sources::UrlDownload second =
        sources::downloadUrl(server.url() + "/dl?id=1", folder, fastSettings(), nullptr, nullptr);
    QVERIFY(second.reused);
    QCOMPARE(server.count("/dl"), before + 1); // only the HEAD

    ErrorKind kind{};
    const std::string missing = test::failureMessage(
        [&] { sources::downloadUrl(server.url() + "/missing/x.gguf", folder, fastSettings(), nullptr, nullptr); },
        &kind);
    QCOMPARE(kind, ErrorKind::InvalidArgument);
    QVERIFY2(missing.find("does not exist") != std::string::npos, missing.c_str());
    const std::string ftp = test::failureMessage(
        [&] { sources::downloadUrl("ftp://h/x.gguf", folder, fastSettings(), nullptr, nullptr); }, &kind);
    QCOMPARE(kind, ErrorKind::InvalidArgument);
}

void TestNet::urlCliEndToEnd()
{
    // A small safetensors model behind a URL whose path says nothing about the format.
    const auto values = test::gaussian(64 * 96, 17);
    const std::string data(reinterpret_cast<const char*>(values.data()), values.size() * 4);
    const std::string model =
        test::makeSafetensors(R"({"w.weight":{"dtype":"F32","shape":[64,96],"data_offsets":[0,24576]}})", data);
    HttpTestServer server;
    server.route("/get", [&](const SeenRequest&) { return ScriptedResponse::file(model); });
    QTemporaryDir dir;
    QProcess p;
    p.setStandardInputFile(QProcess::nullDevice());
    p.start(NOVAQ_CLI_PATH,
            {"url", QString::fromStdString(server.url() + "/get/weights-v2?token=abc"), "--download-dir",
             dir.path() + "/dl", "--output", dir.path() + "/w.novaq", "--threads", "1"});
    QVERIFY(p.waitForFinished(60000));
    const QString err = QString::fromUtf8(p.readAllStandardError());
    QVERIFY2(p.exitCode() == 0, qPrintable(err));
    QVERIFY(QFileInfo::exists(dir.path() + "/w.novaq"));
    QVERIFY(QFileInfo::exists(dir.path() + "/dl/weights-v2"));
    QVERIFY2(err.contains("safetensors"), qPrintable(err)); // recognized by content
    QVERIFY2(!err.contains("token=abc"), qPrintable(err));  // the query (often a signature) is not printed
}

// Version A of a file is cut at 30000 bytes; by the resume the server may hold version B of
// the same size. Only an unchanged file may be resumed; anything else starts over.
void TestNet::resumeOnlyWhenUnchanged_data()
{
    QTest::addColumn<QString>("validator"); // what the server sends: etag, last-modified, none
    QTest::addColumn<bool>("changed");
    QTest::addColumn<bool>("honourIfRange");
    QTest::addColumn<int>("requests");
    QTest::addColumn<bool>("resumed"); // the second request asks for a range

    QTest::newRow("unchanged, ETag: resumed") << "etag" << false << true << 2 << true;
    QTest::newRow("unchanged, Last-Modified: resumed") << "last-modified" << false << true << 2 << true;
    QTest::newRow("changed, ETag, If-Range honoured: whole new file") << "etag" << true << true << 2 << true;
    QTest::newRow("changed, Last-Modified, If-Range honoured") << "last-modified" << true << true << 2 << true;
    // The server honours Range but ignores If-Range: the 206's ETag gives it away.
    QTest::newRow("changed, If-Range ignored: 206 of another ETag") << "etag" << true << false << 3 << true;
    // Nothing identifies the version: the partial bytes are not resumed at all.
    QTest::newRow("changed, no validator: not resumed") << "none" << true << true << 2 << false;
    QTest::newRow("unchanged, no validator: not resumed") << "none" << false << true << 2 << false;
}

void TestNet::resumeOnlyWhenUnchanged()
{
    QFETCH(QString, validator);
    QFETCH(bool, changed);
    QFETCH(bool, honourIfRange);
    QFETCH(int, requests);
    QFETCH(bool, resumed);
    const std::string a = payload(80000, 1);
    const std::string b = changed ? payload(80000, 2) : a;
    HttpTestServer server;
    std::atomic<int> calls{0};
    server.route("/f", [&](const SeenRequest&) {
        const bool first = calls++ == 0;
        ScriptedResponse r;
        r.body = first ? a : b;
        r.honourRange = true;
        r.honourIfRange = honourIfRange;
        if (validator == "etag")
            r.headers.emplace_back("ETag", first ? "\"version-a\"" : (changed ? "\"version-b\"" : "\"version-a\""));
        else if (validator == "last-modified")
            r.headers.emplace_back("Last-Modified", first || !changed ? "Tue, 01 Dec 2026 10:00:00 GMT"
                                                                      : "Fri, 04 Dec 2026 18:30:00 GMT");
        if (first)
            r.cutAfter = 30000;
        return r;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "f";
    Downloader d(fastSettings(), nullptr, nullptr);
    // As `novaq url` downloads: a size from HEAD, no checksum.
    d.download({server.url() + "/f", {}, dest, b.size(), {}, "f"});
    QVERIFY2(readFile(dest) == b, "the download is not the server's current file");
    QVERIFY(!fs::exists(incompletePathFor(dest)));
    QVERIFY(!fs::exists(validatorPathFor(dest)));
    const auto seen = server.requests();
    QCOMPARE(int(seen.size()), requests);
    QCOMPARE(seen[1].hasHeader("range"), resumed);
    if (resumed)
        QCOMPARE(seen[1].header("if-range"),
                 validator == "etag" ? std::string("\"version-a\"") : std::string("Tue, 01 Dec 2026 10:00:00 GMT"));
    if (requests == 3)
        QVERIFY(!seen[2].hasHeader("range"));
}

void TestNet::parallelPartsOfAChangedFileStartOver()
{
    const std::string a = payload(256 * 1024, 3);
    const std::string b = payload(256 * 1024, 4);
    std::atomic<bool> changed{false};
    HttpTestServer server;
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file(changed ? b : a);
        r.chunkBytes = 4096;
        r.chunkDelayMs = changed ? 0 : 20;
        return r;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "big";
    const DownloadSettings s = parallelSettings();
    QCOMPARE(cancelledMidway(s, {server.url() + "/f", {}, dest, a.size(), {}, "big"}), ErrorKind::Cancelled);
    QVERIFY(fs::exists(validatorPathFor(dest)));
    changed = true;
    Downloader again(s, nullptr, nullptr);
    again.download({server.url() + "/f", {}, dest, b.size(), {}, "big"});
    QVERIFY2(readFile(dest) == b, "parts of two versions of the file were spliced");
    QVERIFY(!fs::exists(validatorPathFor(dest)));
}

void TestNet::urlCliDoesNotSplice()
{
    // `novaq url` end to end: the model changes between a cut and the resume; what is
    // downloaded and compressed is the new model, whole.
    const auto weights = [](uint64_t seed) {
        const auto values = test::gaussian(64 * 96, seed);
        const std::string data(reinterpret_cast<const char*>(values.data()), values.size() * 4);
        return test::makeSafetensors(R"({"w.weight":{"dtype":"F32","shape":[64,96],"data_offsets":[0,24576]}})", data);
    };
    const std::string a = weights(1);
    const std::string b = weights(2);
    HttpTestServer server;
    server.route("/get", [&](const SeenRequest& r) {
        if (r.method == "HEAD" || server.count("/get") == 2) {
            ScriptedResponse out = ScriptedResponse::file(a);
            out.cutAfter = 10000;
            return out;
        }
        return ScriptedResponse::file(b);
    });
    QTemporaryDir dir;
    QProcess p;
    p.setStandardInputFile(QProcess::nullDevice());
    p.start(NOVAQ_CLI_PATH, {"url", QString::fromStdString(server.url() + "/get/w.safetensors"), "--download-dir",
                             dir.path() + "/dl", "--output", dir.path() + "/w.novaq", "--threads", "1"});
    QVERIFY(p.waitForFinished(60000));
    const QString err = QString::fromUtf8(p.readAllStandardError());
    QVERIFY2(p.exitCode() == 0, qPrintable(err));
    QVERIFY2(readFile(test::toPath(dir.path()) / "dl" / "w.safetensors") == b, qPrintable(err));
}

void TestNet::cutEveryAnswerEnds()
{
    // Ignores Range and closes every answer a little later than the one before: the file
    // grows each time, so only a bound on all failures ends it.
    HttpTestServer server;
    const std::string body = payload(200000);
    std::atomic<int> calls{0};
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r;
        r.body = body;
        r.cutAfter = size_t(1000) * size_t(++calls);
        return r;
    });
    QTemporaryDir dir;
    DownloadSettings s = fastSettings();
    s.maxFailures = 6;
    Downloader d(s, nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            d.download({server.url() + "/f", {}, test::toPath(dir.path()) / "f", body.size(), sha256Hex(body), "f"});
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    QVERIFY2(message.find("6 failed attempts in all") != std::string::npos, message.c_str());
    QCOMPARE(server.count("/f"), 6);
}

void TestNet::bodyPastExpectedSizeStops_data()
{
    QTest::addColumn<bool>("contentLength");
    QTest::addColumn<bool>("expectedByCaller"); // else announced by Content-Range
    QTest::newRow("expected size, body with a larger Content-Length") << true << true;
    QTest::newRow("expected size, body until the connection closes") << false << true;
    QTest::newRow("Content-Range total, 206 body until the connection closes") << false << false;
}

void TestNet::bodyPastExpectedSizeStops()
{
    QFETCH(bool, contentLength);
    QFETCH(bool, expectedByCaller);
    const std::string endless = payload(size_t(48) << 20);
    HttpTestServer server;
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r;
        r.body = endless;
        r.sendContentLength = contentLength;
        if (!expectedByCaller) {
            r.status = 206;
            r.headers.emplace_back("Content-Range", "bytes 1000-1999/2000");
            r.headers.emplace_back("ETag", "\"v\"");
        }
        return r;
    });
    QTemporaryDir dir;
    const fs::path dest = test::toPath(dir.path()) / "f";
    if (!expectedByCaller) { // a resumable partial file: the request asks for bytes 1000-
        test::writeAll(incompletePathFor(dest), std::string(1000, 'x'));
        test::writeAll(validatorPathFor(dest), std::string("\"v\""));
    }
    Downloader d(fastSettings(), nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            d.download({server.url() + "/f",
                        {},
                        dest,
                        expectedByCaller ? std::optional<uint64_t>(1000) : std::nullopt,
                        {},
                        "f.gguf"});
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    const std::string limit = expectedByCaller ? "more than the 1000 bytes expected" : "more than the 2000 bytes";
    QVERIFY2(message.find(limit) != std::string::npos, message.c_str());
    QVERIFY(!fs::exists(incompletePathFor(dest)));
    QVERIFY(!fs::exists(dest));
    // Stopped at once, not after the whole body (socket buffers take a few MiB at most).
    QVERIFY2(server.bodyBytesSent() < endless.size() / 2, std::to_string(server.bodyBytesSent()).c_str());
    QCOMPARE(server.count("/f"), 1);
}

void TestNet::tooSlowFails()
{
    // 100 bytes every 20 ms: never a stall, but far below the minimum rate.
    HttpTestServer server;
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file(payload(400000));
        r.chunkBytes = 100;
        r.chunkDelayMs = 20;
        return r;
    });
    QTemporaryDir dir;
    DownloadSettings s = fastSettings();
    s.http.minBytesPerSecond = 50000;
    s.http.minRateWindowSeconds = 0.5;
    Downloader d(s, nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            d.download({server.url() + "/f", {}, test::toPath(dir.path()) / "f", 400000, {}, "f"});
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    QVERIFY2(message.find("below the minimum of 50000 bytes/s") != std::string::npos, message.c_str());
    QCOMPARE(server.count("/f"), s.maxSlowAttempts);
}

void TestNet::silentServerFailsSoon()
{
    // Accepts, reads the request, says nothing.
    HttpTestServer server;
    server.route("/f", [](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file("x");
        r.silentMs = 20000;
        return r;
    });
    QTemporaryDir dir;
    DownloadSettings s = fastSettings();
    s.http.stallSeconds = 30;
    s.http.firstByteSeconds = 0.3;
    Downloader d(s, nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            d.download({server.url() + "/f", {}, test::toPath(dir.path()) / "f", {}, {}, "f"});
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    QVERIFY2(message.find("no answer within") != std::string::npos, message.c_str());
    QCOMPARE(server.count("/f"), s.maxSlowAttempts);
}

void TestNet::deterministicFailuresAreNotRetried_data()
{
    QTest::addColumn<QString>("scheme");
    QTest::addColumn<QByteArray>("rawHead"); // empty: a normal head with `status`
    QTest::addColumn<int>("status");
    QTest::addColumn<QString>("expected");
    QTest::newRow("TLS to a plain-HTTP port") << "https" << QByteArray() << 200 << "write http://";
    static const char kNulHead[] = "HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 5\r\n\r\n";
    QTest::newRow("NUL in a header") << "http" << QByteArray(kNulHead, sizeof kNulHead - 1) << 200 << "not retried";
    QTest::newRow("malformed status line")
        << "http" << QByteArray("HTTP/1.1 2x0 OK\r\nContent-Length: 5\r\n\r\n") << 200 << "not retried";
    QTest::newRow("no HTTP at all") << "http" << QByteArray("SSH-2.0-OpenSSH_9.2\r\n\r\n") << 200 << "not retried";
    QTest::newRow("HTTP 400") << "http" << QByteArray() << 400 << "HTTP 400";
    QTest::newRow("HTTP 451") << "http" << QByteArray() << 451 << "HTTP 451";
}

void TestNet::deterministicFailuresAreNotRetried()
{
    QFETCH(QString, scheme);
    QFETCH(QByteArray, rawHead);
    QFETCH(int, status);
    QFETCH(QString, expected);
    HttpTestServer server;
    server.route("/f", [&](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::json("hello", status);
        r.rawHead = rawHead.toStdString();
        return r;
    });
    QTemporaryDir dir;
    const std::string url = scheme.toStdString() + "://127.0.0.1:" + std::to_string(server.port()) + "/f";
    Recorder progress;
    Downloader d(fastSettings(), &progress, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            d.download({url, {}, test::toPath(dir.path()) / "f", {}, {}, "f.gguf"});
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    QVERIFY2(message.find(expected.toStdString()) != std::string::npos, message.c_str());
    QVERIFY2(message.find("f.gguf") != std::string::npos, message.c_str());
    QCOMPARE(server.count("/f") + server.tlsHellos(), 1);
    QVERIFY(progress.notes.empty()); // no retry was announced
}

void TestNet::urlFailsAtOnce_data()
{
    QTest::addColumn<QString>("scheme");
    QTest::addColumn<QString>("expected");
    QTest::newRow("silent server") << "http"
                                   << "no answer within";
    QTest::newRow("TLS to a plain-HTTP port") << "https"
                                              << "write http://";
}

void TestNet::urlFailsAtOnce()
{
    // `novaq url` asks with HEAD first: when that gets no answer, or no HTTP, the download
    // would fail the same way, so it is not tried.
    QFETCH(QString, scheme);
    QFETCH(QString, expected);
    HttpTestServer server;
    server.route("/f", [](const SeenRequest&) {
        ScriptedResponse r = ScriptedResponse::file(payload(1000));
        r.silentMs = 20000;
        return r;
    });
    QTemporaryDir dir;
    DownloadSettings s = fastSettings();
    s.http.firstByteSeconds = 0.3;
    const std::string url = scheme.toStdString() + "://127.0.0.1:" + std::to_string(server.port()) + "/f.gguf";
    ErrorKind kind{};
    const std::string message =
        test::failureMessage([&] { sources::downloadUrl(url, test::toPath(dir.path()), s, nullptr, nullptr); }, &kind);
    QCOMPARE(kind, ErrorKind::Network);
    QVERIFY2(message.find(expected.toStdString()) != std::string::npos, message.c_str());
    QCOMPARE(server.count("/f") + server.tlsHellos(), 1);
}

QTEST_GUILESS_MAIN(TestNet)
#include "test_net.moc"
