// `novaq eval --protocol llama.cpp`: the same perplexity as llama.cpp's llama-perplexity.

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/runtime/eval.h"
#include "novaq/runtime/llama.h"
#include "novaq/runtime/session.h"

#include <QTest>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

using namespace novaq;
using namespace novaq::test;
namespace fs = std::filesystem;

namespace {

fs::path architecturesDir() { return testDataDir() / "architectures"; }

// perplexity.json names files from the repository root ("tests/data/..."): under testDataDir().
fs::path dataFile(const std::string& repoPath)
{
    const std::string prefix = "tests/data/";
    if (repoPath.rfind(prefix, 0) != 0)
        throw std::runtime_error("not under tests/data: " + repoPath);
    return testDataDir() / repoPath.substr(prefix.size());
}

nlohmann::json readJson(const fs::path& path)
{
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

// log p(target) under a row of logits, in double.
double logProb(const float* logits, int64_t n, int32_t target)
{
    double maxv = logits[0];
    for (int64_t i = 1; i < n; ++i)
        maxv = std::max(maxv, double(logits[i]));
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
        sum += std::exp(double(logits[i]) - maxv);
    return double(logits[target]) - maxv - std::log(sum);
}

} // namespace

class TestEvalProtocol : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // What llama-perplexity printed (tests/data/architectures/perplexity.json, written by
    // tools/arch-fixtures/regenerate.sh), within 0.1%, with the same chunk and target counts.
    void matchesLlamaPerplexity_data()
    {
        QTest::addColumn<int>("run");
        const fs::path path = architecturesDir() / "perplexity.json";
        QVERIFY2(fs::exists(path), qPrintable("missing test data " + QString::fromStdString(path.string())));
        const nlohmann::json doc = readJson(path);
        for (size_t i = 0; i < doc.at("runs").size(); ++i)
            QTest::newRow(doc["runs"][i].at("model").get<std::string>().c_str()) << int(i);
    }

    void matchesLlamaPerplexity()
    {
        QFETCH(int, run);
        const nlohmann::json doc = readJson(architecturesDir() / "perplexity.json");
        const nlohmann::json& r = doc.at("runs").at(size_t(run));
        const fs::path model = dataFile(r.at("model").get<std::string>());
        const fs::path text = dataFile(doc.at("text").get<std::string>());
        NOVAQ_REQUIRE_DATA(model);
        NOVAQ_REQUIRE_DATA(text);
        const int ctx = r.at("n_ctx").get<int>();
        const int chunks = r.at("chunks").get<int>();
        const double expected = r.at("perplexity").get<double>();

        EvalRequest request;
        request.model = model;
        request.text = text;
        request.options.ctx = ctx;
        request.options.protocol = EvalProtocol::LlamaCpp;
        request.maxTokens = int64_t(chunks) * ctx; // llama-perplexity --chunks
        const EvalReport report = evaluateFiles(request);
        QCOMPARE(report.result.windows, int64_t(chunks));
        QCOMPARE(report.result.scored, int64_t(chunks) * (ctx - 1 - ctx / 2));
        const double ppl = report.result.perplexity;
        QVERIFY2(
            std::abs(ppl - expected) / expected < 1e-3,
            qPrintable(QString("perplexity %1, llama-perplexity %2").arg(ppl, 0, 'g', 10).arg(expected, 0, 'g', 10)));
    }

    // The protocol itself, from the runtime's forward pass on each chunk by hand: BOS written
    // over the first token of every chunk, only positions ctx/2 .. ctx-2 scored, a last partial
    // chunk dropped; and today's protocol unchanged beside it (every target of every window).
    void scoresSecondHalfOfChunks()
    {
        const fs::path path = modelsDir() / "stories260K" / "stories260K.gguf";
        NOVAQ_REQUIRE_DATA(path);
        const auto reader = openModel(path);
        const LlamaModel model = loadLlama(*reader);
        const int64_t V = model.config.vocab;
        const int N = 16;
        std::vector<int32_t> tokens;
        for (int i = 0; i < 3 * N + 5; ++i) // three chunks and a partial one
            tokens.push_back(3 + (i * 37) % int(V - 3));

        EvalOptions options;
        options.ctx = N;
        options.protocol = EvalProtocol::LlamaCpp;
        options.bos = 1;
        const EvalResult got = evaluate(model, nullptr, tokens, options);

        double nll = 0;
        int64_t scored = 0;
        for (int64_t c = 0; c < 3; ++c) {
            std::vector<int32_t> chunk(tokens.begin() + c * N, tokens.begin() + (c + 1) * N);
            chunk[0] = 1;
            std::vector<float> logits(size_t(N * V));
            KvCache cache(model.config, N);
            forward(model, cache, chunk, logits.data());
            for (int64_t t = N / 2; t <= N - 2; ++t, ++scored)
                nll -= logProb(logits.data() + t * V, V, tokens[size_t(c * N + t + 1)]);
        }
        QCOMPARE(got.windows, int64_t(3));
        QCOMPARE(got.scored, scored);
        QVERIFY2(std::abs(got.meanNll - nll / double(scored)) < 1e-9 * std::abs(nll),
                 qPrintable(QString("mean NLL %1, by hand %2").arg(got.meanNll).arg(nll / double(scored))));

        // Without a BOS id the chunks keep their own first token: a different figure.
        options.bos = -1;
        QVERIFY(std::abs(evaluate(model, nullptr, tokens, options).meanNll - got.meanNll) > 1e-6);

        // Today's protocol on the same tokens: back-to-back windows, all targets.
        EvalOptions novaq;
        novaq.ctx = N;
        const EvalResult all = evaluate(model, nullptr, tokens, novaq);
        QCOMPARE(all.windows, int64_t(3));
        QCOMPARE(all.scored, int64_t(3 * N));
    }

    // Fewer than two chunks: llama-perplexity refuses, so do we, saying how many are needed.
    void needsTwoChunks()
    {
        const fs::path path = modelsDir() / "stories260K" / "stories260K.gguf";
        NOVAQ_REQUIRE_DATA(path);
        const auto reader = openModel(path);
        const LlamaModel model = loadLlama(*reader);
        const std::vector<int32_t> tokens(31, 5);
        EvalOptions options;
        options.ctx = 16;
        options.protocol = EvalProtocol::LlamaCpp;
        ErrorKind kind{};
        const std::string message = failureMessage([&] { evaluate(model, nullptr, tokens, options); }, &kind);
        QCOMPARE(kind, ErrorKind::InvalidArgument);
        QVERIFY2(message.find("32") != std::string::npos && message.find("two chunks") != std::string::npos,
                 message.c_str());
        // A chunk of 2 would score nothing.
        options.ctx = 2;
        const std::string tooShort = failureMessage([&] { evaluate(model, nullptr, tokens, options); }, &kind);
        QCOMPARE(kind, ErrorKind::InvalidArgument);
        QVERIFY2(tooShort.find("--ctx 3 or more") != std::string::npos, tooShort.c_str());
        // The same 31 tokens make one window of today's protocol.
        options.ctx = 16;
        options.protocol = EvalProtocol::Novaq;
        QCOMPARE(evaluate(model, nullptr, tokens, options).windows, int64_t(1));
    }

    // The tokens of the llama.cpp protocol: BOS, then the whole text as one string.
    void tokensAreBosAndWholeText()
    {
        const fs::path path = modelsDir() / "stories260K" / "stories260K.gguf";
        NOVAQ_REQUIRE_DATA(path);
        const RunnableModel m = openRunnable(path, std::nullopt);
        QVERIFY(m.tokenizer);
        const std::string text = "One day.\n\nTwo cats\nran.";
        const std::vector<int32_t> whole = m.tokenizer->encode(text, false);
        std::vector<int32_t> expected = {1};
        expected.insert(expected.end(), whole.begin(), whole.end());
        QVERIFY(llamaCppProtocolTokens(*m.tokenizer, text, 1) == expected);
        QVERIFY(evalTokens(*m.tokenizer, text, EvalProtocol::LlamaCpp, DocumentSplit::Lines, 1) == expected);
        // Today's protocol starts every line with BOS instead.
        const std::vector<int32_t> lines = evalTokens(*m.tokenizer, text, EvalProtocol::Novaq, DocumentSplit::Lines, 1);
        QCOMPARE(std::count(lines.begin(), lines.end(), 1), 3);
        QCOMPARE(llamaCppProtocolTokens(*m.tokenizer, text, 1, 4).size(), size_t(4));
    }
};

QTEST_GUILESS_MAIN(TestEvalProtocol)
#include "test_eval_protocol.moc"
