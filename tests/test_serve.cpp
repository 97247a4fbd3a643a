// The generation engine (runtime/sampler.h, runtime/generator.h) and `novaq serve`
// (serve/server.h): sampling, stop strings, incremental decoding, KV-cache reuse, and the
// OpenAI-compatible HTTP API run in-process on 127.0.0.1 (a free port), end to end with
// cpp-httplib's client, raw sockets, the CLI and the official `openai` npm client.

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/runtime/eval.h"
#include "novaq/runtime/generator.h"
#include "novaq/runtime/sampler.h"
#include "novaq/runtime/session.h"
#include "novaq/serve/server.h"
#include "novaq/text/chat_template.h"
#include "novaq/text/tokenizer.h"

#include <QProcess>
#include <QStandardPaths>
#include <QTest>

#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <httplib.h>
#include <malloc.h>
#include <mutex>
#include <netinet/in.h>
#include <random>
#include <signal.h>
#include <thread>

using namespace novaq;
using namespace novaq::test;
namespace fs = std::filesystem;
using json = nlohmann::json;

#define COMPARE_JSON(a, b)                                                                                             \
    QVERIFY2((a) == (b), qPrintable(QString::fromStdString(json(a).dump() + " != " + json(b).dump())))

namespace {

// ---- HTTP helpers ----

struct Reply {
    int status = -1; // -1: no HTTP answer (the error is in body)
    std::string body;
    httplib::Headers headers;
    json parsed() const { return json::parse(body, nullptr, false); }
    std::string errorCode() const
    {
        const json j = parsed();
        return j.contains("error") && j["error"]["code"].is_string() ? j["error"]["code"].get<std::string>() : "";
    }
};

httplib::Client clientFor(int port)
{
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(300);
    c.set_connection_timeout(30);
    return c;
}

Reply fromResult(const httplib::Result& r)
{
    if (!r)
        return {-1, "transport error " + httplib::to_string(r.error()), {}};
    return {r->status, r->body, r->headers};
}

Reply get(int port, const std::string& path, const httplib::Headers& headers = {})
{
    auto c = clientFor(port);
    return fromResult(c.Get(path.c_str(), headers));
}

Reply post(int port, const std::string& path, const std::string& body, const httplib::Headers& headers = {})
{
    auto c = clientFor(port);
    return fromResult(c.Post(path.c_str(), headers, body, "application/json"));
}

// A streamed answer: the `data:` events as JSON, whether `data: [DONE]` came.
struct Streamed {
    int status = -1;
    std::vector<json> events;
    bool done = false;
    bool cut = false; // the client hung up on purpose
    std::string raw;
    std::string text() const // the content of all chunks
    {
        std::string t;
        for (const json& e : events)
            for (const json& c : e.value("choices", json::array())) {
                if (c.contains("delta") && c["delta"].contains("content"))
                    t += c["delta"]["content"].get<std::string>();
                if (c.contains("text"))
                    t += c["text"].get<std::string>();
            }
        return t;
    }
    std::string finish() const
    {
        for (const json& e : events)
            for (const json& c : e.value("choices", json::array()))
                if (c["finish_reason"].is_string())
                    return c["finish_reason"].get<std::string>();
        return {};
    }
};

// POSTs `body` and reads the server-sent events; hangs up after `cutAfter` events (-1: never).
Streamed postStream(int port, const std::string& path, const json& body, int cutAfter = -1,
                    const httplib::Headers& headers = {})
{
    auto c = clientFor(port);
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.headers = headers;
    req.set_header("Content-Type", "application/json");
    req.body = body.dump();
    Streamed s;
    std::string buffer;
    int count = 0;
    req.response_handler = [&](const httplib::Response& r) {
        s.status = r.status;
        return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        buffer.append(data, n);
        s.raw.append(data, n);
        for (size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
            const std::string event = buffer.substr(0, end);
            buffer.erase(0, end + 2);
            if (!event.starts_with("data: "))
                continue; // a comment (": waiting ...")
            const std::string payload = event.substr(6);
            if (payload == "[DONE]")
                s.done = true;
            else
                s.events.push_back(json::parse(payload, nullptr, false));
            ++count;
        }
        if (cutAfter >= 0 && count >= cutAfter) {
            s.cut = true;
            return false;
        }
        return true;
    };
    const auto r = c.send(req);
    if (r && s.status < 0)
        s.status = r->status;
    return s;
}

// Connects, sends a whole request and hangs up without reading the answer.
void sendAndHangUp(int port, const std::string& path, const std::string& body)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
        const std::string request = "POST " + path +
                                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                    "Content-Length: " +
                                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    }
    ::close(fd);
}

// A door the server's observer hooks wait at until the test opens it.
class Gate {
public:
    void open()
    {
        std::lock_guard lock(m_mutex);
        m_open = true;
        m_cv.notify_all();
    }
    void wait()
    {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return m_open; });
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_open = false;
};

// Bytes the allocator has handed out and not had back (all arenas, mmapped blocks included).
int64_t liveHeapBytes()
{
    const struct mallinfo2 m = mallinfo2();
    return static_cast<int64_t>(m.uordblks + m.hblkhd);
}

// VmRSS of this process in KiB.
int64_t residentKiB()
{
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with("VmRSS:"))
            return std::stoll(line.substr(6));
    return -1;
}

const Tokenizer& tokenizerOfModel(const RunnableModel& m) { return tokenizerOf(m, nullptr); }

// A server on 127.0.0.1, a free port, running on its own thread while this object lives.
struct Running {
    std::unique_ptr<serve::Server> server;
    std::thread thread;
    int port = 0;
    Running(const RunnableModel& m, serve::ServerOptions options, const char* id = "kjv-llama-7m")
    {
        options.host = "127.0.0.1";
        options.port = 0;
        options.modelId = id;
        const ChatTemplate chatTemplate = chooseChatTemplate(*m.reader, m.path, std::nullopt, nullptr);
        server = std::make_unique<serve::Server>(m.model, tokenizerOfModel(m), chatTemplate, options);
        port = server->bind();
        thread = std::thread([s = server.get()] { s->run(); });
    }
    ~Running()
    {
        server->stop();
        thread.join();
    }
    bool idle() const
    {
        const serve::ServerStats s = server->stats();
        return s.active == 0 && s.queued == 0;
    }
};

json chatBody(const std::string& content, int maxTokens, double temperature = 0)
{
    return {{"model", "kjv-llama-7m"},
            {"messages", json::array({{{"role", "user"}, {"content", content}}})},
            {"max_tokens", maxTokens},
            {"temperature", temperature}};
}

json completionBody(const std::string& prompt, int maxTokens, double temperature = 0)
{
    return {{"model", "kjv-llama-7m"}, {"prompt", prompt}, {"max_tokens", maxTokens}, {"temperature", temperature}};
}

std::string contentOf(const json& answer)
{
    const json& choice = answer["choices"][0];
    return choice.contains("message") ? choice["message"]["content"].get<std::string>()
                                      : choice["text"].get<std::string>();
}

} // namespace

class TestServe : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    std::optional<RunnableModel> m_demo;  // the demo model folder (safetensors)
    std::optional<RunnableModel> m_novaq; // a .novaq file of it, made here
    fs::path m_novaqPath;

    const RunnableModel& modelNamed(const QString& name) const { return name == "novaq" ? *m_novaq : *m_demo; }

private Q_SLOTS:
    void initTestCase()
    {
        const fs::path demo = modelsDir() / "kjv-llama-7m";
        NOVAQ_REQUIRE_DATA(demo / "model.safetensors");
        m_demo.emplace(openRunnable(demo, std::nullopt));
        QVERIFY(m_demo->tokenizer);
        CompressOptions options;
        options.input = demo;
        options.output = toPath(m_dir.path()) / "kjv-llama-7m.novaq";
        options.codec = CodecSpec::preset(2, 4);
        options.attachTokenizer = true;
        compressModel(options, nullptr, nullptr);
        m_novaqPath = options.output;
        m_novaq.emplace(openRunnable(m_novaqPath, std::nullopt));
        QVERIFY(m_novaq->tokenizer);
    }

    // ---- the sampler ----

    void samplerGreedyAndSeeded()
    {
        std::mt19937 rng(7);
        std::normal_distribution<float> normal;
        std::vector<float> logits(1000);
        for (float& x : logits)
            x = normal(rng);
        logits[617] = 9; // the clear favourite
        QCOMPARE(Sampler({0.0f, 1.0f, 0, 1}).sample(logits), 617);
        QCOMPARE(Sampler({1.0f, 1.0f, 1, 5}).sample(logits), 617);  // top-k 1 is greedy
        QCOMPARE(Sampler({1.0f, 1e-6f, 0, 5}).sample(logits), 617); // a tiny nucleus is greedy
        std::vector<float> tie(8, 1.0f);
        QCOMPARE(argmaxToken(tie), 0); // the lowest id on a tie
        // The same seed gives the same draws; another seed others.
        const auto draws = [&](uint64_t seed, float topP, int topK) {
            Sampler s({1.5f, topP, topK, seed});
            std::vector<int32_t> out;
            for (int i = 0; i < 64; ++i)
                out.push_back(s.sample(logits));
            return out;
        };
        QCOMPARE(draws(42, 0.9f, 50), draws(42, 0.9f, 50));
        QVERIFY(draws(42, 0.9f, 50) != draws(43, 0.9f, 50));
        // Top-k keeps to the k most likely tokens.
        std::vector<int32_t> order(logits.size());
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
        const std::vector<int32_t> top(order.begin(), order.begin() + 5);
        for (int32_t id : draws(9, 1.0f, 5))
            QVERIFY(std::find(top.begin(), top.end(), id) != top.end());
    }

    // Frequencies follow softmax(logits / T), restricted and renormalized by top-k / top-p.
    void samplerDistribution_data()
    {
        QTest::addColumn<float>("temperature");
        QTest::addColumn<float>("topP");
        QTest::addColumn<int>("topK");
        QTest::addColumn<QVector<double>>("expected");
        // logits log(0.5), log(0.3), log(0.15), log(0.05)
        QTest::newRow("T=1") << 1.0f << 1.0f << 0 << QVector<double>{0.5, 0.3, 0.15, 0.05};
        QTest::newRow("top-k 2") << 1.0f << 1.0f << 2 << QVector<double>{0.625, 0.375, 0, 0};
        QTest::newRow("top-p 0.7") << 1.0f << 0.7f << 0 << QVector<double>{0.625, 0.375, 0, 0};
        QTest::newRow("top-p 0.9") << 1.0f << 0.9f << 0 << QVector<double>{0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0};
        // T = 0.5 squares the probabilities: 0.25, 0.09, 0.0225, 0.0025 over 0.365
        QTest::newRow("T=0.5") << 0.5f << 1.0f << 0
                               << QVector<double>{0.25 / 0.365, 0.09 / 0.365, 0.0225 / 0.365, 0.0025 / 0.365};
    }
    void samplerDistribution()
    {
        QFETCH(float, temperature);
        QFETCH(float, topP);
        QFETCH(int, topK);
        QFETCH(QVector<double>, expected);
        const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
        Sampler sampler({temperature, topP, topK, 2024});
        const int n = 40000;
        std::vector<int> counts(4);
        for (int i = 0; i < n; ++i)
            ++counts[static_cast<size_t>(sampler.sample(logits))];
        for (int v = 0; v < 4; ++v) {
            const double p = double(counts[static_cast<size_t>(v)]) / n;
            // 5 standard errors of a binomial at n = 40000 is at most 0.0125.
            QVERIFY2(std::abs(p - expected[v]) < 0.0125,
                     qPrintable(QString("token %1: %2 drawn, %3 expected").arg(v).arg(p).arg(expected[v])));
        }
    }

    void samplerRejects_data()
    {
        QTest::addColumn<float>("temperature");
        QTest::addColumn<float>("topP");
        QTest::addColumn<int>("topK");
        QTest::addColumn<QString>("named");
        QTest::newRow("negative temperature") << -0.5f << 1.0f << 0 << "temperature";
        QTest::newRow("top-p 0") << 1.0f << 0.0f << 0 << "top_p";
        QTest::newRow("top-p above 1") << 1.0f << 1.5f << 0 << "top_p";
        QTest::newRow("negative top-k") << 1.0f << 1.0f << -1 << "top_k";
    }
    void samplerRejects()
    {
        QFETCH(float, temperature);
        QFETCH(float, topP);
        QFETCH(int, topK);
        QFETCH(QString, named);
        const auto failure = failureOf([&] { Sampler({temperature, topP, topK, 1}); });
        QVERIFY(failure);
        QCOMPARE(failure->kind, ErrorKind::InvalidArgument);
        QVERIFY2(failure->message.contains(named), qPrintable(failure->message));
    }

    // ---- stop strings and incremental decoding ----

    void stopScanner_data()
    {
        QTest::addColumn<QStringList>("stops");
        QTest::addColumn<QStringList>("pieces");
        QTest::addColumn<QString>("shown");
        QTest::addColumn<bool>("stopped");
        QTest::newRow("across pieces") << QStringList{"\nUser:"} << QStringList{"Hel", "lo\nUs", "er: hi"} << "Hello"
                                       << true;
        QTest::newRow("false start released")
            << QStringList{"\nUser:"} << QStringList{"a\nU", "sa"} << "a\nUsa" << false;
        QTest::newRow("earliest of several") << QStringList{"END", "b"} << QStringList{"aab", "cEND"} << "aa" << true;
        QTest::newRow("in one piece") << QStringList{"</s>"} << QStringList{"x</s>y"} << "x" << true;
        QTest::newRow("tail held to the end") << QStringList{"###"} << QStringList{"done ##"} << "done ##" << false;
        QTest::newRow("multi-byte stop") << QStringList{"\u00e9t\u00e9"} << QStringList{"l'\u00e9", "t\u00e9 fini"}
                                         << "l'" << true;
        QTest::newRow("no stops") << QStringList{} << QStringList{"a", "b"} << "ab" << false;
    }
    void stopScanner()
    {
        QFETCH(QStringList, stops);
        QFETCH(QStringList, pieces);
        QFETCH(QString, shown);
        QFETCH(bool, stopped);
        std::vector<std::string> s;
        for (const QString& x : stops)
            s.push_back(x.toStdString());
        StopScanner scanner(s);
        std::string out;
        for (const QString& p : pieces) {
            const std::string piece = scanner.push(p.toStdString());
            // Nothing shown may end with the start of a stop string that later completes.
            out += piece;
        }
        out += scanner.flush();
        QCOMPARE(QString::fromStdString(out), shown);
        QCOMPARE(scanner.stopped(), stopped);
    }

    // The pieces add up to decode(context + ids) past decode(context), and each piece is whole
    // UTF-8 characters (never the U+FFFD of a character whose bytes have not all arrived).
    void incrementalDecoderMatchesDecode_data()
    {
        QTest::addColumn<QString>("tokenizerFile");
        QTest::newRow("sentencepiece (demo)") << "kjv-llama-7m/tokenizer.model";
        QTest::newRow("sentencepiece (stories260K)") << "stories260K/tok512.model";
        QTest::newRow("gguf llama") << "stories260K/stories260K.gguf";
        QTest::newRow("llama2.c") << "stories260K/tok512.bin";
    }
    void incrementalDecoderMatchesDecode()
    {
        QFETCH(QString, tokenizerFile);
        const fs::path file = modelsDir() / tokenizerFile.toStdString();
        NOVAQ_REQUIRE_DATA(file);
        std::unique_ptr<Tokenizer> tok;
        if (file.extension() == ".gguf")
            tok = findTokenizer(*openModel(file), file);
        else if (file.extension() == ".bin")
            tok = loadLlama2cTokenizer(file);
        else
            tok = loadSentencePiece(file);
        // Byte tokens of a multi-byte text, and random ids, after a context.
        const std::vector<int32_t> context = tok->encode("And God said, Let there be light", true);
        std::vector<std::vector<int32_t>> runs = {
            tok->encode(" \u00e9t\u00e9 \u4e2d\u6587 \U0001F600 caf\u00e9", false),
            tok->encode(" and there was light.\nAnd God saw", false)};
        std::mt19937 rng(11);
        for (int r = 0; r < 20; ++r) {
            std::vector<int32_t> ids;
            for (int i = 0; i < 90; ++i)
                ids.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(tok->vocabSize())));
            runs.push_back(ids);
        }
        for (const std::vector<int32_t>& ids : runs) {
            IncrementalDecoder decoder(*tok, context);
            std::string streamed;
            std::vector<int32_t> all = context;
            for (int32_t id : ids) {
                const std::string piece = decoder.push(id);
                streamed += piece;
                all.push_back(id);
            }
            streamed += decoder.flush();
            const std::string before = tok->decode(context), whole = tok->decode(all);
            QVERIFY(whole.starts_with(before));
            QCOMPARE(QString::fromStdString(streamed), QString::fromStdString(whole.substr(before.size())));
        }
        // A character of three byte tokens comes out whole, at its last byte.
        const std::vector<int32_t> euro = tok->encode(" \u20ac", false);
        if (euro.size() >= 3) {
            IncrementalDecoder decoder(*tok, context);
            std::vector<std::string> pieces;
            for (int32_t id : euro)
                pieces.push_back(decoder.push(id));
            for (size_t i = 0; i + 1 < pieces.size(); ++i)
                QVERIFY2(pieces[i].find("\xEF\xBF\xBD") == std::string::npos, "a half character was shown");
            QVERIFY(pieces.back().find("\u20ac") != std::string::npos ||
                    decoder.flush().find("\u20ac") != std::string::npos);
        }
    }

    // ---- the generator ----

    void generatorGreedyEqualsGenerate()
    {
        const RunnableModel& m = *m_demo;
        const PromptEncoder encoder(m.model, *m.tokenizer);
        const std::vector<int32_t> prompt = encoder.encodeText("In the beginning");
        GenerateOptions options;
        options.maxTokens = 40;
        const std::vector<int32_t> expected = generate(m.model, prompt, options);
        Generator generator(m.model, *m.tokenizer);
        GenerationParams params;
        params.maxTokens = 40;
        params.stopTokens = encoder.stopTokens({});
        std::vector<int32_t> produced;
        const GenerationResult r =
            generator.generate(prompt, params, {}, nullptr, [&](int32_t id, int64_t) { produced.push_back(id); });
        if (r.finish == FinishReason::Stop)
            produced.pop_back(); // the EOS, which generate() does not return
        QCOMPARE(produced, expected);
        std::vector<int32_t> promptText(prompt.begin() + 1, prompt.end()), all = promptText;
        all.insert(all.end(), expected.begin(), expected.end());
        QCOMPARE(QString::fromStdString(r.text),
                 QString::fromStdString(m.tokenizer->decode(all).substr(m.tokenizer->decode(promptText).size())));
    }

    // A prompt extending the previous one runs only its new tokens and gives what a fresh cache gives.
    void generatorReusesCache()
    {
        const RunnableModel& m = *m_demo;
        const PromptEncoder encoder(m.model, *m.tokenizer);
        GenerationParams params;
        params.maxTokens = 12;
        params.sampling = {0.0f, 1.0f, 0, 5}; // greedy: robust to the last bits of batched vs one-token sums
        Generator reused(m.model, *m.tokenizer, 256);
        const std::vector<int32_t> first = encoder.encodeText("And God said, Let there be light");
        const GenerationResult one = reused.generate(first, params);
        QCOMPARE(one.reusedTokens, 0);
        std::vector<int32_t> second = encoder.encodeText("And God said, Let there be light: and there was light");
        QVERIFY(std::equal(first.begin(), first.end(), second.begin()));
        const GenerationResult two = reused.generate(second, params);
        QCOMPARE(two.reusedTokens, static_cast<int64_t>(first.size()));
        Generator fresh(m.model, *m.tokenizer, 256);
        const GenerationResult three = fresh.generate(second, params);
        QCOMPARE(three.reusedTokens, 0);
        QCOMPARE(QString::fromStdString(two.text), QString::fromStdString(three.text));
        // The same prompt again: everything but its last token comes from the cache.
        const GenerationResult again = reused.generate(second, params);
        QCOMPARE(again.reusedTokens, static_cast<int64_t>(second.size()) - 1);
        QCOMPARE(QString::fromStdString(again.text), QString::fromStdString(three.text));
        reused.reset();
        QCOMPARE(reused.generate(second, params).reusedTokens, 0);
    }

    void generatorLimits()
    {
        const RunnableModel& m = *m_demo;
        const PromptEncoder encoder(m.model, *m.tokenizer);
        Generator small(m.model, *m.tokenizer, 16);
        QCOMPARE(small.contextTokens(), 16);
        const std::vector<int32_t> prompt = encoder.encodeText("In the beginning God created"); // < 16 tokens
        QVERIFY(prompt.size() < 16);
        GenerationParams params; // no max: until the context is full
        const GenerationResult r = small.generate(prompt, params);
        QCOMPARE(r.finish, FinishReason::Length);
        QCOMPARE(r.promptTokens + r.completionTokens, 17); // the last token needs no room
        // A prompt that leaves no room is refused with both lengths named.
        std::vector<int32_t> longPrompt(16, prompt[1]);
        const auto failure = failureOf([&] { small.generate(longPrompt, params); });
        QVERIFY(failure && failure->kind == ErrorKind::InvalidArgument);
        QVERIFY2(failure->message.contains("16 tokens") && failure->message.contains("context holds 16"),
                 qPrintable(failure->message));
        // Cancelling between tokens ends with what was produced.
        Generator generator(m.model, *m.tokenizer, 128);
        CancelToken cancel;
        params.stopTokens.clear();
        const GenerationResult cut = generator.generate(prompt, params, {}, &cancel, [&](int32_t, int64_t produced) {
            if (produced == 3)
                cancel.cancel();
        });
        QCOMPARE(cut.finish, FinishReason::Cancelled);
        QCOMPARE(cut.completionTokens, 3);
        // A sink that refuses more text (a client gone) stops at once.
        int calls = 0;
        const GenerationResult gone = generator.generate(prompt, params, [&](std::string_view) { return ++calls < 2; });
        QCOMPARE(gone.finish, FinishReason::Cancelled);
        QCOMPARE(calls, 2);
    }

    // A stop string taken from the greedy text: the output ends right before it.
    void generatorStopString()
    {
        const RunnableModel& m = *m_demo;
        const PromptEncoder encoder(m.model, *m.tokenizer);
        const std::vector<int32_t> prompt = encoder.encodeText("In the beginning");
        Generator generator(m.model, *m.tokenizer);
        GenerationParams params;
        params.maxTokens = 30;
        params.stopTokens.clear();
        const std::string full = generator.generate(prompt, params).text;
        const size_t cut = full.find(" and", 3);
        QVERIFY2(cut != std::string::npos, full.c_str());
        params.stop = {" and"};
        std::string streamed;
        const GenerationResult r = generator.generate(prompt, params, [&](std::string_view t) {
            streamed += t;
            return true;
        });
        QCOMPARE(r.finish, FinishReason::Stop);
        QCOMPARE(QString::fromStdString(streamed), QString::fromStdString(full.substr(0, full.find(" and"))));
        QCOMPARE(QString::fromStdString(r.text), QString::fromStdString(streamed));
    }

    // A rendered chat prompt: "<s>" and "</s>" (control tokens that SentencePiece encodes as
    // letters) become the BOS and EOS ids, one BOS at the start; the text between them is
    // encoded as text; "</s>" as a stop string stops by id.
    void promptEncoderSpecialTokens()
    {
        const RunnableModel& m = *m_demo;
        const Tokenizer& tok = *m.tokenizer;
        const PromptEncoder encoder(m.model, tok);
        const ChatTemplate llama2 = ChatTemplate::builtin("llama2");
        const std::vector<ChatMessage> messages = {{"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}};
        const std::string rendered = llama2.render(messages, true);
        QVERIFY2(rendered.starts_with("<s>[INST]") && rendered.find("</s><s>") != std::string::npos, rendered.c_str());
        const int32_t bos = tok.bos(), eos = tok.eos();
        QVERIFY(tok.encode("<s>", false) != std::vector<int32_t>{bos}); // the reason for PromptEncoder
        // Expected: split by hand at "<s>" and "</s>".
        std::vector<int32_t> expected;
        std::string_view rest = rendered;
        while (!rest.empty()) {
            const size_t open = rest.find("<s>"), close = rest.find("</s>");
            const size_t at = std::min(open, close);
            const std::vector<int32_t> text = tok.encode(rest.substr(0, at), false);
            expected.insert(expected.end(), text.begin(), text.end());
            if (at == std::string_view::npos)
                break;
            expected.push_back(at == open ? bos : eos);
            rest.remove_prefix(at + (at == open ? 3 : 4));
        }
        const std::vector<int32_t> ids = encoder.encodeChat(rendered, llama2);
        QCOMPARE(ids, expected);
        QCOMPARE(ids.front(), bos);
        QCOMPARE(std::count(ids.begin(), ids.end(), bos), 2);
        QCOMPARE(std::count(ids.begin(), ids.end(), eos), 1);
        // Without the BOS text a built-in template still gets the model's one BOS.
        const std::vector<int32_t> plain = encoder.encodeChat("User: Hi\nAssistant:", ChatTemplate::builtin("plain"));
        QCOMPARE(plain.front(), bos);
        QCOMPARE(std::count(plain.begin(), plain.end(), bos), 1);
        // Stops by id: EOS always, and a stop string that is one token's text.
        const std::vector<std::string> stops = {"</s>", "not a token"};
        const std::vector<int32_t> stopIds = encoder.stopTokens(stops);
        QVERIFY(std::find(stopIds.begin(), stopIds.end(), eos) != stopIds.end());
        QCOMPARE(encoder.stopTokens({}), std::vector<int32_t>{eos});
    }

    // ---- the server ----

    void modelsAndHealth()
    {
        Running s(*m_demo, {});
        const Reply models = get(s.port, "/v1/models");
        QCOMPARE(models.status, 200);
        const json list = models.parsed();
        QCOMPARE(QString::fromStdString(list["object"].get<std::string>()), QString("list"));
        QCOMPARE(list["data"].size(), size_t(1));
        QCOMPARE(QString::fromStdString(list["data"][0]["id"].get<std::string>()), QString("kjv-llama-7m"));
        QCOMPARE(QString::fromStdString(list["data"][0]["object"].get<std::string>()), QString("model"));
        const Reply one = get(s.port, "/v1/models/kjv-llama-7m");
        QCOMPARE(one.status, 200);
        COMPARE_JSON(one.parsed()["id"], list["data"][0]["id"]);
        const Reply health = get(s.port, "/health");
        QCOMPARE(health.status, 200);
        QCOMPARE(QString::fromStdString(health.parsed()["status"].get<std::string>()), QString("ok"));
        QCOMPARE(health.parsed()["slots"].get<int>(), 1);
    }

    void nonStreaming_data()
    {
        QTest::addColumn<QString>("path");
        QTest::newRow("chat") << "/v1/chat/completions";
        QTest::newRow("completions") << "/v1/completions";
    }
    void nonStreaming()
    {
        QFETCH(QString, path);
        const bool chat = path.contains("chat");
        Running s(*m_demo, {});
        const json body = chat ? chatBody("In the beginning", 12) : completionBody("In the beginning", 12);
        const Reply r = post(s.port, path.toStdString(), body.dump());
        QCOMPARE(r.status, 200);
        const json a = r.parsed();
        QCOMPARE(QString::fromStdString(a["object"].get<std::string>()),
                 QString(chat ? "chat.completion" : "text_completion"));
        QVERIFY(a["id"].get<std::string>().starts_with(chat ? "chatcmpl-" : "cmpl-"));
        QCOMPARE(QString::fromStdString(a["model"].get<std::string>()), QString("kjv-llama-7m"));
        const json& choice = a["choices"][0];
        if (chat)
            QCOMPARE(QString::fromStdString(choice["message"]["role"].get<std::string>()), QString("assistant"));
        const std::string finish = choice["finish_reason"].get<std::string>();
        QVERIFY2(finish == "stop" || finish == "length", finish.c_str());
        const json& usage = a["usage"];
        QVERIFY(usage["prompt_tokens"].get<int>() > 0);
        QVERIFY(usage["completion_tokens"].get<int>() >= 1 && usage["completion_tokens"].get<int>() <= 12);
        QCOMPARE(usage["total_tokens"].get<int>(),
                 usage["prompt_tokens"].get<int>() + usage["completion_tokens"].get<int>());
        if (finish == "length")
            QCOMPARE(usage["completion_tokens"].get<int>(), 12);
        // The same greedy request again gives the same text (the slot's cache reused).
        QCOMPARE(QString::fromStdString(contentOf(post(s.port, path.toStdString(), body.dump()).parsed())),
                 QString::fromStdString(contentOf(a)));
        // A stop string ends the text before it.
        const std::string text = contentOf(a);
        if (const size_t space = text.find(' ', 1); space != std::string::npos) {
            json stopped = body;
            stopped["stop"] = json::array({text.substr(space, 3)});
            const json b = post(s.port, path.toStdString(), stopped.dump()).parsed();
            QCOMPARE(QString::fromStdString(contentOf(b)), QString::fromStdString(text.substr(0, space)));
            QCOMPARE(QString::fromStdString(b["choices"][0]["finish_reason"].get<std::string>()), QString("stop"));
            // Streamed, the stop string never shows, not even its first characters.
            stopped["stream"] = true;
            const Streamed st = postStream(s.port, path.toStdString(), stopped);
            QCOMPARE(QString::fromStdString(st.text()), QString::fromStdString(text.substr(0, space)));
            QCOMPARE(QString::fromStdString(st.finish()), QString("stop"));
        }
    }

    // Streamed chunks add up to the non-streamed text; the last chunk has the finish reason, the
    // usage chunk comes when asked for, then [DONE].
    void streaming_data() { nonStreaming_data(); }
    void streaming()
    {
        QFETCH(QString, path);
        const bool chat = path.contains("chat");
        Running s(*m_demo, {});
        json body = chat ? chatBody("In the beginning", 16) : completionBody("In the beginning", 16);
        const json whole = post(s.port, path.toStdString(), body.dump()).parsed();
        body["stream"] = true;
        body["stream_options"] = {{"include_usage", true}};
        const Streamed st = postStream(s.port, path.toStdString(), body);
        QCOMPARE(st.status, 200);
        QVERIFY2(st.done, st.raw.c_str());
        QVERIFY(st.events.size() >= 3);
        for (const json& e : st.events) {
            QCOMPARE(QString::fromStdString(e["object"].get<std::string>()),
                     QString(chat ? "chat.completion.chunk" : "text_completion"));
            COMPARE_JSON(e["id"], st.events.front()["id"]);
        }
        if (chat)
            QCOMPARE(QString::fromStdString(st.events.front()["choices"][0]["delta"]["role"].get<std::string>()),
                     QString("assistant"));
        QCOMPARE(QString::fromStdString(st.text()), QString::fromStdString(contentOf(whole)));
        QCOMPARE(QString::fromStdString(st.finish()),
                 QString::fromStdString(whole["choices"][0]["finish_reason"].get<std::string>()));
        const json& last = st.events.back();
        QVERIFY(last["choices"].empty());
        COMPARE_JSON(last["usage"], whole["usage"]);
    }

    // Every error has OpenAI's shape, the right status and names what is wrong.
    void errors_data()
    {
        QTest::addColumn<QString>("method");
        QTest::addColumn<QString>("path");
        QTest::addColumn<QString>("body");
        QTest::addColumn<int>("status");
        QTest::addColumn<QString>("param");
        QTest::addColumn<QString>("mentions");
        const QString chat = "/v1/chat/completions", text = "/v1/completions";
        const QString msgs = R"("messages":[{"role":"user","content":"hi"}])";
        QTest::newRow("bad JSON") << "POST" << chat << "{\"messages\": [" << 400 << ""
                                  << "not valid JSON";
        QTest::newRow("not an object") << "POST" << chat << "[1,2]" << 400 << ""
                                       << "JSON object";
        QTest::newRow("no messages") << "POST" << chat << "{}" << 400 << "messages"
                                     << "'messages' is required";
        QTest::newRow("empty messages") << "POST" << chat << R"({"messages":[]})" << 400 << "messages"
                                        << "non-empty";
        QTest::newRow("message without role")
            << "POST" << chat << R"({"messages":[{"content":"x"}]})" << 400 << "messages[0].role"
            << "role";
        QTest::newRow("image content") << "POST" << chat
                                       << R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})" << 400
                                       << "messages[0].content"
                                       << "text content parts";
        QTest::newRow("temperature as text")
            << "POST" << chat << "{" + msgs + R"(,"temperature":"hot"})" << 400 << "temperature"
            << "must be a number";
        QTest::newRow("temperature too high")
            << "POST" << chat << "{" + msgs + R"(,"temperature":7})" << 400 << "temperature"
            << "between 0 and 2";
        QTest::newRow("top_p 0") << "POST" << chat << "{" + msgs + R"(,"top_p":0})" << 400 << "top_p"
                                 << "top_p";
        QTest::newRow("max_tokens 0") << "POST" << chat << "{" + msgs + R"(,"max_tokens":0})" << 400 << "max_tokens"
                                      << "between 1";
        QTest::newRow("max_tokens fraction")
            << "POST" << chat << "{" + msgs + R"(,"max_tokens":2.5})" << 400 << "max_tokens"
            << "integer";
        QTest::newRow("stop of numbers") << "POST" << chat << "{" + msgs + R"(,"stop":[1]})" << 400 << "stop"
                                         << "array of strings";
        QTest::newRow("n 2") << "POST" << chat << "{" + msgs + R"(,"n":2})" << 400 << "n"
                             << "'n'";
        QTest::newRow("stream not bool") << "POST" << chat << "{" + msgs + R"(,"stream":"yes"})" << 400 << "stream"
                                         << "true or false";
        QTest::newRow("unknown model") << "POST" << chat << "{" + msgs + R"(,"model":"gpt-4o"})" << 404 << "model"
                                       << "'gpt-4o' does not exist";
        QTest::newRow("no prompt") << "POST" << text << "{}" << 400 << "prompt"
                                   << "'prompt' is required";
        QTest::newRow("prompt of objects") << "POST" << text << R"({"prompt":{"a":1}})" << 400 << "prompt"
                                           << "must be a string";
        QTest::newRow("token id outside") << "POST" << text << R"({"prompt":[1, 99999]})" << 400 << "prompt"
                                          << "outside the vocabulary";
        QTest::newRow("prompt too long") << "POST" << text
                                         << QString(R"({"prompt":"%1"})").arg(QString("And God said. ").repeated(200))
                                         << 400 << "prompt"
                                         << "maximum context length is 512";
        QTest::newRow("unknown path") << "GET"
                                      << "/v1/engines"
                                      << "" << 404 << ""
                                      << "Unknown request URL";
        QTest::newRow("unknown model path") << "GET"
                                            << "/v1/models/gpt-4o"
                                            << "" << 404 << "model"
                                            << "gpt-4o";
        QTest::newRow("GET on completions") << "GET" << chat << "" << 405 << ""
                                            << "use POST";
        QTest::newRow("POST on models") << "POST"
                                        << "/v1/models"
                                        << "{}" << 405 << ""
                                        << "use GET";
        QTest::newRow("DELETE on models") << "DELETE"
                                          << "/v1/models"
                                          << "" << 405 << ""
                                          << "use GET";
    }
    void errors()
    {
        QFETCH(QString, method);
        QFETCH(QString, path);
        QFETCH(QString, body);
        QFETCH(int, status);
        QFETCH(QString, param);
        QFETCH(QString, mentions);
        Running s(*m_demo, {});
        auto c = clientFor(s.port);
        const std::string p = path.toStdString(), b = body.toStdString();
        httplib::Result result = method == "GET"    ? c.Get(p.c_str())
                                 : method == "POST" ? c.Post(p.c_str(), b, "application/json")
                                                    : c.Delete(p.c_str());
        const Reply r = fromResult(result);
        QCOMPARE(r.status, status);
        const json j = r.parsed();
        QVERIFY2(j.is_object() && j.contains("error"), r.body.c_str());
        const json& e = j["error"];
        for (const char* key : {"message", "type", "param", "code"})
            QVERIFY2(e.contains(key), key);
        QVERIFY(e["message"].is_string() && e["type"].is_string());
        QVERIFY2(QString::fromStdString(e["message"].get<std::string>()).contains(mentions), r.body.c_str());
        if (param.isEmpty())
            QVERIFY(e["param"].is_null());
        else
            QCOMPARE(QString::fromStdString(e["param"].get<std::string>()), param);
        if (status == 405)
            QVERIFY(r.headers.count("Allow") == 1);
        QVERIFY(s.idle());
    }

    void apiKey()
    {
        serve::ServerOptions options;
        options.apiKey = "sk-test-123";
        Running s(*m_demo, options);
        const std::string body = completionBody("In the beginning", 2).dump();
        const Reply none = post(s.port, "/v1/completions", body);
        QCOMPARE(none.status, 401);
        QCOMPARE(QString::fromStdString(none.errorCode()), QString("missing_api_key"));
        QCOMPARE(QString::fromStdString(none.headers.find("WWW-Authenticate")->second), QString("Bearer"));
        const Reply wrong = post(s.port, "/v1/completions", body, {{"Authorization", "Bearer sk-test-124"}});
        QCOMPARE(wrong.status, 401);
        QCOMPARE(QString::fromStdString(wrong.errorCode()), QString("invalid_api_key"));
        QCOMPARE(post(s.port, "/v1/completions", body, {{"Authorization", "sk-test-123"}}).status, 401); // no Bearer
        QCOMPARE(get(s.port, "/v1/models").status, 401);
        QCOMPARE(get(s.port, "/v1/models", {{"Authorization", "Bearer sk-test-123"}}).status, 200);
        QCOMPARE(post(s.port, "/v1/completions", body, {{"Authorization", "Bearer sk-test-123"}}).status, 200);
        QCOMPARE(get(s.port, "/health").status, 200); // for load balancers and scripts
    }

    void bodyTooLarge()
    {
        serve::ServerOptions options;
        options.maxBodyBytes = 4096;
        Running s(*m_demo, options);
        const json small = completionBody(std::string(3000, 'a'), 1);
        QVERIFY(post(s.port, "/v1/completions", small.dump()).status != 413);
        const Reply big = post(s.port, "/v1/completions", completionBody(std::string(5000, 'a'), 1).dump());
        QCOMPARE(big.status, 413);
        QVERIFY2(big.body.find("larger than 4096 bytes") != std::string::npos, big.body.c_str());
        QVERIFY(big.parsed()["error"].contains("type"));
    }

    // A streaming client that hangs up stops its generation: the token after the hang-up fails
    // to go out and nothing more is generated.
    void disconnectStopsGeneration()
    {
        Gate hungUp;
        std::atomic<int64_t> lastToken{0};
        serve::ServerOptions options;
        options.onToken = [&](int64_t produced) {
            lastToken = produced;
            if (produced == 3)
                hungUp.wait(); // the client has its first chunks and is gone before token 3 goes out
        };
        Running s(*m_demo, options);
        json body = completionBody("In the beginning", 400);
        body["stream"] = true;
        body["ignore_eos"] = true;
        const Streamed st = postStream(s.port, "/v1/completions", body, 1);
        QCOMPARE(st.status, 200);
        QVERIFY(st.cut);
        hungUp.open();
        QTRY_VERIFY_WITH_TIMEOUT(s.idle(), 60000);
        QCOMPARE(s.server->stats().disconnected, 1);
        QCOMPARE(s.server->stats().completed, 0);
        QVERIFY2(lastToken < 20, qPrintable(QString("generated %1 tokens after the hang-up").arg(lastToken.load())));
        // The slot is free again.
        QCOMPARE(post(s.port, "/v1/completions", completionBody("In the beginning", 2).dump()).status, 200);
    }

    // --parallel 1 --queue 1: one generates, one waits, the third is turned away with 503 and
    // the first two are answered.
    void queueFullIsBusy()
    {
        Gate release;
        std::atomic<int> acquired{0};
        serve::ServerOptions options;
        options.parallel = 1;
        options.queue = 1;
        options.onSlotAcquired = [&] {
            if (++acquired == 1)
                release.wait();
        };
        Running s(*m_demo, options);
        const std::string body = completionBody("In the beginning", 4).dump();
        Reply first, second;
        std::thread a([&] { first = post(s.port, "/v1/completions", body); });
        QTRY_VERIFY_WITH_TIMEOUT(s.server->stats().active == 1, 30000);
        json streamed = completionBody("In the beginning", 4);
        streamed["stream"] = true;
        Streamed secondStream;
        std::thread b([&] { secondStream = postStream(s.port, "/v1/completions", streamed); });
        QTRY_VERIFY_WITH_TIMEOUT(s.server->stats().queued == 1, 30000);
        const Reply third = post(s.port, "/v1/completions", body);
        QCOMPARE(third.status, 503);
        QCOMPARE(QString::fromStdString(third.errorCode()), QString("server_busy"));
        QCOMPARE(QString::fromStdString(third.parsed()["error"]["type"].get<std::string>()), QString("server_error"));
        QVERIFY(third.headers.count("Retry-After") == 1);
        const Reply health = get(s.port, "/health");
        QCOMPARE(health.parsed()["queued"].get<int>(), 1);
        QCOMPARE(health.parsed()["slots_processing"].get<int>(), 1);
        release.open();
        a.join();
        b.join();
        QCOMPARE(first.status, 200);
        QCOMPARE(secondStream.status, 200);
        QVERIFY(secondStream.done);
        QCOMPARE(s.server->stats().rejected, 1);
        QCOMPARE(s.server->stats().completed, 2);
    }

    // Greedy through the API is what `novaq generate` prints, for the original and a .novaq file.
    void greedyEqualsGenerate_data()
    {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QString>("prompt");
        QTest::newRow("original") << "original"
                                  << "In the beginning";
        QTest::newRow("original, verse") << "original"
                                         << "And the LORD spake unto Moses, saying,";
        QTest::newRow("novaq") << "novaq"
                               << "In the beginning";
        QTest::newRow("novaq, verse") << "novaq"
                                      << "And the LORD spake unto Moses, saying,";
    }
    void greedyEqualsGenerate()
    {
        QFETCH(QString, model);
        QFETCH(QString, prompt);
        const RunnableModel& m = modelNamed(model);
        const QString path = QString::fromStdString(m.path.string());
        QProcess cli;
        cli.setStandardInputFile(QProcess::nullDevice());
        cli.start(QStringLiteral(NOVAQ_CLI_PATH),
                  {"generate", path, "--prompt", prompt, "--max-tokens", "40", "--json", "--threads", "2"});
        QVERIFY(cli.waitForFinished(600000));
        QCOMPARE(cli.exitCode(), 0);
        const json expected = json::parse(cli.readAllStandardOutput().toStdString());
        Running s(m, {}, model == "novaq" ? "kjv-llama-7m.novaq" : "kjv-llama-7m");
        json body = completionBody(prompt.toStdString(), 40);
        body["model"] = model == "novaq" ? "kjv-llama-7m.novaq" : "kjv-llama-7m";
        const Reply r = post(s.port, "/v1/completions", body.dump());
        QCOMPARE(r.status, 200);
        QCOMPARE(QString::fromStdString(contentOf(r.parsed())),
                 QString::fromStdString(expected["results"][0]["text"].get<std::string>()));
        body["stream"] = true;
        QCOMPARE(QString::fromStdString(postStream(s.port, "/v1/completions", body).text()),
                 QString::fromStdString(expected["results"][0]["text"].get<std::string>()));
    }

    // The official OpenAI client for Node.js (tests/openai-client) lists the model, chats and
    // completes, streamed and not, and sees a 404 for an unknown model.
    void openaiNodeClient_data()
    {
        QTest::addColumn<QString>("model");
        QTest::newRow("original") << "original";
        QTest::newRow("novaq") << "novaq";
    }
    void openaiNodeClient()
    {
        QFETCH(QString, model);
        const QString node = QStandardPaths::findExecutable("node");
        if (node.isEmpty())
            NOVAQ_SKIP_MISSING_TOOL("node");
        // The openai package supports Node.js 20 and later (Debian 12's own nodejs is 18).
        QProcess version;
        version.start(node, {"--version"});
        QVERIFY(version.waitForFinished(60000));
        const QString v = QString::fromUtf8(version.readAllStandardOutput()).trimmed(); // "v20.20.2"
        if (v.mid(1).section('.', 0, 0).toInt() < 20)
            NOVAQ_SKIP_MISSING_TOOL("node 20 or later (the openai package needs it)");
        const fs::path dir = NOVAQ_OPENAI_CLIENT_DIR;
        NOVAQ_REQUIRE_DATA(dir / "client.mjs");
        if (!fs::exists(dir / "node_modules" / "openai" / "package.json"))
            NOVAQ_SKIP_MISSING_TOOL("npm package openai");
        const std::string id = model == "novaq" ? "kjv-llama-7m.novaq" : "kjv-llama-7m";
        serve::ServerOptions options;
        options.apiKey = "sk-node";
        Running s(modelNamed(model), options, id.c_str());
        QProcess client;
        client.setWorkingDirectory(QString::fromStdString(dir.string()));
        client.setStandardInputFile(QProcess::nullDevice());
        client.start(
            node, {"client.mjs", QString("http://127.0.0.1:%1/v1").arg(s.port), QString::fromStdString(id), "sk-node"});
        QVERIFY(client.waitForFinished(300000));
        const QByteArray err = client.readAllStandardError();
        QVERIFY2(client.exitCode() == 0, err.constData());
        const json out = json::parse(client.readAllStandardOutput().toStdString());
        COMPARE_JSON(out["models"], json::array({id}));
        QCOMPARE(QString::fromStdString(out["chatRole"].get<std::string>()), QString("assistant"));
        QVERIFY(!out["chat"].get<std::string>().empty());
        COMPARE_JSON(out["chatStream"], out["chat"]);
        QVERIFY(out["chatStreamChunks"].get<int>() >= 3);
        COMPARE_JSON(out["chatStreamFinish"], out["chatFinish"]);
        COMPARE_JSON(out["chatStreamUsage"], out["chatUsage"]);
        COMPARE_JSON(out["completionStream"], out["completion"]);
        QCOMPARE(out["unknownModelStatus"].get<int>(), 404);
        QCOMPARE(QString::fromStdString(out["unknownModelCode"].get<std::string>()), QString("model_not_found"));
        // What the client got is what the server answers to the same raw request.
        const Reply raw = post(s.port, "/v1/completions",
                               json{{"prompt", "In the beginning"}, {"max_tokens", 16}, {"temperature", 0}}.dump(),
                               {{"Authorization", "Bearer sk-node"}});
        QCOMPARE(out["completion"].get<std::string>(), contentOf(raw.parsed()));
    }

    // 200 requests from 8 clients at once, chat and completions, streamed or not, a quarter of
    // them cut off by the client: every request is answered or cleanly cut, the server ends idle
    // with every generation counted once, and its memory does not grow.
    void soak()
    {
        serve::ServerOptions options;
        options.parallel = 2;
        options.queue = 16; // 8 clients never fill 2 + 16: no 503 expected
        Running s(*m_demo, options);
        const auto oneRequest = [&](std::mt19937& rng, int kind) {
            const int maxTokens = 1 + static_cast<int>(rng() % 24);
            const double temperature = (rng() % 3) * 0.5;
            const bool chat = rng() % 2 == 0;
            const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
            json body = chat ? chatBody("And God said", maxTokens, temperature)
                             : completionBody("And God said", maxTokens, temperature);
            body["seed"] = rng();
            switch (kind) {
            case 0: { // answered whole
                const Reply r = post(s.port, path, body.dump());
                if (r.status != 200)
                    return std::string("status ") + std::to_string(r.status) + ": " + r.body;
                const json a = r.parsed();
                if (a["usage"]["completion_tokens"].get<int>() > maxTokens)
                    return std::string("more tokens than max_tokens");
                return std::string();
            }
            case 1: { // streamed whole
                body["stream"] = true;
                const Streamed st = postStream(s.port, path, body);
                if (st.status != 200 || !st.done || st.finish().empty())
                    return "stream " + std::to_string(st.status) + ": " + st.raw;
                return std::string();
            }
            case 2: { // streamed, the client hangs up after a few events
                body["stream"] = true;
                const Streamed st = postStream(s.port, path, body, 1 + static_cast<int>(rng() % 3));
                if (st.status != 200)
                    return "cut stream " + std::to_string(st.status) + ": " + st.raw;
                return std::string();
            }
            default: // sent whole, then the connection is closed unread
                sendAndHangUp(s.port, path, body.dump());
                return std::string();
            }
        };
        const auto handledSoFar = [&] {
            const serve::ServerStats now = s.server->stats();
            return now.completed + now.disconnected;
        };
        // `clients` threads of `perClient` requests each, 2 in 8 of them cut off by the client;
        // returns the first failure (empty: none) and counts the cut ones.
        std::atomic<int> cut{0};
        const auto runClients = [&](int clients, int perClient, unsigned seed) {
            std::vector<std::string> failures(static_cast<size_t>(clients));
            std::vector<std::thread> threads;
            for (int c = 0; c < clients; ++c)
                threads.emplace_back([&, c] {
                    std::mt19937 rng(seed + static_cast<unsigned>(c));
                    std::string& failure = failures[static_cast<size_t>(c)];
                    for (int i = 0; i < perClient && failure.empty(); ++i) {
                        const unsigned roll = rng() % 8;
                        const int kind = roll < 3 ? 0 : roll < 6 ? 1 : roll == 6 ? 2 : 3;
                        cut += kind >= 2;
                        failure = oneRequest(rng, kind);
                    }
                });
            for (std::thread& t : threads)
                t.join();
            for (const std::string& f : failures)
                if (!f.empty())
                    return f;
            return std::string();
        };
        const int clients = 8, perClient = 25, warmUp = 8 * 6;
        // Warm-up with as many clients: the server's threads, their allocator arenas and every
        // slot's buffers exist before the measurement.
        QCOMPARE(QString::fromStdString(runClients(clients, warmUp / clients, 1)), QString());
        QTRY_COMPARE_WITH_TIMEOUT(handledSoFar(), int64_t(warmUp), 60000); // a hung-up one may come late
        QTRY_VERIFY_WITH_TIMEOUT(s.idle(), 60000);
        const serve::ServerStats before = s.server->stats();
        const int64_t rssBefore = residentKiB(), heapBefore = liveHeapBytes();
        QVERIFY(rssBefore > 0);
        cut = 0;

        const auto started = std::chrono::steady_clock::now();
        const std::string failure = runClients(clients, perClient, 100);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        QVERIFY2(failure.empty(), failure.c_str());
        // Nothing lost, nothing counted twice, nothing stuck.
        QTRY_COMPARE_WITH_TIMEOUT(handledSoFar() - warmUp, int64_t(clients * perClient), 120000);
        QTRY_VERIFY_WITH_TIMEOUT(s.idle(), 120000);
        const serve::ServerStats after = s.server->stats();
        QCOMPARE(after.completed + after.disconnected - warmUp, int64_t(clients * perClient));
        QCOMPARE(after.rejected, 0);
        QVERIFY(after.disconnected - before.disconnected <= cut.load());
        const int64_t rssAfter = residentKiB(), heapAfter = liveHeapBytes();
        qInfo("soak: %d requests (%d cut by the client) in %.1f s; %lld tokens; RSS %lld KiB before, %lld KiB after; "
              "live heap %lld KiB before, %lld KiB after",
              clients * perClient, cut.load(), seconds,
              static_cast<long long>(after.generatedTokens - before.generatedTokens), static_cast<long long>(rssBefore),
              static_cast<long long>(rssAfter), static_cast<long long>(heapBefore / 1024),
              static_cast<long long>(heapAfter / 1024));
        // Flat. Live heap (what is allocated and not freed, all threads): measured +0.1 MiB over
        // 200 requests and +0.15 MiB over 800, so not per request; a leak of one response body or
        // one Job (a few KiB each) per request would pass 512 KiB. RSS also counts what the
        // allocator keeps cached for ~34 threads after their frees: measured +2..5 MiB for 200
        // and 800 requests alike; 16 MiB is far below what leaking per-request buffers would add
        // (a slot's KV cache is 3 MiB, its logits 16 KiB, 200 times).
        QVERIFY2(heapAfter - heapBefore < 512 * 1024,
                 qPrintable(QString("live heap grew from %1 to %2 bytes").arg(heapBefore).arg(heapAfter)));
        QVERIFY2(rssAfter - rssBefore < 16 * 1024,
                 qPrintable(QString("RSS grew from %1 to %2 KiB").arg(rssBefore).arg(rssAfter)));
        // Still serving.
        QCOMPARE(post(s.port, "/v1/completions", completionBody("In the beginning", 2).dump()).status, 200);
    }

    // stop() ends a running stream and returns; waiting requests get 503.
    void stopEndsGenerations()
    {
        Gate release;
        serve::ServerOptions options;
        options.onToken = [&](int64_t produced) {
            if (produced == 2)
                release.wait();
        };
        auto s = std::make_unique<Running>(*m_demo, options);
        json body = completionBody("In the beginning", 400);
        body["stream"] = true;
        body["ignore_eos"] = true;
        Streamed st;
        std::thread client([&] { st = postStream(s->port, "/v1/completions", body); });
        QTRY_VERIFY_WITH_TIMEOUT(s->server->stats().active == 1, 30000);
        s->server->stop();
        release.open();
        s.reset(); // joins run()
        client.join();
        QCOMPARE(st.status, 200);
        QVERIFY(!st.done); // cut, not finished
    }

    // A port that is taken: exit code 5 (Io) and a message naming the address and what to do.
    void cliServePortInUse()
    {
        Running s(*m_demo, {});
        QProcess serve;
        serve.setStandardInputFile(QProcess::nullDevice());
        serve.start(QStringLiteral(NOVAQ_CLI_PATH), {"serve", QString::fromStdString(m_demo->path.string()), "--port",
                                                     QString::number(s.port), "--threads", "1"});
        QVERIFY(serve.waitForFinished(120000));
        QCOMPARE(serve.exitCode(), 5);
        const QString err = QString::fromUtf8(serve.readAllStandardError());
        QVERIFY2(err.contains(QString("cannot listen on 127.0.0.1:%1").arg(s.port)) && err.contains("--port"),
                 qPrintable(err));
        QVERIFY(serve.readAllStandardOutput().isEmpty());
    }

    // `novaq serve` on a free port: prints where it listens, answers, stops on SIGTERM with 0.
    void cliServeStopsOnSigterm()
    {
        QProcess serve;
        serve.setStandardInputFile(QProcess::nullDevice());
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("NOVAQ_API_KEY", "sk-from-env");
        serve.setProcessEnvironment(env);
        serve.start(QStringLiteral(NOVAQ_CLI_PATH),
                    {"serve", QString::fromStdString(m_novaqPath.string()), "--port", "0", "--threads", "2"});
        QVERIFY(serve.waitForStarted());
        QByteArray out;
        QTRY_VERIFY_WITH_TIMEOUT((out += serve.readAllStandardOutput()).contains("listening on"), 120000);
        const QString line = QString::fromUtf8(out);
        const int at = line.indexOf("127.0.0.1:");
        QVERIFY(at >= 0);
        const int port = line.mid(at + 10).section(QRegularExpression("[^0-9]"), 0, 0).toInt();
        QVERIFY(port > 0);
        QVERIFY(line.contains("model \"kjv-llama-7m.novaq\""));
        QCOMPARE(get(port, "/health").status, 200);
        const std::string body = json{{"prompt", "In the beginning"}, {"max_tokens", 4}}.dump();
        QCOMPARE(post(port, "/v1/completions", body).status, 401); // NOVAQ_API_KEY is required
        const Reply r = post(port, "/v1/completions", body, {{"Authorization", "Bearer sk-from-env"}});
        QCOMPARE(r.status, 200);
        ::kill(static_cast<pid_t>(serve.processId()), SIGTERM);
        QVERIFY(serve.waitForFinished(60000));
        QCOMPARE(serve.exitStatus(), QProcess::NormalExit);
        QCOMPARE(serve.exitCode(), 0);
        const QByteArray err = serve.readAllStandardError();
        QVERIFY2(err.contains("stopped (1 completions"), err.constData());
        QVERIFY2(err.contains("POST /v1/completions 200") && err.contains("POST /v1/completions 401"), err.constData());
    }
};

QTEST_GUILESS_MAIN(TestServe)
#include "test_serve.moc"
