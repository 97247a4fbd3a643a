// Opening models by path: format detection by content, folders, and messages for files
// that are none of ours. Also the memory map underneath every reader.

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/llama2c_reader.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/io/mapped_file.h"

#include <QTest>

#include <bit>
#include <functional>

using novaq::ModelFormat;
using novaq::test::failureOf;
using novaq::test::makeSafetensors;
using novaq::test::toPath;
using novaq::test::writeAll;
namespace fs = std::filesystem;

Q_DECLARE_METATYPE(ModelFormat)

namespace {

std::string oneTensorFile()
{
    const float values[] = {1.0f, 2.0f};
    std::string data(reinterpret_cast<const char*>(values), sizeof(values)); // little-endian host
    return makeSafetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data);
}

} // namespace

class TestModelReader : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void formatNames();
    void notAModel_data();
    void notAModel();
    void damagedModelsReachTheirReader_data();
    void damagedModelsReachTheirReader();
    void missingPath();
    void folders_data();
    void folders();
    void mappedFile();
    void llama2cHeaderSizes_data();
    void llama2cHeaderSizes();
};

void TestModelReader::formatNames()
{
    QCOMPARE(novaq::formatName(ModelFormat::Safetensors), std::string_view("safetensors"));
    QCOMPARE(novaq::formatName(ModelFormat::Novaq), std::string_view("NOVAQ"));
    QCOMPARE(novaq::formatName(ModelFormat::Gguf), std::string_view("GGUF"));
    QCOMPARE(novaq::formatName(ModelFormat::Unknown), std::string_view("unknown"));
    bool hasSafetensors = false;
    bool hasNovaq = false;
    for (const novaq::FormatEntry& entry : novaq::formatTable()) {
        QVERIFY(entry.sniff);
        QVERIFY(entry.open);
        hasSafetensors = hasSafetensors || entry.format == ModelFormat::Safetensors;
        hasNovaq = hasNovaq || entry.format == ModelFormat::Novaq;
    }
    QVERIFY(hasSafetensors);
    QVERIFY(hasNovaq);
}

void TestModelReader::notAModel_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("fileName");
    QTest::addColumn<ModelFormat>("format");
    QTest::addColumn<QString>("description");

    QTest::newRow("text file") << QByteArray("These are not the weights you are looking for.\n") << "notes.txt"
                               << ModelFormat::Unknown << "it is text";
    QTest::newRow("JSON text") << QByteArray("{\"hello\": 1}\n") << "model.json" << ModelFormat::Unknown
                               << "it looks like JSON";
    QTest::newRow("a pickle that is no checkpoint")
        << QByteArray("\x80\x04\x95\x10\0\0\0\0\0\0\0", 11) << "data.pkl" << ModelFormat::Unknown << "Python pickle";
    QTest::newRow("empty file") << QByteArray() << "empty.bin" << ModelFormat::Unknown << "an empty file";
    QTest::newRow("binary") << QByteArray("\x01\x02\x03\xfe\x00\x10", 6) << "blob.bin" << ModelFormat::Unknown
                            << "binary data starting with bytes 01 02 03 fe 00 10";
    QTest::newRow("Git LFS pointer") << QByteArray("version https://git-lfs.github.com/spec/v1\noid sha256:abc\n")
                                     << "weights.bin" << ModelFormat::Unknown << "git lfs pull";
}

void TestModelReader::notAModel()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QString, fileName);
    QFETCH(ModelFormat, format);
    QFETCH(QString, description);

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const fs::path path = toPath(dir.filePath(fileName));
    writeAll(path, std::vector<char>(bytes.begin(), bytes.end()));

    QCOMPARE(novaq::detectFileFormat(path), format);
    const auto failure = failureOf([&] { novaq::openModel(path); });
    QVERIFY2(failure, "a file that is no model was opened");
    QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(failure->message.contains(fileName), qPrintable(failure->message));
    QVERIFY2(failure->message.contains(description), qPrintable(failure->message));
    for (const char* name : {"Supported formats: ", "GGUF", "safetensors", "PyTorch", "ONNX", "llama2.c", "NOVAQ"})
        QVERIFY2(failure->message.contains(name), qPrintable(failure->message));

    // The same file alone in a folder: no model there (or, named *.safetensors, the same message).
    const auto folderFailure = failureOf([&] { novaq::openModel(path.parent_path()); });
    QVERIFY(folderFailure);
    QCOMPARE(folderFailure->kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(folderFailure->message.contains("no model found") || folderFailure->message.contains(description),
             qPrintable(folderFailure->message));
}

void TestModelReader::damagedModelsReachTheirReader_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("fileName");
    QTest::addColumn<ModelFormat>("format");
    // Chosen by content whatever the name says; the format's own reader explains what is wrong.
    QTest::newRow("GGUF stub") << QByteArray("GGUF\x03\0\0\0\x10\0\0\0\0\0\0\0", 16) << "model.gguf"
                               << ModelFormat::Gguf;
    QTest::newRow("GGUF named .safetensors")
        << QByteArray("GGUF\x03\0\0\0\x10\0\0\0\0\0\0\0", 16) << "model.safetensors" << ModelFormat::Gguf;
    QTest::newRow("zip stub") << QByteArray("PK\x03\x04\x14\0\0\0", 8) << "pytorch_model.bin" << ModelFormat::PyTorch;
    // torch.save's legacy stream: protocol 2, then the magic number 0x1950a86a20f9469cfc6c.
    QTest::newRow("legacy pickle stub") << QByteArray("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15)
                                        << "old.pt" << ModelFormat::PyTorch;
}

void TestModelReader::damagedModelsReachTheirReader()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QString, fileName);
    QFETCH(ModelFormat, format);
    QTemporaryDir dir;
    const fs::path path = toPath(dir.filePath(fileName));
    writeAll(path, std::vector<char>(bytes.begin(), bytes.end()));
    QCOMPARE(novaq::detectFileFormat(path), format);
    const auto failure = failureOf([&] { novaq::openModel(path); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(failure->message.contains(fileName), qPrintable(failure->message));
}

void TestModelReader::missingPath()
{
    QTemporaryDir dir;
    const fs::path path = toPath(dir.filePath("does-not-exist"));
    const auto failure = failureOf([&] { novaq::openModel(path); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::Io);
    QCOMPARE(failure->message, QString::fromStdString("no such file or folder: " + path.string()));
}

void TestModelReader::folders_data()
{
    QTest::addColumn<QStringList>("files"); // written as one-tensor safetensors, or text for *.txt
    QTest::addColumn<bool>("opens");
    QTest::addColumn<QString>("expected"); // opened file name, or a substring of the message

    QTest::newRow("one safetensors file among others")
        << QStringList{"weights.safetensors", "README.txt", "tokenizer.txt"} << true << "weights.safetensors";
    QTest::newRow("one file without extension that is safetensors")
        << QStringList{"weights", "README.txt"} << true << "weights";
    QTest::newRow("two safetensors without an index")
        << QStringList{"a.safetensors", "b.safetensors"} << false << "several safetensors files";
    QTest::newRow("two unnamed models") << QStringList{"x", "y"} << false << "several models";
    QTest::newRow("empty folder") << QStringList{} << false << "is empty";
}

void TestModelReader::folders()
{
    QFETCH(QStringList, files);
    QFETCH(bool, opens);
    QFETCH(QString, expected);

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    for (const QString& name : files) {
        if (name.endsWith(".txt"))
            writeAll(toPath(dir.filePath(name)), std::string("just text\n"));
        else
            writeAll(toPath(dir.filePath(name)), oneTensorFile());
    }
    const fs::path folder = toPath(dir.path());
    if (opens) {
        auto reader = novaq::openModel(folder);
        QCOMPARE(reader->files().size(), size_t(1));
        QCOMPARE(QString::fromStdString(reader->files()[0].filename().string()), expected);
        QCOMPARE(reader->tensors().size(), size_t(1));
        return;
    }
    const auto failure = failureOf([&] { novaq::openModel(folder); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(failure->message.contains(expected), qPrintable(failure->message));
    QVERIFY2(failure->message.contains(QString::fromStdString(folder.string())), qPrintable(failure->message));
}

void TestModelReader::mappedFile()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());

    const fs::path empty = toPath(dir.filePath("empty"));
    writeAll(empty, std::string());
    novaq::MappedFile emptyMap(empty);
    QCOMPARE(emptyMap.size(), uint64_t(0));
    QVERIFY(emptyMap.data() == nullptr);
    QVERIFY(emptyMap.bytes().empty());
    emptyMap.release(0, 100); // harmless

    const fs::path file = toPath(dir.filePath("data"));
    std::string content(3 * 4096 + 17, '\0');
    for (size_t i = 0; i < content.size(); ++i)
        content[i] = static_cast<char>(i * 7);
    writeAll(file, content);
    novaq::MappedFile map(file);
    QCOMPARE(map.size(), uint64_t(content.size()));
    QCOMPARE(map.path(), file);
    QVERIFY(std::memcmp(map.data(), content.data(), content.size()) == 0);
    map.release(100, 5000);
    map.release(0, map.size() + 100);
    QVERIFY(std::memcmp(map.data(), content.data(), content.size()) == 0); // pages come back from the file

    novaq::MappedFile moved(std::move(map));
    QCOMPARE(moved.size(), uint64_t(content.size()));
    QVERIFY(map.data() == nullptr); // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    novaq::MappedFile assigned;
    assigned = std::move(moved);
    QCOMPARE(assigned.bytes()[5], static_cast<std::byte>(35));

    const fs::path missing = toPath(dir.filePath("missing.bin"));
    const auto failure = failureOf([&] { novaq::MappedFile m(missing); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::Io);
    QVERIFY2(failure->message.contains("missing.bin"), qPrintable(failure->message));
    QVERIFY2(failure->message.contains("No such file or directory"), qPrintable(failure->message));

    const auto folderFailure = failureOf([&] { novaq::MappedFile m(toPath(dir.path())); });
    QVERIFY(folderFailure);
    QCOMPARE(folderFailure->kind, novaq::ErrorKind::Io);
}

// Found by fuzz_llama2c: the file size a llama2.c header implies was summed without overflow
// checks, after listing every tensor. Dimensions near the 2^20 bound wrapped the size around
// to exactly 28 bytes, so a bare header opened as a model of 2^62 weights (reads past the
// file); 2^20 layers listed 9 million tensors before the size was compared. The size is now
// checked first, in 64 bits without wrapping; real layouts still open.
void TestModelReader::llama2cHeaderSizes_data()
{
    QTest::addColumn<QList<int>>("header");
    QTest::addColumn<int>("fileBytes");
    QTest::addColumn<int>("tensors"); // 0: refused
    QTest::addColumn<QString>("mentions");
    QTest::newRow("tiny, shared classifier") << QList<int>{8, 16, 1, 2, 2, 16, 4} << 3260 << 11 << "";
    QTest::newRow("GQA, separate classifier") << QList<int>{8, 12, 2, 4, 2, -10, 2} << 4684 << 21 << "";
    QTest::newRow("size wraps to 28 bytes")
        << QList<int>{1 << 20, 699047, 1 << 20, 1 << 19, 2, (1 << 20) - 2, 1 << 19} << 28 << 0 << "2^64";
    QTest::newRow("2^20 layers, header only") << QList<int>{8, 16, 1 << 20, 2, 2, 16, 4} << 28 << 0 << "header for";
    // The header cut inside each of its seven fields (read through io/byte_cursor.h): the
    // message names the field and its offset.
    const QList<int> tiny{8, 16, 1, 2, 2, 16, 4};
    const char* fields[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; ++i)
        QTest::newRow(qPrintable(QString("header cut inside ") + fields[i]))
            << tiny.mid(0, i) << 4 * i + 2 << 0
            << QString("llama2.c header at offset %1: %2 (4 bytes) runs past the end of the file (%3 bytes)")
                   .arg(4 * i)
                   .arg(fields[i])
                   .arg(4 * i + 2);
    // A field no checkpoint holds is named with its offset and the rule it breaks.
    QTest::newRow("no layers") << QList<int>{8, 16, 0, 2, 2, 16, 4} << 28 << 0
                               << "at offset 8: n_layers is 0, but it must be 1 to 1048576";
    QTest::newRow("heads do not divide dim")
        << QList<int>{8, 16, 1, 3, 1, 16, 4} << 28 << 0 << "at offset 12: n_heads is 3, but it must divide dim";
    QTest::newRow("kv heads do not divide heads")
        << QList<int>{8, 16, 1, 4, 3, 16, 4} << 28 << 0 << "at offset 16: n_kv_heads is 3, but it must divide n_heads";
    QTest::newRow("odd head size") << QList<int>{6, 16, 1, 2, 2, 16, 4} << 28 << 0
                                   << "at offset 12: n_heads is 2, but it must leave an even head size";
    QTest::newRow("negative seq_len") << QList<int>{8, 16, 1, 2, 2, 16, -4} << 28 << 0
                                      << "at offset 24: seq_len is -4, but it must be 1 to 1048576";
}

void TestModelReader::llama2cHeaderSizes()
{
    QFETCH(QList<int>, header);
    QFETCH(int, fileBytes);
    QFETCH(int, tensors);
    QFETCH(QString, mentions);
    std::string bytes;
    for (int v : header)
        bytes += novaq::test::le(static_cast<uint32_t>(v), 4);
    bytes.resize(static_cast<size_t>(fileBytes), '\0');
    QTemporaryDir dir;
    const fs::path path = toPath(dir.filePath("model.bin"));
    writeAll(path, bytes);
    QCOMPARE(novaq::detectFileFormat(path) == ModelFormat::Llama2c, tensors > 0);
    if (tensors > 0) {
        const auto reader = novaq::openLlama2c(path);
        QCOMPARE(static_cast<int>(reader->tensors().size()), tensors);
        QCOMPARE(reader->tensors().back().offset + reader->tensors().back().nbytes <= static_cast<uint64_t>(fileBytes),
                 true);
        return;
    }
    const auto failure = failureOf([&] { novaq::openLlama2c(path); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(failure->message.contains("model.bin") && failure->message.contains(mentions),
             qPrintable(failure->message));
}

QTEST_APPLESS_MAIN(TestModelReader)
#include "test_model_reader.moc"
