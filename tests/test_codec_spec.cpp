// CodecSpec (core/novaq/codec/codec_spec.h): the codec choice as one value. Every preset and
// expert settings resolve, print, parse and go through JSON and back unchanged; every bad
// input is refused naming the field, the value and what is allowed; and the one set of limits
// (kCodecLimits) is the one the validator, the string and JSON forms and the manifest reader
// apply (the CLI's options: test_cli codecLimits; the app's spin boxes: test_gui_presets).

#include "test_support.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/container/manifest.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/planner.h"

#include <QtTest>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>

using namespace novaq;
namespace fs = std::filesystem;

namespace {

std::string bitsText(double bits)
{
    char text[32];
    std::snprintf(text, sizeof text, "%g", bits);
    return text;
}

// The message of the Error `fn` throws (failing the test when it throws none or another kind).
QString errorOf(const std::function<void()>& fn, ErrorKind kind)
{
    const std::optional<test::Failure> failure = test::failureOf(fn);
    if (!failure)
        return QStringLiteral("(no error)");
    if (failure->kind != kind)
        return QStringLiteral("(wrong kind) ") + failure->message;
    return failure->message;
}

void requireAll(const QString& message, const QStringList& parts)
{
    for (const QString& part : parts)
        QVERIFY2(message.contains(part), qPrintable("'" + part + "' not in: " + message));
}

// A valid manifest record of a quantized tensor with these codec settings.
nlohmann::json novaqRecord(const CodecConfig& codec)
{
    TensorRecord r;
    r.name = "model.layers.0.mlp.up_proj.weight";
    r.shape = {64, 256};
    r.sourceDtype = "F16";
    r.encoding = TensorEncoding::Novaq;
    r.codec = codec;
    r.data = SectionRef{64, 1000, 0x0123456789abcdefull};
    return nlohmann::json::parse(r.toJson().dump());
}

const CodecLimit& limitNamed(const QString& field)
{
    const CodecLimits& l = kCodecLimits;
    return field == "d" ? l.d : field == "b1" ? l.b1 : field == "b2" ? l.b2 : l.subspaces;
}

CodecConfig withField(CodecConfig c, const QString& field, int value)
{
    (field == "d" ? c.d : field == "b1" ? c.b1 : field == "b2" ? c.b2 : c.subspaces) = value;
    return c;
}

} // namespace

class TestCodecSpec : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // ---- every preset

    void presets_data()
    {
        QTest::addColumn<int>("row");
        QTest::addColumn<int>("subspaces");
        for (size_t i = 0; i < kBitsPresets.size(); ++i) {
            const BitsPreset& p = kBitsPresets[i];
            for (int k : {1, 4, 64})
                QTest::addRow("%s bits (d=%d %d+%d) K=%d", bitsText(p.bits).c_str(), p.d, p.b1, p.b2, k) << int(i) << k;
        }
    }
    void presets()
    {
        QFETCH(int, row);
        QFETCH(int, subspaces);
        const BitsPreset& p = kBitsPresets[size_t(row)];
        const CodecSpec spec = CodecSpec::preset(p.bits, subspaces);
        QVERIFY(spec.isPreset());
        QCOMPARE(spec.presetRow(), &kBitsPresets[size_t(row)]);
        QCOMPARE(spec.bits(), p.bits);
        QCOMPARE(spec.subspaces(), subspaces);
        const CodecConfig config = spec.resolve();
        QVERIFY(config == (CodecConfig{p.d, p.b1, p.b2, subspaces}));
        QVERIFY(validateConfig(config).empty());
        QCOMPARE(config.codeBitsPerWeight(), p.bits); // the table's bits are its codes' bits
        // The string form, and parse(print(x)) == x, print(parse(s)) == s.
        const std::string text = "novaq bits=" + bitsText(p.bits) + " K=" + std::to_string(subspaces);
        QCOMPARE(spec.toString(), text);
        QVERIFY(CodecSpec::parse(text) == spec);
        QCOMPARE(CodecSpec::parse(text).toString(), text);
        // The label names what is stored; it parses back as the same configuration (expert form).
        QCOMPARE(spec.label(), "novaq d=" + std::to_string(p.d) + " " + std::to_string(p.b1) + "+" +
                                   std::to_string(p.b2) + " K=" + std::to_string(subspaces));
        QCOMPARE(spec.label(), codecLabel(config));
        QVERIFY(CodecSpec::parse(spec.label()).resolve() == config);
        QVERIFY(!CodecSpec::parse(spec.label()).isPreset());
        // JSON both ways.
        const nlohmann::json j = spec.toJson();
        QVERIFY(j == (nlohmann::json{{"bits", p.bits}, {"subspaces", subspaces}}));
        QVERIFY(CodecSpec::fromJson(nlohmann::json::parse(j.dump()), "settings") == spec);
        // The other ways to the same preset.
        QVERIFY(CodecSpec::presetAtLength(p, 0, subspaces) == spec);
        QVERIFY(presetForBits(p.bits) && presetForBits(p.bits)->bits == p.bits);
        QCOMPARE(presetIndex(p.bits), size_t(row));
        // Expert settings with the preset's own fields resolve alike but are not the preset: they
        // are compressed and estimated as given, without the balanced allocation (codec_spec.h;
        // test_inspect's estimateIsWhatCompressWrites); at the preset's length too.
        for (const CodecSpec& same : {CodecSpec::expert(config), CodecSpec::presetAtLength(p, p.d, subspaces)}) {
            QVERIFY(!same.isPreset());
            QVERIFY(same.presetRow() == nullptr);
            QVERIFY(same.resolve() == spec.resolve());
            QVERIFY(!(same == spec));
            QCOMPARE(same.toString(), spec.label());
            QVERIFY(same.toJson() == codecConfigToJson(config));
        }
        const CodecSpec longer = CodecSpec::presetAtLength(p, p.d + 1, subspaces);
        QVERIFY(!longer.isPreset());
        QVERIFY(longer.resolve() == (CodecConfig{p.d + 1, p.b1, p.b2, subspaces}));
    }

    // The default value, which CompressOptions and PlanOptions start from, is what `novaq local`
    // does without --bits: the 1.5-bit preset in 4 subspaces, CodecConfig{}.
    void defaultIsTheCompactPreset()
    {
        const CodecSpec spec;
        QVERIFY(spec.isPreset());
        QVERIFY(spec == CodecSpec::preset(1.5, 4));
        QVERIFY(spec.resolve() == CodecConfig{});
        QCOMPARE(spec.toString(), std::string("novaq bits=1.5 K=4"));
        QVERIFY(CompressOptions{}.codec == spec);
        QVERIFY(PlanOptions{}.codec == spec);
    }

    // A value within 1e-9 of a preset is that preset, with the table's own bits: the planner's
    // role table compares bits exactly, so 1.5 + 1e-12 once lost the balanced allocation.
    void nearPresetBitsAreThePreset()
    {
        for (const BitsPreset& p : kBitsPresets) {
            const CodecSpec spec = CodecSpec::preset(p.bits + 1e-12, 4);
            QVERIFY(spec.bits() == p.bits); // exactly (QCOMPARE is fuzzy)
            QVERIFY(spec == CodecSpec::preset(p.bits, 4));
        }
    }
    // The same, end to end: compressing at 1.5 + 1e-12 bits writes the file of 1.5 bits (before:
    // the embedding and output stayed at 1.5, the role table missing the bits, though the
    // settings said "balanced", and 1.500000000001 was written as the bits).
    void compressAtNearPresetBitsIsThePreset()
    {
        const fs::path model = test::storiesGguf();
        NOVAQ_REQUIRE_DATA(model);
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());
        std::vector<std::vector<char>> files;
        for (double bits : {1.5, 1.5 + 1e-12}) {
            CompressOptions o;
            o.input = model;
            o.sourceLabel = "stories260K.gguf";
            o.output = dir / (files.empty() ? "exact.novaq" : "near.novaq");
            o.codec = CodecSpec::preset(bits, 4);
            o.threads = 2;
            const ModelReport report = compressModel(o, nullptr, nullptr);
            QCOMPARE(report.settings["allocation"].get<std::string>(), std::string("balanced"));
            QVERIFY(report.settings["bits"].get<double>() == 1.5); // exactly (QCOMPARE is fuzzy)
            files.push_back(test::readAll(o.output));
        }
        QVERIFY(!files[0].empty());
        QVERIFY(files[0] == files[1]);
    }

    // ---- expert settings and the string form

    void expertForms_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("canonical"); // toString() of what it parses to
        QTest::addColumn<bool>("preset");
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("b1");
        QTest::addColumn<int>("b2");
        QTest::addColumn<int>("subspaces");
        QTest::newRow("the label of 1.5 bits") << "novaq d=8 8+4 K=4"
                                               << "novaq d=8 8+4 K=4" << false << 8 << 8 << 4 << 4;
        QTest::newRow("two stages, 2 subspaces") << "novaq d=6 7+5 K=2"
                                                 << "novaq d=6 7+5 K=2" << false << 6 << 7 << 5 << 2;
        QTest::newRow("one stage") << "novaq d=8 8+0 K=1"
                                   << "novaq d=8 8+0 K=1" << false << 8 << 8 << 0 << 1;
        QTest::newRow("every field at its least") << "novaq d=1 1+0 K=1"
                                                  << "novaq d=1 1+0 K=1" << false << 1 << 1 << 0 << 1;
        QTest::newRow("every field at its most") << "novaq d=32 12+12 K=64"
                                                 << "novaq d=32 12+12 K=64" << false << 32 << 12 << 12 << 64;
        QTest::newRow("K left out: 4") << "novaq d=8 8+4"
                                       << "novaq d=8 8+4 K=4" << false << 8 << 8 << 4 << 4;
        QTest::newRow("extra spaces") << "  novaq   d=4  8+8   K=16 "
                                      << "novaq d=4 8+8 K=16" << false << 4 << 8 << 8 << 16;
        QTest::newRow("preset, K left out") << "novaq bits=1.5"
                                            << "novaq bits=1.5 K=4" << true << 8 << 8 << 4 << 4;
        QTest::newRow("preset written 2.50") << "novaq bits=2.50 K=8"
                                             << "novaq bits=2.5 K=8" << true << 6 << 8 << 7 << 8;
        QTest::newRow("preset written 1e0") << "novaq bits=1e0 K=2"
                                            << "novaq bits=1 K=2" << true << 8 << 8 << 0 << 2;
    }
    void expertForms()
    {
        QFETCH(QString, text);
        QFETCH(QString, canonical);
        QFETCH(bool, preset);
        QFETCH(int, d);
        QFETCH(int, b1);
        QFETCH(int, b2);
        QFETCH(int, subspaces);
        const CodecConfig expected{d, b1, b2, subspaces};
        const CodecSpec spec = CodecSpec::parse(text.toStdString());
        QCOMPARE(spec.isPreset(), preset);
        QVERIFY(spec.resolve() == expected);
        QCOMPARE(QString::fromStdString(spec.toString()), canonical);
        QVERIFY(CodecSpec::parse(canonical.toStdString()) == spec);
        QCOMPARE(spec.label(), codecLabel(expected));
        QVERIFY(CodecSpec::fromJson(nlohmann::json::parse(spec.toJson().dump()), "codec") == spec);
        if (!preset) {
            QCOMPARE(spec.toString(), spec.label()); // expert settings print as their label
            QCOMPARE(spec.bits(), expected.codeBitsPerWeight());
            QVERIFY(spec == CodecSpec::expert(expected));
            QVERIFY(spec.toJson() == (nlohmann::json{{"d", d}, {"b1", b1}, {"b2", b2}, {"subspaces", subspaces}}));
            QVERIFY(codecConfigToJson(expected) == spec.toJson());
            QVERIFY(codecConfigFromJson(spec.toJson(), "codec", ErrorKind::InvalidInput) == expected);
        }
    }

    void badStrings_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QStringList>("message"); // each part must be in it
        QTest::newRow("empty") << "" << QStringList{"codec \"\": it is empty"};
        QTest::newRow("unknown encoding")
            << "pq d=8 8+4 K=4" << QStringList{"the encoding \"pq\" is unknown", "\"novaq\""};
        QTest::newRow("encoding alone") << "novaq" << QStringList{"bits=B or d=D B1+B2 must follow"};
        QTest::newRow("d 0") << "novaq d=0 8+4 K=4" << QStringList{"vector length d must be 1..32 (got 0)"};
        QTest::newRow("d 33") << "novaq d=33 8+4 K=4" << QStringList{"vector length d must be 1..32 (got 33)"};
        QTest::newRow("d negative") << "novaq d=-8 8+4 K=4" << QStringList{"vector length d must be 1..32 (got -8)"};
        QTest::newRow("d not a number") << "novaq d=x 8+4"
                                        << QStringList{"vector length d expects a whole number 1..32, got \"x\""};
        QTest::newRow("d huge") << "novaq d=99999999999 8+4"
                                << QStringList{"vector length d expects a whole number 1..32, got \"99999999999\""};
        QTest::newRow("b1 0") << "novaq d=8 0+4 K=4" << QStringList{"stage-1 bits b1 must be 1..12 (got 0)"};
        QTest::newRow("b1 13") << "novaq d=8 13+4 K=4" << QStringList{"stage-1 bits b1 must be 1..12 (got 13)"};
        QTest::newRow("b2 13") << "novaq d=8 8+13 K=4" << QStringList{"stage-2 bits b2 must be 0..12 (got 13)"};
        QTest::newRow("b2 missing") << "novaq d=8 8+ K=4"
                                    << QStringList{"stage-2 bits b2 expects a whole number 0..12, got \"\""};
        QTest::newRow("three stages") << "novaq d=8 8+4+2"
                                      << QStringList{"stage-2 bits b2 expects a whole number 0..12, got \"4+2\""};
        QTest::newRow("K 0") << "novaq d=8 8+4 K=0" << QStringList{"K (subspaces) must be 1..64 (got 0)"};
        QTest::newRow("K 65") << "novaq bits=2 K=65" << QStringList{"K (subspaces) must be 1..64 (got 65)"};
        QTest::newRow("stages missing") << "novaq d=8" << QStringList{"the stage bits B1+B2 must follow d=8"};
        QTest::newRow("stages without +")
            << "novaq d=8 84 K=4" << QStringList{"expected the stage bits as B1+B2", "got \"84\""};
        QTest::newRow("bits not a preset")
            << "novaq bits=1.7 K=4"
            << QStringList{"bits 1.7 is not a preset; choose one of 1, 1.5, 2, 2.5, 3, 4, 5, 6"};
        QTest::newRow("bits not a number")
            << "novaq bits=lots" << QStringList{"bits expects a number, one of 1, 1.5", "got \"lots\""};
        QTest::newRow("words after") << "novaq d=8 8+4 K=4 fast"
                                     << QStringList{"unexpected \"fast\" after the settings"};
        QTest::newRow("K first") << "novaq K=4 bits=1.5" << QStringList{"expected bits=B or d=D, got \"K=4\""};
        QTest::newRow("both forms") << "novaq bits=1.5 d=8 8+4" << QStringList{"unexpected \"d=8\""};
    }
    void badStrings()
    {
        QFETCH(QString, text);
        QFETCH(QStringList, message);
        const QString error = errorOf([&] { CodecSpec::parse(text.toStdString()); }, ErrorKind::InvalidArgument);
        QVERIFY2(error.startsWith("codec \"" + text + "\": "), qPrintable(error)); // quotes what it read
        requireAll(error, message);
    }

    void badSettings_data()
    {
        QTest::addColumn<int>("which"); // the call below
        QTest::addColumn<QStringList>("message");
        QTest::newRow("--bits not a preset")
            << 0 << QStringList{"--bits 1.7 is not a preset; choose one of 1, 1.5, 2, 2.5, 3, 4, 5, 6"};
        QTest::newRow("preset with 0 subspaces") << 1 << QStringList{"subspaces must be 1..64 (got 0)"};
        QTest::newRow("expert d 33") << 2 << QStringList{"vector length d must be 1..32 (got 33)"};
        QTest::newRow("expert, 65 subspaces") << 3 << QStringList{"subspaces must be 1..64 (got 65)"};
        QTest::newRow("vector length 33") << 4 << QStringList{"vector length d must be 1..32 (got 33)"};
        QTest::newRow("bits 7 not a preset") << 5 << QStringList{"--bits 7 is not a preset; choose one of"};
    }
    void badSettings()
    {
        QFETCH(int, which);
        QFETCH(QStringList, message);
        const std::function<void()> calls[] = {
            [] { CodecSpec::preset(1.7, 4); },
            [] { CodecSpec::preset(1.5, 0); },
            [] {
                CodecSpec::expert({33, 8, 4, 4});
            },
            [] {
                CodecSpec::expert({8, 8, 4, 65});
            },
            [] { CodecSpec::presetAtLength(kBitsPresets[1], 33, 4); },
            [] { CodecSpec::preset(7, 4); },
        };
        requireAll(errorOf(calls[which], ErrorKind::InvalidArgument), message);
    }

    // ---- JSON

    void badJson_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QStringList>("message");
        QTest::newRow("not an object") << "[1]" << QStringList{"settings.codec: expected an object, found [1]"};
        QTest::newRow("empty object") << "{}" << QStringList{"settings.codec: expected \"bits\" (a preset) or \"d\""};
        QTest::newRow("both forms") << R"({"bits":1.5,"d":8,"b1":8,"b2":4,"subspaces":4})"
                                    << QStringList{"settings.codec: give either \"bits\"", "not both"};
        QTest::newRow("unknown field") << R"({"d":8,"b1":8,"b2":4,"subspaces":4,"variant":"x"})"
                                       << QStringList{"settings.codec.variant: unknown field"};
        QTest::newRow("bits a string") << R"({"bits":"1.5","subspaces":4})"
                                       << QStringList{"settings.codec.bits: expected a number", "found \"1.5\""};
        QTest::newRow("bits not a preset")
            << R"({"bits":1.7,"subspaces":4})"
            << QStringList{"settings.codec.bits: 1.7 is not a preset; choose one of 1, 1.5, 2, 2.5, 3, 4, 5, 6"};
        QTest::newRow("preset without subspaces")
            << R"({"bits":1.5})" << QStringList{"settings.codec.subspaces: missing"};
        QTest::newRow("b2 missing") << R"({"d":8,"b1":8,"subspaces":4})" << QStringList{"settings.codec.b2: missing"};
        QTest::newRow("d 33") << R"({"d":33,"b1":8,"b2":4,"subspaces":4})"
                              << QStringList{"settings.codec.d: expected an integer 1..32, found 33"};
        QTest::newRow("d negative") << R"({"d":-1,"b1":8,"b2":4,"subspaces":4})"
                                    << QStringList{"settings.codec.d: expected an integer 1..32, found -1"};
        QTest::newRow("d huge") << R"({"d":18446744073709551615,"b1":8,"b2":4,"subspaces":4})"
                                << QStringList{"expected an integer 1..32, found 18446744073709551615"};
        QTest::newRow("b1 true") << R"({"d":8,"b1":true,"b2":4,"subspaces":4})"
                                 << QStringList{"settings.codec.b1: expected an integer 1..12, found true"};
        QTest::newRow("b2 fractional") << R"({"d":8,"b1":8,"b2":4.5,"subspaces":4})"
                                       << QStringList{"settings.codec.b2: expected an integer 0..12, found 4.5"};
        QTest::newRow("subspaces 0") << R"({"bits":2,"subspaces":0})"
                                     << QStringList{"settings.codec.subspaces: expected an integer 1..64, found 0"};
    }
    void badJson()
    {
        QFETCH(QString, json);
        QFETCH(QStringList, message);
        const nlohmann::json j = nlohmann::json::parse(json.toStdString());
        // The caller chooses the kind: a bad setting, or (the manifest) a corrupt file.
        for (ErrorKind kind : {ErrorKind::InvalidInput, ErrorKind::Corrupt})
            requireAll(errorOf([&] { CodecSpec::fromJson(j, "settings.codec", kind); }, kind), message);
    }

    // ---- one set of limits, the same everywhere

    void limitsAreTheSameEverywhere_data()
    {
        QTest::addColumn<QString>("field");
        QTest::addColumn<int>("value");
        QTest::addColumn<bool>("allowed");
        for (const char* field : {"d", "b1", "b2", "subspaces"}) {
            const CodecLimit& l = limitNamed(QString::fromLatin1(field));
            QCOMPARE(std::string(l.key), std::string(field));
            QTest::addRow("%s %d (below)", field, l.min - 1) << field << l.min - 1 << false;
            QTest::addRow("%s %d (least)", field, l.min) << field << l.min << true;
            QTest::addRow("%s %d (most)", field, l.max) << field << l.max << true;
            QTest::addRow("%s %d (above)", field, l.max + 1) << field << l.max + 1 << false;
        }
    }
    void limitsAreTheSameEverywhere()
    {
        QFETCH(QString, field);
        QFETCH(int, value);
        QFETCH(bool, allowed);
        const CodecLimit& limit = limitNamed(field);
        QCOMPARE(limit.contains(value), allowed);
        const QString range = QString::fromStdString(limit.rangeText());
        const CodecConfig config = withField(CodecConfig{8, 8, 4, 4}, field, value);

        // The validator (the encoder, the payload decoder and the runtime call it).
        const std::string problem = validateConfig(config);
        QCOMPARE(problem.empty(), allowed);
        if (!allowed)
            QCOMPARE(problem, std::string(limit.what) + " must be " + limit.rangeText() + " (got " +
                                  std::to_string(value) + ")");
        // CodecSpec's factories.
        const auto expert = test::failureOf([&] { CodecSpec::expert(config); });
        QCOMPARE(!expert, allowed);
        // The string form (the label).
        const auto parsed = test::failureOf([&] { CodecSpec::parse(codecLabel(config)); });
        QCOMPARE(!parsed, allowed);
        if (parsed)
            QVERIFY2(parsed->message.contains(range), qPrintable(parsed->message));
        // The JSON form.
        const auto json = test::failureOf([&] { CodecSpec::fromJson(codecConfigToJson(config), "codec"); });
        QCOMPARE(!json, allowed);
        if (json)
            QVERIFY2(json->message.contains("codec." + field + ": expected an integer " + range),
                     qPrintable(json->message));
        // The manifest reader.
        const auto manifest = test::failureOf([&] { TensorRecord::fromJson(novaqRecord(config), "tensors[0]"); });
        QCOMPARE(!manifest, allowed);
        if (manifest) {
            QVERIFY(manifest->kind == ErrorKind::Corrupt);
            QCOMPARE(manifest->message, "manifest field tensors[0].codec." + field + ": expected an integer " + range +
                                            ", found " + QString::number(value));
        } else {
            QVERIFY(TensorRecord::fromJson(novaqRecord(config), "tensors[0]").codec == config);
        }
    }

    // ---- the planner's role table refers to the presets (static_asserts in planner.cpp)

    void roleTableNamesPresets()
    {
        for (const BitsPreset& p : kBitsPresets)
            for (TensorRole role :
                 {TensorRole::Output, TensorRole::Embedding, TensorRole::FirstBlock, TensorRole::Other}) {
                const double bits = presetBitsFor(p.bits, role);
                QVERIFY(presetIndex(bits) < kBitsPresets.size());
                QVERIFY(bits >= p.bits);
                if (role == TensorRole::Other)
                    QCOMPARE(bits, p.bits);
            }
        // Not a preset's own bits: no reallocation.
        QCOMPARE(presetBitsFor(1.7, TensorRole::Output), 1.7);
        QCOMPARE(presetIndex(1.7), kBitsPresets.size());
    }
};

QTEST_APPLESS_MAIN(TestCodecSpec)
#include "test_codec_spec.moc"
