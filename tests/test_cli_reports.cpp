// The reports `novaq validate`, `local` (and the download commands), `stats`, `eval`,
// `generate` and `tokenize` print, as the core builds them (pipeline/validate_report.h,
// pipeline/compress_report.h, runtime/run_report.h, text/token_report.h): JSON and text,
// texts from files going through the caller's escaping. The CLI only prints these; the end to
// end runs in test_cli check that it does.

#include "novaq/pipeline/compress_report.h"
#include "novaq/pipeline/validate_report.h"
#include "novaq/runtime/run_report.h"
#include "novaq/text/token_report.h"

#include <QtTest>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace novaq;

namespace {

// Marks every text that went through `shown`, so a test sees which texts did.
std::string bracketed(std::string_view text) { return "<" + std::string(text) + ">"; }

TensorCheck check(const std::string& name, bool ok, const std::string& problem, double recorded,
                  std::optional<double> recomputed = std::nullopt)
{
    return {name, ok, problem, recorded, recomputed};
}

ValidateReport failedReport()
{
    ValidateReport r;
    r.ok = false;
    r.major = 1;
    r.minor = 2;
    r.tensorCount = 2;
    r.tensors = {check("a.weight", true, "", 0.125, 0.125), check("bb", false, "checksum mismatch", 0.25)};
    r.problems = {"manifest: bad"};
    return r;
}

ModelReport calibratedReport(int64_t tokens, int64_t widest, const std::string& from)
{
    ModelReport r;
    r.output = "out.novaq";
    r.source = "src";
    r.settings = {
        {"bits", 2},
        {"calibration", {{"tokens", tokens}, {"widest_input", widest}, {"text", "kjv.txt"}, {"tokens_from", from}}}};
    return r;
}

RankShare share(int rank, const std::string& host, size_t tensors, double cost, double seconds)
{
    RankShare s;
    s.rank = rank;
    s.host = host;
    s.tensors = tensors;
    s.params = 1000 * tensors;
    s.cost = cost;
    s.seconds = seconds;
    return s;
}

// Three tokens: a word, a space and the first byte of a two-byte character (not UTF-8 alone).
class ThreeTokens : public Tokenizer {
public:
    std::vector<int32_t> encode(std::string_view, bool) const override { return {0, 1, 2}; }
    std::string decode(std::span<const int32_t>) const override { return {}; }
    std::string piece(int32_t id) const override { return kPieces[id]; }
    std::string pieceBytes(int32_t id) const override { return kBytes[id]; }
    int32_t vocabSize() const noexcept override { return 3; }
    int32_t bos() const noexcept override { return -1; }
    int32_t eos() const noexcept override { return -1; }
    std::string_view kind() const noexcept override { return "test-bpe"; }

private:
    static constexpr const char* kPieces[] = {"the", "\xe2\x96\x81", "<0xC3>"};
    static constexpr const char* kBytes[] = {"the", " ", "\xc3"};
};

EvalRequest evalRequest(bool llamaCpp)
{
    EvalRequest request;
    request.model = "m.novaq";
    request.text = "t.txt";
    request.options.ctx = 128;
    if (llamaCpp)
        request.options.protocol = EvalProtocol::LlamaCpp;
    return request;
}

EvalReport evalReport(bool compared)
{
    EvalReport report;
    report.tokens = 12345;
    report.tokenizerKind = "test-bpe";
    report.modelMemoryBytes = 4096;
    EvalResult& r = report.result;
    r.windows = 96;
    r.scored = 12288;
    r.meanNll = 1.5;
    r.perplexity = 4.4816890703;
    r.seconds = 2.0;
    if (compared) {
        r.compared = true;
        r.refPerplexity = 4.25;
        r.meanKl = 0.0123456;
        r.top1 = 0.9375;
    }
    return report;
}

} // namespace

class TestCliReports : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void validateJson()
    {
        const nlohmann::json j = validateReportJson("f.novaq", failedReport());
        QCOMPARE(j["file"].get<std::string>(), std::string("f.novaq"));
        QCOMPARE(j["ok"].get<bool>(), false);
        QCOMPARE(QString::fromStdString(j["version"].dump()), QString("[1,2]"));
        QCOMPARE(j["tensor_count"].get<size_t>(), size_t(2));
        QCOMPARE(j["tensors"][0]["recomputed_rel_error"].get<double>(), 0.125);
        QVERIFY(j["tensors"][1]["recomputed_rel_error"].is_null()); // not recomputed: null, not 0
        QCOMPARE(j["tensors"][1]["problem"].get<std::string>(), std::string("checksum mismatch"));
        QCOMPARE(QString::fromStdString(j["problems"].dump()), QString(R"(["manifest: bad"])"));
    }

    void validateProblems_data()
    {
        QTest::addColumn<int>("badTensors");
        QTest::addColumn<int>("fileProblems");
        QTest::addColumn<QString>("text");
        QTest::newRow("nothing wrong") << 0 << 0 << "";
        QTest::newRow("bad tensors") << 2 << 0 << "2 of 3 tensors bad";
        QTest::newRow("one file-level problem") << 0 << 1 << "1 file-level problem";
        QTest::newRow("file-level problems") << 0 << 2 << "2 file-level problems";
        QTest::newRow("both") << 1 << 2 << "1 of 3 tensors bad, 2 file-level problems";
    }

    void validateProblems()
    {
        QFETCH(int, badTensors);
        QFETCH(int, fileProblems);
        QFETCH(QString, text);
        ValidateReport r;
        r.tensorCount = 3;
        for (int i = 0; i < 3; ++i)
            r.tensors.push_back(check("t" + std::to_string(i), i >= badTensors, i < badTensors ? "bad" : "", 0.1));
        for (int i = 0; i < fileProblems; ++i)
            r.problems.push_back("p" + std::to_string(i));
        QCOMPARE(QString::fromStdString(validateProblemsText(r)), text);
    }

    void validateText()
    {
        // Good rows are padded to the longest shown name ("<a.weight>", 10); a failing row
        // names its problem instead of the error.
        QCOMPARE(QString::fromStdString(formatValidateReport("f.novaq", failedReport(), true, bracketed)),
                 QString("<f.novaq>: .novaq version 1.2, 2 tensors\n"
                         "  ok    <a.weight>  rel.err recorded 0.125, recomputed 0.125\n"
                         "  FAIL  <bb>: <checksum mismatch>\n"
                         "  FAIL  <manifest: bad>\n"
                         "FAILED: 1 of 2 tensors bad, 1 file-level problem (listed above)\n"));

        // Version 0 (the header could not be read) is not shown; "errors match the source"
        // only when they were recomputed from it.
        ValidateReport good;
        good.tensorCount = 2;
        good.tensors = {check("w", true, "", 0.5), check("long", true, "", 0.03125)};
        const std::string expected = "<f>\n"
                                     "  ok    <w>     rel.err 0.5\n"
                                     "  ok    <long>  rel.err 0.03125\n"
                                     "OK: 2 tensors, all checksums and decodes good";
        QCOMPARE(formatValidateReport("f", good, false, bracketed), expected + "\n");
        QCOMPARE(formatValidateReport("f", good, true, bracketed), expected + ", errors match the source\n");
    }

    void calibration_data()
    {
        QTest::addColumn<qlonglong>("tokens");
        QTest::addColumn<qlonglong>("widest");
        QTest::addColumn<QString>("from");
        QTest::addColumn<QString>("line");
        QTest::addColumn<QString>("warning"); // a part of it; empty: none
        QTest::newRow("chosen from the layer width")
            << 32768LL << 512LL << "width"
            << "Calibration: 32768 tokens of <kjv.txt> (chosen from the layer width: 4 x the widest layer input 512, "
               "32768 to 65536, at most what the text gives)\n"
            << "";
        QTest::newRow("given with the option") << 4096LL << 512LL << "option"
                                               << "Calibration: 4096 tokens of <kjv.txt> (--calibration-tokens)\n"
                                               << "";
        QTest::newRow("as many tokens as the widest input")
            << 512LL << 512LL << "option"
            << "Calibration: 512 tokens of <kjv.txt> (--calibration-tokens)\n"
            << "";
        QTest::newRow("fewer tokens than the widest input")
            << 100LL << 512LL << "option"
            << "Calibration: 100 tokens of <kjv.txt> (--calibration-tokens)\n"
            << "100 calibration tokens are fewer than the widest layer input (512)";
    }

    void calibration()
    {
        QFETCH(qlonglong, tokens);
        QFETCH(qlonglong, widest);
        QFETCH(QString, from);
        QFETCH(QString, line);
        QFETCH(QString, warning);
        const ModelReport r = calibratedReport(tokens, widest, from.toStdString());
        QCOMPARE(QString::fromStdString(calibrationLine(r, bracketed)), line);
        const std::string said = calibrationWarning(r);
        if (warning.isEmpty()) {
            QCOMPARE(said, std::string());
        } else {
            QVERIFY2(said.starts_with(warning.toStdString()), said.c_str());
            // It names the option and a count that reaches 4 x the widest input.
            QVERIFY2(said.ends_with("--calibration-tokens " + std::to_string(4 * widest) + " or more"), said.c_str());
        }

        // An uncalibrated run has neither.
        ModelReport plain;
        plain.settings = {{"bits", 2}};
        QCOMPARE(calibrationLine(plain, bracketed), std::string());
        QCOMPARE(calibrationWarning(plain), std::string());
    }

    void rankShares()
    {
        const std::vector<RankShare> shares{share(0, "node1", 12, 0.48, 3.14), share(1, "node\x1b", 13, 0.52, 2.0)};
        QCOMPARE(QString::fromStdString(formatRankShares(shares, bracketed)),
                 QString("2 ranks:\n"
                         "  rank 0 (<node1>): 12 tensors, 48.0% of the estimated work, 3.1 s\n"
                         "  rank 1 (<node\x1b>): 13 tensors, 52.0% of the estimated work, 2.0 s"));

        ModelReport r;
        r.output = "m.novaq";
        QVERIFY(!compressReportJson(r, {}).contains("ranks")); // one process: no ranks
        const nlohmann::json j = compressReportJson(r, shares);
        QCOMPARE(j["ranks"].size(), size_t(2));
        QCOMPARE(j["ranks"][1]["host"].get<std::string>(), std::string("node\x1b")); // JSON as it came
        QCOMPARE(j["ranks"][0]["params"].get<uint64_t>(), uint64_t(12000));
        QCOMPARE(j["ranks"][0]["cost_share"].get<double>(), 0.48);
        // The rest is the report's own JSON.
        nlohmann::json withoutRanks = j;
        withoutRanks.erase("ranks");
        QCOMPARE(QString::fromStdString(withoutRanks.dump()), QString::fromStdString(r.toJson().dump()));
    }

    void compressText()
    {
        const ModelReport r = calibratedReport(4096, 512, "option");
        const std::vector<RankShare> shares{share(0, "a", 1, 1.0, 1.0)};
        const std::string text = formatCompressReport(r, shares, bracketed);
        // The table, then the calibration line, the ranks and the file written, each after a blank line.
        const std::string expected = formatReportTable(r, true) + "\n" + calibrationLine(r, bracketed) + "\n" +
                                     formatRankShares(shares, bracketed) + "\nWrote out.novaq\n";
        QCOMPARE(text, expected);
        QVERIFY(text.find("\nCalibration: 4096 tokens") != std::string::npos);
        QVERIFY(text.ends_with(
            "1 ranks:\n  rank 0 (<a>): 1 tensors, 100.0% of the estimated work, 1.0 s\nWrote out.novaq\n"));

        ModelReport plain;
        plain.output = "x.novaq";
        QCOMPARE(formatCompressReport(plain, {}, bracketed), formatReportTable(plain, true) + "\nWrote x.novaq\n");
    }

    void fitMemory()
    {
        MemoryTarget target;
        target.memory.text = "--fit-memory 8GB";
        target.memory.context = 4096;
        target.memory.weights = 1024;
        target.memory.kvCache = 2048;
        target.memory.scratch = 0;
        target.fit.inspection.fixedBytes = 5'000'000; // no tensors: the file is its fixed part
        QCOMPARE(QString::fromStdString(fitMemoryNote(target, bracketed)),
                 QString("Fit to memory: <--fit-memory 8GB>; the plan runs in about 3.0 KiB (weights 1.0 KiB, KV cache "
                         "2.0 KiB at 4096 tokens, buffers 0 B), a file of about 4.8 MiB\n"));
    }

    void stats()
    {
        ModelReport r;
        r.source = "hf:org/x@abc";
        QCOMPARE(formatStats("m.novaq", 1, 3, r, bracketed),
                 "<m.novaq> (.novaq version 1.3), compressed from hf:org/x@abc\n\n" + formatReportTable(r, false));
        r.source.clear();
        QVERIFY(formatStats("m.novaq", 1, 3, r, bracketed)
                    .starts_with("<m.novaq> (.novaq version 1.3), compressed "
                                 "from an unnamed source\n\n"));
    }

    void evalJson()
    {
        const nlohmann::json j = evalReportJson(evalRequest(false), evalReport(false));
        QCOMPARE(j["model"].get<std::string>(), std::string("m.novaq"));
        QCOMPARE(j["protocol"].get<std::string>(), std::string("novaq"));
        QCOMPARE(j["ctx"].get<int>(), 128);
        QCOMPARE(j["tokens"].get<int64_t>(), int64_t(12345));
        QCOMPARE(j["scored"].get<int64_t>(), int64_t(12288));
        QCOMPARE(j["weights_in_memory_bytes"].get<size_t>(), size_t(4096));
        QVERIFY(!j.contains("against")); // no reference: none of its figures

        EvalRequest request = evalRequest(true);
        request.against = "orig";
        const nlohmann::json c = evalReportJson(request, evalReport(true));
        QCOMPARE(c["protocol"].get<std::string>(), std::string("llama.cpp"));
        QCOMPARE(c["against"].get<std::string>(), std::string("orig"));
        QCOMPARE(c["against_perplexity"].get<double>(), 4.25);
        QCOMPARE(c["kl"].get<double>(), 0.0123456);
        QCOMPARE(c["top1"].get<double>(), 0.9375);
    }

    void evalText()
    {
        // Counts with thousands separators, perplexity to 3 decimals, the rate scored / seconds.
        QCOMPARE(QString::fromStdString(formatEvalReport(evalRequest(false), evalReport(false), bracketed)),
                 QString("text       <t.txt>: 12,345 tokens (<test-bpe>), 96 windows of 128, 12,288 scored\n"
                         "model      <m.novaq>  perplexity 4.482\n"
                         "time 2.0 s (6,144 tokens/s)\n"));
        EvalRequest request = evalRequest(true);
        request.against = "orig";
        QCOMPARE(
            QString::fromStdString(formatEvalReport(request, evalReport(true), bracketed)),
            QString("text       <t.txt>: 12,345 tokens (<test-bpe>), 96 chunks of 128 (llama.cpp protocol), 12,288 "
                    "scored\n"
                    "model      <m.novaq>  perplexity 4.482\n"
                    "original   <orig>  perplexity 4.250\n"
                    "KL divergence of the model from the original: 0.01235 nats/token; top-1 agreement 93.75%\n"
                    "time 2.0 s (6,144 tokens/s through both models)\n"));
    }

    void tokenizedText()
    {
        const ThreeTokens tokenizer;
        const std::vector<int32_t> ids{0, 1, 2, 0};
        const nlohmann::json j = tokensJson(tokenizer, ids);
        QCOMPARE(j["tokenizer"].get<std::string>(), std::string("test-bpe"));
        QCOMPARE(j["count"].get<size_t>(), size_t(4));
        QCOMPARE(QString::fromStdString(j["ids"].dump()), QString("[0,1,2,0]"));
        QCOMPARE(j["pieces"][2].get<std::string>(), std::string("<0xC3>")); // the vocabulary's piece, as it is
        // The text shows the bytes a token stands for, through `shown`.
        QCOMPARE(formatTokens(tokenizer, ids, bracketed),
                 std::string("0\t<the>\n1\t< >\n2\t<\xc3>\n0\t<the>\n4 tokens (<test-bpe>)\n"));
    }

    void generations()
    {
        const std::vector<Generation> runs{{"m.novaq", " and the earth", {5, 6, 7}, 12.5}, {"orig", "", {}, 0.0}};
        const nlohmann::json j = generationsJson("In the beginning", runs);
        QCOMPARE(j["prompt"].get<std::string>(), std::string("In the beginning"));
        QCOMPARE(j["results"].size(), size_t(2));
        QCOMPARE(j["results"][0]["model"].get<std::string>(), std::string("m.novaq"));
        QCOMPARE(j["results"][0]["text"].get<std::string>(), std::string(" and the earth"));
        QCOMPARE(QString::fromStdString(j["results"][0]["ids"].dump()), QString("[5,6,7]"));
        QCOMPARE(j["results"][0]["tokens_per_second"].get<double>(), 12.5);
        QVERIFY(j["results"][1]["ids"].is_array()); // none produced: an empty list, not null
        QCOMPARE(generationSummary(3, 12.34), std::string("[3 tokens, 12.3 tokens/s]")); // one decimal
        QCOMPARE(generationSummary(0, 0.0), std::string("[0 tokens, 0.0 tokens/s]"));
    }
};

QTEST_GUILESS_MAIN(TestCliReports)
#include "test_cli_reports.moc"
