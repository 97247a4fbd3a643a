// `novaq prompt` end to end: the exact rendered text on stdout (compared with the
// @huggingface/jinja renderings of tests/data/chat_templates), nothing else there, and the
// errors for bad conversations and template names.

#include "test_support.h"

#include <QProcess>
#include <QTest>

#include <nlohmann/json.hpp>

using namespace novaq::test;
namespace fs = std::filesystem;

namespace {

fs::path fixtureDir() { return testDataDir() / "chat_templates"; }

const nlohmann::ordered_json& expected()
{
    static const nlohmann::ordered_json e = [] {
        const std::vector<char> bytes = readAll(fixtureDir() / "expected.json");
        return nlohmann::ordered_json::parse(std::string(bytes.begin(), bytes.end()));
    }();
    return e;
}

const nlohmann::ordered_json& conversation(const std::string& name)
{
    for (const auto& c : expected().at("conversations"))
        if (c.at("name") == name)
            return c;
    throw std::runtime_error("no conversation " + name);
}

std::string expectedOutput(const std::string& templateName, const std::string& conv, bool gen)
{
    for (const auto& c : expected().at("cases"))
        if (c.at("template") == templateName && c.at("conversation") == conv && c.at("add_generation_prompt") == gen)
            return c.value("output", std::string());
    throw std::runtime_error("no case " + templateName + "/" + conv);
}

struct Result {
    int exitCode = -1;
    QByteArray out;
    QString err;
};

Result runNovaq(const QStringList& args, const QByteArray& input = {})
{
    QProcess process;
    if (input.isEmpty())
        process.setStandardInputFile(QProcess::nullDevice());
    process.start(QStringLiteral(NOVAQ_CLI_PATH), args);
    Result r;
    if (!process.waitForStarted())
        return r;
    if (!input.isEmpty()) {
        process.write(input);
        process.closeWriteChannel();
    }
    if (!process.waitForFinished(120000) || process.exitStatus() != QProcess::NormalExit) {
        process.kill();
        process.waitForFinished();
        return r;
    }
    r.exitCode = process.exitCode();
    r.out = process.readAllStandardOutput();
    r.err = QString::fromUtf8(process.readAllStandardError());
    return r;
}

// A one-tensor safetensors model with the given tokenizer_config.json beside it (none when empty).
fs::path modelWithConfig(const fs::path& dir, const std::string& config)
{
    std::string data;
    for (int k = 0; k < 16; ++k)
        data += f32Bytes({float(k)});
    const fs::path path = dir / "model.safetensors";
    writeAll(path, makeSafetensors(R"({"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}})", data));
    if (!config.empty())
        fs::copy_file(fixtureDir() / config, dir / "tokenizer_config.json");
    return path;
}

} // namespace

class TestPromptCli : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY2(QFile::exists(QStringLiteral(NOVAQ_CLI_PATH)), "the novaq executable is missing; build target novaq");
        NOVAQ_REQUIRE_DATA(fixtureDir() / "expected.json");
    }

    // stdout is exactly the rendering (no newline added); stderr names the template used.
    void renders_data()
    {
        QTest::addColumn<QString>("config"); // tokenizer_config.json beside the model; empty: the demo model
        QTest::addColumn<QString>("conversation");
        QTest::addColumn<QStringList>("extra");
        QTest::addColumn<QString>("templateName"); // of expected.json
        QTest::addColumn<bool>("gen");
        QTest::addColumn<QString>("note");
        QTest::newRow("llama3_1 own") << "llama3_1_tokenizer_config.json"
                                      << "system_user" << QStringList{} << "llama3_1" << true << "the model's own";
        QTest::newRow("qwen3 no generation prompt")
            << "qwen3_tokenizer_config.json"
            << "multi_turn" << QStringList{"--no-generation-prompt"} << "qwen3" << false << "the model's own";
        QTest::newRow("gemma3 unicode") << "gemma3_tokenizer_config.json"
                                        << "unicode" << QStringList{} << "gemma3" << true << "the model's own";
        QTest::newRow("demo model: plain")
            << ""
            << "system_user" << QStringList{} << "builtin_plain" << true << "plain transcript";
        QTest::newRow("llama2 config has none: plain")
            << "llama2_tokenizer_config.json"
            << "multi_turn" << QStringList{} << "builtin_plain" << true << "plain";
        QTest::newRow("--chat-template chatml") << ""
                                                << "multi_turn" << QStringList{"--chat-template", "chatml"}
                                                << "builtin_chatml" << true << "--chat-template";
        QTest::newRow("qwen3 --template-vars enable_thinking false")
            << "qwen3_tokenizer_config.json"
            << "thinking_disabled" << QStringList{"--template-vars", R"({"enable_thinking": false})"} << "qwen3" << true
            << "the model's own";
        QTest::newRow("--chat-template beats own")
            << "qwen3_tokenizer_config.json"
            << "no_system" << QStringList{"--chat-template", "llama3"} << "builtin_llama3" << true << "--chat-template";
    }

    void renders()
    {
        QFETCH(QString, config);
        QFETCH(QString, conversation);
        QFETCH(QStringList, extra);
        QFETCH(QString, templateName);
        QFETCH(bool, gen);
        QFETCH(QString, note);
        QTemporaryDir dir;
        const fs::path model =
            config.isEmpty() ? demoModelDir() : modelWithConfig(toPath(dir.path()), config.toStdString());
        const fs::path messages = toPath(dir.path()) / "chat.json";
        writeAll(messages, ::conversation(conversation.toStdString()).at("messages").dump());
        const Result r = runNovaq(QStringList{"prompt", QString::fromStdString(model.string()), "--messages",
                                              QString::fromStdString(messages.string())} +
                                  extra);
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QCOMPARE(r.out, QByteArray::fromStdString(
                            expectedOutput(templateName.toStdString(), conversation.toStdString(), gen)));
        QVERIFY2(r.err.contains(note), qPrintable(r.err));
    }

    // Other shapes of input: stdin, a chat-completions body, content parts.
    void inputShapes_data()
    {
        QTest::addColumn<QByteArray>("json");
        QTest::addColumn<bool>("viaStdin");
        const QByteArray array = R"([{"role": "user", "content": "Hi"}])";
        QTest::newRow("stdin") << array << true;
        QTest::newRow("request body") << QByteArray(
                                             R"({"model": "x", "messages": [{"role": "user", "content": "Hi"}]})")
                                      << false;
        QTest::newRow("content parts") << QByteArray(R"([{"role": "user", "content": [{"type": "text", "text": "H"},
                                                         {"type": "text", "text": "i"}]}])")
                                       << false;
    }

    void inputShapes()
    {
        QFETCH(QByteArray, json);
        QFETCH(bool, viaStdin);
        QTemporaryDir dir;
        const QString file = dir.filePath("m.json");
        writeAll(toPath(file), json.toStdString());
        const QString model = QString::fromStdString(demoModelDir().string());
        const Result r = viaStdin ? runNovaq({"prompt", model, "--messages", "-", "--chat-template", "chatml"}, json)
                                  : runNovaq({"prompt", model, "--messages", file, "--chat-template", "chatml"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QCOMPARE(r.out, QByteArray("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    }

    // Errors: exit code, nothing on stdout, a message naming the file, message and field.
    void errors_data()
    {
        QTest::addColumn<QString>("json"); // empty: no --messages at all
        QTest::addColumn<QStringList>("extra");
        QTest::addColumn<int>("exitCode");
        QTest::addColumn<QString>("stderrHas");
        QTest::newRow("no --messages") << "" << QStringList{} << 2 << "missing --messages";
        QTest::newRow("unknown template")
            << R"([{"role": "user", "content": "x"}])" << QStringList{"--chat-template", "vicuna"} << 2
            << "llama2, llama3, chatml, gemma, phi3, mistral, plain";
        QTest::newRow("bad json") << "[{" << QStringList{} << 3 << "m.json: not valid JSON";
        QTest::newRow("not an array") << R"({"role": "user"})" << QStringList{} << 3 << "expected an array";
        QTest::newRow("empty") << "[]" << QStringList{} << 3 << "has no messages";
        QTest::newRow("number content") << R"([{"role": "user", "content": "a"}, {"role": "user", "content": 5}])"
                                        << QStringList{} << 3
                                        << "m.json: message 1, field \"content\": expected a string";
        QTest::newRow("no role") << R"([{"content": "a"}])" << QStringList{} << 3
                                 << "message 0: missing field \"role\"";
        QTest::newRow("image part") << R"([{"role": "user", "content": [{"type": "image_url"}]}])" << QStringList{} << 3
                                    << "message 0, content part 0: only text parts";
        QTest::newRow("part type not a string") << R"([{"role": "user", "content": [{"type": 5, "text": "x"}]}])"
                                                << QStringList{} << 3 << "message 0, content part 0: only text parts";
        QTest::newRow("template vars not an object")
            << R"([{"role": "user", "content": "x"}])" << QStringList{"--template-vars", "[1]"} << 2
            << "--template-vars: expected a JSON object";
        QTest::newRow("template refuses")
            << R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])"
            << QStringList{"--chat-template", "gemma"} << 3 << "the template refused the conversation";
    }

    void errors()
    {
        QFETCH(QString, json);
        QFETCH(QStringList, extra);
        QFETCH(int, exitCode);
        QFETCH(QString, stderrHas);
        QTemporaryDir dir;
        QStringList args{"prompt", QString::fromStdString(demoModelDir().string())};
        if (!json.isEmpty()) {
            writeAll(toPath(dir.filePath("m.json")), json.toStdString());
            args << "--messages" << dir.filePath("m.json");
        }
        const Result r = runNovaq(args + extra);
        QCOMPARE(r.exitCode, exitCode);
        QVERIFY2(r.out.isEmpty(), r.out.constData());
        QVERIFY2(r.err.contains(stderrHas), qPrintable(r.err));
    }
};

QTEST_APPLESS_MAIN(TestPromptCli)
#include "test_prompt_cli.moc"
