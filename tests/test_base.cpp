// The base helpers every layer uses: io/utf8 (the one UTF-8 check of the readers and the
// tokenizers), io/bytes (little-endian loads and stores), io/byte_cursor (the bounds-checked
// reads of every binary reader), io/units (sizes for people).

#include "novaq/io/byte_cursor.h"
#include "novaq/io/bytes.h"
#include "novaq/io/units.h"
#include "novaq/io/utf8.h"

#include <QTest>

#include <algorithm>
#include <string>

class TestBase : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void wellFormed_data();
    void wellFormed();
    void appendRoundTrips();
    void littleEndian();
    void sizesForPeople_data();
    void sizesForPeople();
    void cursorReadsInOrder();
    void cursorFailuresNameFileContextFieldAndOffset_data();
    void cursorFailuresNameFileContextFieldAndOffset();
    void cursorRanges_data();
    void cursorRanges();
    void cursorReaderWordsItsOwnError();
    void exactAndSiSizes_data();
    void exactAndSiSizes();
};

void TestBase::wellFormed_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<bool>("valid");
    QTest::addColumn<QByteArray>("sanitized");
    const QByteArray fffd("\xEF\xBF\xBD");
    QTest::newRow("empty") << QByteArray() << true << QByteArray();
    QTest::newRow("ascii") << QByteArray("token_embd.weight") << true << QByteArray("token_embd.weight");
    QTest::newRow("two bytes") << QByteArray("caf\xC3\xA9") << true << QByteArray("caf\xC3\xA9");
    QTest::newRow("three bytes") << QByteArray("\xE2\x96\x81the") << true << QByteArray("\xE2\x96\x81the");
    QTest::newRow("four bytes") << QByteArray("\xF0\x9F\x98\x80") << true << QByteArray("\xF0\x9F\x98\x80");
    QTest::newRow("U+10FFFF") << QByteArray("\xF4\x8F\xBF\xBF") << true << QByteArray("\xF4\x8F\xBF\xBF");
    QTest::newRow("above U+10FFFF") << QByteArray("\xF4\x90\x80\x80") << false << fffd + fffd + fffd + fffd;
    QTest::newRow("overlong slash") << QByteArray("\xC0\xAF") << false << fffd + fffd;
    QTest::newRow("overlong three") << QByteArray("\xE0\x80\xAF") << false << fffd + fffd + fffd;
    QTest::newRow("surrogate") << QByteArray("\xED\xA0\x80") << false << fffd + fffd + fffd;
    QTest::newRow("stray continuation") << QByteArray("a\x80z") << false << QByteArray("a") + fffd + "z";
    QTest::newRow("truncated at end") << QByteArray("ok\xE2\x96") << false << QByteArray("ok") + fffd + fffd;
    QTest::newRow("lead then ascii") << QByteArray("\xC3"
                                                   "A")
                                     << false << fffd + "A";
    QTest::newRow("0xFF") << QByteArray("\xFF") << false << fffd;
}

void TestBase::wellFormed()
{
    QFETCH(QByteArray, bytes);
    QFETCH(bool, valid);
    QFETCH(QByteArray, sanitized);
    const std::string_view text(bytes.constData(), size_t(bytes.size()));
    QCOMPARE(novaq::isValidUtf8(text), valid);
    const std::string clean = novaq::sanitizeUtf8(text);
    QCOMPARE(QByteArray(clean.data(), qsizetype(clean.size())), sanitized);
    QVERIFY(novaq::isValidUtf8(clean));
}

void TestBase::appendRoundTrips()
{
    for (char32_t cp :
         {char32_t(0x41), char32_t(0xE9), char32_t(0x2581), char32_t(0xFFFD), char32_t(0x1F600), char32_t(0x10FFFF)}) {
        std::string out;
        novaq::appendUtf8(out, cp);
        char32_t back = 0;
        QCOMPARE(novaq::decodeUtf8(out, 0, back), out.size());
        QCOMPARE(uint32_t(back), uint32_t(cp));
    }
    char32_t untouched = 7;
    QCOMPARE(novaq::decodeUtf8("abc", 3, untouched), size_t(0)); // at the end
    QCOMPARE(uint32_t(untouched), 7u);
}

// The byte order is the file's, not the host's: the same bytes give the same values anywhere.
void TestBase::littleEndian()
{
    const unsigned char bytes[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88, 0xff};
    QCOMPARE(novaq::loadLe<uint16_t>(bytes), uint16_t(0x0201));
    QCOMPARE(novaq::loadLe<uint32_t>(bytes + 1), uint32_t(0x05040302));
    QCOMPARE(novaq::loadLe<uint64_t>(bytes), uint64_t(0x8807060504030201ull));
    QCOMPARE(novaq::loadLe<int64_t>(bytes), int64_t(0x8807060504030201ull)); // negative: sign bit set
    QCOMPARE(novaq::loadLe<int8_t>(bytes + 8), int8_t(-1));
    const unsigned char one[] = {0x00, 0x00, 0x80, 0x3f}; // 1.0f in IEEE 754, little-endian
    QCOMPARE(novaq::loadLe<float>(one), 1.0f);
    unsigned char out[9] = {};
    novaq::storeLe<uint64_t>(out + 1, 0x8807060504030201ull); // any address, unaligned
    QVERIFY(std::equal(out + 1, out + 9, bytes));
    novaq::storeLe<double>(out, -2.5);
    QCOMPARE(novaq::loadLe<double>(out), -2.5);
    novaq::storeLe<uint16_t>(out, 0xbeef);
    QCOMPARE(int(out[0]), 0xef);
    QCOMPARE(int(out[1]), 0xbe);
    // The one big-endian field (a pickle's BINFLOAT): the same bytes read the other way.
    QCOMPARE(novaq::loadBe<uint32_t>(bytes + 1), uint32_t(0x02030405));
    const unsigned char oneBe[] = {0x3f, 0xf0, 0, 0, 0, 0, 0, 0}; // 1.0 as a big-endian double
    QCOMPARE(novaq::loadBe<double>(oneBe), 1.0);
}

void TestBase::sizesForPeople_data()
{
    QTest::addColumn<qulonglong>("bytes");
    QTest::addColumn<QString>("human");
    QTest::addColumn<QString>("thousands");
    QTest::newRow("zero") << 0ull << "0 B"
                          << "0";
    QTest::newRow("below a KiB") << 1023ull << "1023 B"
                                 << "1,023";
    QTest::newRow("one KiB") << 1024ull << "1.0 KiB"
                             << "1,024";
    QTest::newRow("demo model") << 13644256ull << "13.0 MiB"
                                << "13,644,256";
    QTest::newRow("1B model") << 2200293632ull << "2.0 GiB"
                              << "2,200,293,632";
    QTest::newRow("70B model, F16") << 141'000'000'000ull << "131.3 GiB"
                                    << "141,000,000,000";
    QTest::newRow("TiB") << (3ull << 40) << "3.0 TiB"
                         << "3,298,534,883,328";
    QTest::newRow("past TiB stays TiB") << (2048ull << 40) << "2048.0 TiB"
                                        << "2,251,799,813,685,248";
}

void TestBase::sizesForPeople()
{
    QFETCH(qulonglong, bytes);
    QFETCH(QString, human);
    QFETCH(QString, thousands);
    QCOMPARE(QString::fromStdString(novaq::humanBytes(bytes)), human);
    QCOMPARE(QString::fromStdString(novaq::withThousands(bytes)), thousands);
}

void TestBase::cursorReadsInOrder()
{
    const unsigned char raw[] = {0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x80, 0x3f, 'h', 'i', 0xff};
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(raw), sizeof raw);
    novaq::ByteCursor cursor(bytes, "x.bin");
    QCOMPARE(cursor.read<uint16_t>("a"), uint16_t(0x0201));
    QCOMPARE(cursor.read<uint16_t>("b"), uint16_t(0x0403));
    QCOMPARE(cursor.read<float>("c"), 1.0f);
    QCOMPARE(cursor.readBytes(2, "d"), std::string_view("hi"));
    QCOMPARE(cursor.pos(), uint64_t(10));
    QCOMPARE(cursor.remaining(), uint64_t(1));
    cursor.skip(1, "e");
    QCOMPARE(cursor.remaining(), uint64_t(0));
}

void TestBase::cursorFailuresNameFileContextFieldAndOffset_data()
{
    QTest::addColumn<int>("skip");
    QTest::addColumn<int>("want"); // bytes asked for after the skip
    QTest::addColumn<QString>("message");
    QTest::newRow("u32 past the end") << 6 << 4
                                      << "x.bin: token 3 at offset 6: count (4 bytes) runs past the end of "
                                         "the file (8 bytes); the file is truncated, download or copy it again";
    QTest::newRow("bytes past the end") << 0 << 9
                                        << "x.bin: token 3 at offset 0: count (9 bytes) runs past the end of "
                                           "the file (8 bytes); the file is truncated, download or copy it again";
}

void TestBase::cursorFailuresNameFileContextFieldAndOffset()
{
    QFETCH(int, skip);
    QFETCH(int, want);
    QFETCH(QString, message);
    const std::byte raw[8]{};
    novaq::ByteCursor cursor(std::span<const std::byte>(raw, 8), "x.bin");
    cursor.setContext("token 3");
    cursor.skip(static_cast<uint64_t>(skip), "padding");
    try {
        if (want == 4)
            (void)cursor.read<uint32_t>("count");
        else
            (void)cursor.readBytes(static_cast<uint64_t>(want), "count");
        QFAIL("no error");
    } catch (const novaq::Error& e) {
        QCOMPARE(e.kind(), novaq::ErrorKind::InvalidInput);
        QCOMPARE(QString::fromStdString(e.what()), message);
    }
}

// A part of the bytes: reads stop at its end, offsets stay the file's, and what runs past it
// is named with the part. Each row reads a real 16-byte buffer until it runs out.
void TestBase::cursorRanges_data()
{
    QTest::addColumn<int>("begin"); // the range, in the 16 bytes
    QTest::addColumn<int>("length");
    QTest::addColumn<QString>("op"); // what is done in the range after reading one u32
    QTest::addColumn<int>("kind");   // ErrorKind thrown; -1: none
    QTest::addColumn<QString>("message");
    const int invalid = int(novaq::ErrorKind::InvalidInput);
    const int corrupt = int(novaq::ErrorKind::Corrupt);
    QTest::newRow("u32 then u32 fits exactly") << 4 << 8 << "u32" << -1 << "";
    QTest::newRow("u32 then u64 runs past the range")
        << 4 << 8 << "u64" << invalid
        << "x.bin: record 2 at offset 8: size (8 bytes) runs past the end of the central directory (offset 12); "
           "the file is damaged or truncated";
    QTest::newRow("bytes past the range")
        << 0 << 6 << "bytes3" << invalid
        << "x.bin: record 2 at offset 4: name (3 bytes) runs past the end of the central directory (offset 6); "
           "the file is damaged or truncated";
    QTest::newRow("sub-range past the range")
        << 2 << 10 << "range" << invalid
        << "x.bin: record 2 at offset 6: the extra field (7 bytes at offset 6) runs past the end of the central "
           "directory (offset 12); the file is truncated or damaged";
    QTest::newRow("sub-range at the end is empty") << 2 << 10 << "range0" << -1 << "";
    QTest::newRow("seek before the range")
        << 4 << 8 << "seek0" << invalid
        << "x.bin: record 2 at offset 8: local header offset 0 points outside the central directory [4, 12); the "
           "file is damaged or truncated";
    QTest::newRow("seek to the end is allowed") << 4 << 8 << "seek12" << -1 << "";
    QTest::newRow("range past the file")
        << 10 << 8 << "" << invalid
        << "x.bin: at offset 10: the central directory (8 bytes at offset 10) runs past the end of the file "
           "(offset 16); the file is truncated or damaged";
    QTest::newRow("the kind is the reader's")
        << 12 << 4 << "corrupt" << corrupt
        << "x.bin: record 2 at offset 16: size (8 bytes) runs past the end of the central directory (offset 16); "
           "the file is damaged or truncated";
}

void TestBase::cursorRanges()
{
    QFETCH(int, begin);
    QFETCH(int, length);
    QFETCH(QString, op);
    QFETCH(int, kind);
    QFETCH(QString, message);
    std::byte raw[16];
    for (int i = 0; i < 16; ++i)
        raw[i] = std::byte(i);
    const novaq::ErrorKind fileKind = op == "corrupt" ? novaq::ErrorKind::Corrupt : novaq::ErrorKind::InvalidInput;
    const novaq::ByteCursor file(std::span<const std::byte>(raw, 16), "x.bin", fileKind);
    try {
        novaq::ByteCursor dir = file.range(uint64_t(begin), uint64_t(length), "the central directory");
        dir.setContext("record 2");
        QCOMPARE(dir.pos(), uint64_t(begin)); // file offsets
        QCOMPARE(dir.size(), uint64_t(16));
        QCOMPARE(dir.end(), uint64_t(begin + length));
        // The first u32 of the range: the bytes at `begin`, little-endian.
        QCOMPARE(dir.read<uint32_t>("first"),
                 uint32_t(begin | (begin + 1) << 8 | (begin + 2) << 16 | (begin + 3) << 24));
        if (op == "u32")
            QCOMPARE(dir.read<uint32_t>("second"),
                     uint32_t((begin + 4) | (begin + 5) << 8 | (begin + 6) << 16 | (begin + 7) << 24));
        else if (op == "u64" || op == "corrupt")
            (void)dir.read<uint64_t>("size");
        else if (op == "bytes3") {
            QVERIFY(dir.startsWith(std::string_view("\x04\x05", 2)));
            QVERIFY(!dir.startsWith(std::string_view("\x04\x05\x06", 3))); // past the end: no match, no read
            (void)dir.readBytes(3, "name");
        } else if (op == "range")
            (void)dir.range(dir.pos(), 7, "the extra field");
        else if (op == "range0") {
            const novaq::ByteCursor extra = dir.range(dir.end(), 0, "the extra field");
            QCOMPARE(extra.remaining(), uint64_t(0));
        } else if (op == "seek0")
            dir.seek(0, "local header offset");
        else if (op == "seek12") {
            dir.seek(12, "local header offset");
            QCOMPARE(dir.remaining(), uint64_t(0));
        }
        QVERIFY2(kind < 0, "no error");
    } catch (const novaq::Error& e) {
        QVERIFY2(kind >= 0, e.what());
        QCOMPARE(int(e.kind()), kind);
        QCOMPARE(QString::fromStdString(e.what()), message);
    }
}

// A reader that derives words the past-the-end failure its own way (as the pickle reader names
// the opcode); other failures keep the cursor's form.
void TestBase::cursorReaderWordsItsOwnError()
{
    class OpcodeCursor final : public novaq::ByteCursor {
    public:
        using ByteCursor::ByteCursor;
        uint64_t op = 0;

    protected:
        [[noreturn]] void failPastEnd(std::string_view field, uint64_t bytes) const override
        {
            throw novaq::Error(novaq::ErrorKind::InvalidInput,
                               label() + ": the pickle ends inside the " + std::string(field) + " of the opcode at " +
                                   std::to_string(op) + " (" + std::to_string(bytes) + " bytes needed, " +
                                   std::to_string(remaining()) + " left)");
        }
    };
    const std::byte raw[5]{std::byte{'X'}, std::byte{9}, std::byte{0}, std::byte{0}, std::byte{0}};
    OpcodeCursor in(std::span<const std::byte>(raw, 5), "p.pkl");
    in.op = in.pos();
    QCOMPARE(in.read<uint8_t>("opcode"), uint8_t('X'));
    const auto length = in.read<uint32_t>("length");
    QCOMPARE(length, 9u);
    try {
        (void)in.readBytes(length, "text");
        QFAIL("no error");
    } catch (const novaq::Error& e) {
        QCOMPARE(QString::fromStdString(e.what()),
                 QString("p.pkl: the pickle ends inside the text of the opcode at 0 (9 bytes needed, 0 left)"));
    }
}

// Limits stated exactly and sizes given back as options: the same largest units as humanBytes.
void TestBase::exactAndSiSizes_data()
{
    QTest::addColumn<qulonglong>("bytes");
    QTest::addColumn<QString>("exact");
    QTest::addColumn<QString>("si");
    QTest::newRow("300 bytes") << 300ull << "300 bytes"
                               << "0.1MB";
    QTest::newRow("512 MiB") << (512ull << 20) << "512 MiB"
                             << "536.9MB";
    QTest::newRow("1 GiB") << (1ull << 30) << "1 GiB"
                           << "1.1GB";
    QTest::newRow("not a whole MiB") << ((1ull << 30) + 1) << "1073741825 bytes"
                                     << "1.1GB";
    QTest::newRow("demo model, rounded up") << 11734016ull << "11734016 bytes"
                                            << "11.8MB";
    QTest::newRow("TiB") << (2ull << 40) << "2 TiB"
                         << "2.2TB";
}

void TestBase::exactAndSiSizes()
{
    QFETCH(qulonglong, bytes);
    QFETCH(QString, exact);
    QFETCH(QString, si);
    QCOMPARE(QString::fromStdString(novaq::exactBytes(bytes)), exact);
    QCOMPARE(QString::fromStdString(novaq::siBytesAtLeast(bytes)), si);
}

QTEST_APPLESS_MAIN(TestBase)
#include "test_base.moc"
