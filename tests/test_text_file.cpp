// readBoundedText (io/text_file.h): the evaluation and calibration texts are read whole, but
// never without bound: not /dev/zero, a pipe or a folder, nothing past the limit.

#include "test_support.h"

#include "novaq/io/error.h"
#include "novaq/io/text_file.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <sys/stat.h>

using novaq::ErrorKind;
using novaq::test::failureOf;
namespace fs = std::filesystem;

Q_DECLARE_METATYPE(novaq::ErrorKind)

class TestTextFile : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void reads_data();
    void reads();
    void refuses_data();
    void refuses();

private:
    QTemporaryDir m_dir;
    fs::path path(const char* name) const { return novaq::test::toPath(m_dir.filePath(QString::fromUtf8(name))); }
};

void TestTextFile::initTestCase()
{
    QVERIFY(m_dir.isValid());
    novaq::test::writeAll(path("small.txt"), std::string("In the beginning\nwas the word.\n"));
    novaq::test::writeAll(path("empty.txt"), std::string());
    novaq::test::writeAll(path("exactly16.txt"), std::string(16, 'a'));
    novaq::test::writeAll(path("seventeen.txt"), std::string(17, 'a'));
    QVERIFY(::mkfifo(path("fifo").c_str(), 0600) == 0);
    QVERIFY(fs::create_directory(path("folder")));
    // Sparse: one byte more than the real limit, without writing a gigabyte.
    QFile big(m_dir.filePath(QStringLiteral("big.txt")));
    QVERIFY(big.open(QIODevice::WriteOnly));
    QVERIFY(big.resize(qint64(novaq::kMaxTextBytes) + 1));
}

void TestTextFile::reads_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<qint64>("limit");
    QTest::addColumn<qint64>("size");
    QTest::newRow("a text") << "small.txt" << qint64(novaq::kMaxTextBytes) << qint64(31);
    QTest::newRow("empty") << "empty.txt" << qint64(novaq::kMaxTextBytes) << qint64(0);
    QTest::newRow("exactly the limit") << "exactly16.txt" << qint64(16) << qint64(16);
}

void TestTextFile::reads()
{
    QFETCH(QString, file);
    QFETCH(qint64, limit);
    QFETCH(qint64, size);
    const fs::path p = path(file.toUtf8().constData());
    const std::string text = novaq::readBoundedText(p, uint64_t(limit));
    QCOMPARE(qint64(text.size()), size);
    const std::vector<char> bytes = novaq::test::readAll(p);
    QCOMPARE(text, std::string(bytes.begin(), bytes.end()));
}

void TestTextFile::refuses_data()
{
    QTest::addColumn<QString>("file"); // in the temporary folder unless absolute
    QTest::addColumn<qint64>("limit");
    QTest::addColumn<ErrorKind>("kind");
    QTest::addColumn<QString>("expected");
    const auto max = qint64(novaq::kMaxTextBytes);
    QTest::newRow("one byte over a small limit")
        << "seventeen.txt" << qint64(16) << ErrorKind::InvalidInput << "the text is 17 bytes, more than the 16 bytes";
    QTest::newRow("sparse, over 1 GiB") << "big.txt" << max << ErrorKind::InvalidInput
                                        << "the text is 1073741825 bytes, more than the 1 GiB";
    QTest::newRow("/dev/zero") << "/dev/zero" << max << ErrorKind::InvalidInput << "not a regular file (a device)";
    QTest::newRow("a FIFO without a writer")
        << "fifo" << max << ErrorKind::InvalidInput << "not a regular file (a pipe)";
    QTest::newRow("a folder") << "folder" << max << ErrorKind::InvalidInput << "not a regular file (a folder)";
    QTest::newRow("missing") << "missing.txt" << max << ErrorKind::Io << "cannot open";
}

void TestTextFile::refuses()
{
    QFETCH(QString, file);
    QFETCH(qint64, limit);
    QFETCH(ErrorKind, kind);
    QFETCH(QString, expected);
    const fs::path p = file.startsWith('/') ? novaq::test::toPath(file) : path(file.toUtf8().constData());
    const auto failure = failureOf([&] { novaq::readBoundedText(p, uint64_t(limit)); });
    QVERIFY2(failure, "accepted");
    QCOMPARE(failure->kind, kind);
    QVERIFY2(failure->message.contains(QString::fromStdString(p.string())), qPrintable(failure->message));
    QVERIFY2(failure->message.contains(expected), qPrintable(failure->message));
}

QTEST_GUILESS_MAIN(TestTextFile)
#include "test_text_file.moc"
