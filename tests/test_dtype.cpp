// Element types: the dtype table, IEEE half and bfloat16 conversions (held to a slow
// reference built on double arithmetic), and conversions from unaligned little-endian bytes.

#include "test_support.h"

#include "novaq/codec/encoder.h"
#include "novaq/io/error.h"
#include "novaq/tensor/dtype.h"
#include "novaq/tensor/tensor.h"

#include <QTest>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using novaq::DType;

Q_DECLARE_METATYPE(DType)

namespace {

float bitsToFloat(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t floatToBits(float f) { return std::bit_cast<uint32_t>(f); }

bool isHalfNan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0; }

// The value of a half bit pattern, computed the slow way.
double referenceHalfValue(uint16_t h)
{
    const int sign = (h & 0x8000u) ? -1 : 1;
    const int exponent = (h >> 10) & 0x1F;
    const int mantissa = h & 0x3FF;
    if (exponent == 0x1F)
        return mantissa == 0 ? sign * std::numeric_limits<double>::infinity() : std::nan("");
    if (exponent == 0)
        return sign * std::ldexp(static_cast<double>(mantissa), -24);
    return sign * std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
}

// The half nearest to f (ties to even), as a double, computed the slow way.
double referenceRoundToHalf(float f)
{
    const double a = std::fabs(static_cast<double>(f));
    if (a >= 65520.0)
        return std::copysign(std::numeric_limits<double>::infinity(), f);
    if (a == 0.0)
        return std::copysign(0.0, f);
    const int e = std::max(static_cast<int>(std::floor(std::log2(a))), -14);
    const double ulp = std::ldexp(1.0, e - 10);
    return std::copysign(std::nearbyint(a / ulp) * ulp, f); // default rounding: to nearest, ties to even
}

// The bf16 nearest to f (ties to even), as a double.
double referenceRoundToBf16(float f)
{
    const double a = std::fabs(static_cast<double>(f));
    if (a == 0.0 || std::isinf(a))
        return static_cast<double>(f);
    const int e = std::max(static_cast<int>(std::floor(std::log2(a))), -126);
    const double ulp = std::ldexp(1.0, e - 7);
    const double r = std::nearbyint(a / ulp) * ulp;
    if (r > static_cast<double>(std::numeric_limits<float>::max()))
        return std::copysign(std::numeric_limits<double>::infinity(), f);
    return std::copysign(r, f);
}

bool sameValue(double a, double b) { return a == b && std::signbit(a) == std::signbit(b); }

QByteArray le(uint64_t value, int bytes)
{
    QByteArray out;
    for (int i = 0; i < bytes; ++i)
        out.append(static_cast<char>((value >> (8 * i)) & 0xFF));
    return out;
}

} // namespace

class TestDType : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void table_data();
    void table();
    void nameLookup_data();
    void nameLookup();
    void floatTypes();

    void halfToFloat_data();
    void halfToFloat();
    void halfNan_data();
    void halfNan();
    void floatToHalf_data();
    void floatToHalf();
    void halfExhaustiveRoundTrip();
    void floatToHalfMatchesReference();

    void bf16_data();
    void bf16();
    void bf16Nan();
    void floatToBf16MatchesReference();

    void convertToFloatUnaligned_data();
    void convertToFloatUnaligned();
    void convertFromFloat_data();
    void convertFromFloat();
    void convertFromFloatRejectsIntegers();

    void tensorShapeHelpers_data();
    void tensorShapeHelpers();
    void exitCodes_data();
    void exitCodes();
    void bugsAreNotBadUsage();
};

void TestDType::table_data()
{
    QTest::addColumn<DType>("type");
    QTest::addColumn<QString>("name");
    QTest::addColumn<uint>("bytes");
    QTest::addColumn<bool>("convertible");
    QTest::newRow("F32") << DType::F32 << "F32" << 4u << true;
    QTest::newRow("F16") << DType::F16 << "F16" << 2u << true;
    QTest::newRow("BF16") << DType::BF16 << "BF16" << 2u << true;
    QTest::newRow("F64") << DType::F64 << "F64" << 8u << true;
    QTest::newRow("I64") << DType::I64 << "I64" << 8u << false;
    QTest::newRow("I32") << DType::I32 << "I32" << 4u << false;
    QTest::newRow("I16") << DType::I16 << "I16" << 2u << false;
    QTest::newRow("I8") << DType::I8 << "I8" << 1u << false;
    QTest::newRow("U8") << DType::U8 << "U8" << 1u << false;
    QTest::newRow("Bool spelled BOOL") << DType::Bool << "BOOL" << 1u << false;
}

void TestDType::table()
{
    QFETCH(DType, type);
    QFETCH(QString, name);
    QFETCH(uint, bytes);
    QFETCH(bool, convertible);
    const novaq::DTypeInfo& info = novaq::dtypeInfo(type);
    QCOMPARE(info.type, type);
    QCOMPARE(QString::fromUtf8(info.name.data(), static_cast<qsizetype>(info.name.size())), name);
    QCOMPARE(info.bytes, bytes);
    QCOMPARE(info.convertible, convertible);
    QCOMPARE(novaq::dtypeFromName(name.toStdString()), std::optional<DType>(type));

    QCOMPARE(novaq::allDTypes().size(), size_t(10));
    bool listed = false;
    for (const novaq::DTypeInfo& row : novaq::allDTypes())
        listed = listed || row.type == type;
    QVERIFY(listed);
}

void TestDType::nameLookup_data()
{
    QTest::addColumn<QString>("name");
    QTest::addColumn<bool>("known");
    QTest::newRow("BF16") << "BF16" << true;
    QTest::newRow("BOOL") << "BOOL" << true;
    QTest::newRow("lower case bf16 is not on-disk spelling") << "bf16" << false;
    QTest::newRow("Bool in enum spelling") << "Bool" << false;
    QTest::newRow("F8_E4M3 not supported") << "F8_E4M3" << false;
    QTest::newRow("empty") << "" << false;
    QTest::newRow("trailing space") << "F32 " << false;
}

void TestDType::nameLookup()
{
    QFETCH(QString, name);
    QFETCH(bool, known);
    QCOMPARE(novaq::dtypeFromName(name.toStdString()).has_value(), known);
}

void TestDType::halfToFloat_data()
{
    QTest::addColumn<uint>("bits");
    QTest::addColumn<float>("value");
    QTest::newRow("one 0x3C00") << 0x3C00u << 1.0f;
    QTest::newRow("minus two 0xC000") << 0xC000u << -2.0f;
    QTest::newRow("max normal 65504 0x7BFF") << 0x7BFFu << 65504.0f;
    QTest::newRow("min normal 2^-14 0x0400") << 0x0400u << std::ldexp(1.0f, -14);
    QTest::newRow("smallest subnormal 2^-24 0x0001") << 0x0001u << std::ldexp(1.0f, -24);
    QTest::newRow("largest subnormal 0x03FF") << 0x03FFu << std::ldexp(1023.0f, -24);
    QTest::newRow("negative subnormal 0x8200") << 0x8200u << -std::ldexp(512.0f, -24);
    QTest::newRow("one third 0x3555") << 0x3555u << 0.333251953125f;
    QTest::newRow("positive zero") << 0x0000u << 0.0f;
    QTest::newRow("negative zero") << 0x8000u << -0.0f;
    QTest::newRow("+inf 0x7C00") << 0x7C00u << std::numeric_limits<float>::infinity();
    QTest::newRow("-inf 0xFC00") << 0xFC00u << -std::numeric_limits<float>::infinity();
}

void TestDType::halfToFloat()
{
    QFETCH(uint, bits);
    QFETCH(float, value);
    const float f = novaq::halfToFloat(static_cast<uint16_t>(bits));
    QCOMPARE(floatToBits(f), floatToBits(value)); // bit-exact, so the sign of zero counts
    QCOMPARE(novaq::floatToHalf(value), static_cast<uint16_t>(bits));
}

void TestDType::halfNan_data()
{
    QTest::addColumn<uint>("bits");
    QTest::newRow("quiet NaN 0x7E00") << 0x7E00u;
    QTest::newRow("signalling NaN 0x7C01") << 0x7C01u;
    QTest::newRow("negative NaN 0xFE00") << 0xFE00u;
    QTest::newRow("all ones 0xFFFF") << 0xFFFFu;
}

void TestDType::halfNan()
{
    QFETCH(uint, bits);
    const float f = novaq::halfToFloat(static_cast<uint16_t>(bits));
    QVERIFY(std::isnan(f));
    QCOMPARE(std::signbit(f), (bits & 0x8000u) != 0);
    QVERIFY(isHalfNan(novaq::floatToHalf(f)));
    QVERIFY(isHalfNan(novaq::floatToHalf(std::numeric_limits<float>::quiet_NaN())));
    QVERIFY(isHalfNan(novaq::floatToHalf(bitsToFloat(0x7F800001u)))); // payload only in low bits: still NaN
}

void TestDType::floatToHalf_data()
{
    QTest::addColumn<float>("value");
    QTest::addColumn<uint>("bits");
    const float u = std::ldexp(1.0f, -24); // smallest subnormal
    QTest::newRow("1 + half ulp ties to even 1.0") << 1.0f + std::ldexp(1.0f, -11) << 0x3C00u;
    QTest::newRow("1 + 3 half ulps ties to even 0x3C02") << 1.0f + 3 * std::ldexp(1.0f, -11) << 0x3C02u;
    QTest::newRow("just above a tie rounds up") << 1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20) << 0x3C01u;
    QTest::newRow("just below a tie rounds down") << 1.0f + std::ldexp(1.0f, -11) - std::ldexp(1.0f, -20) << 0x3C00u;
    QTest::newRow("-1 - half ulp ties to even") << -(1.0f + std::ldexp(1.0f, -11)) << 0xBC00u;
    QTest::newRow("65519 rounds to max 65504") << 65519.0f << 0x7BFFu;
    QTest::newRow("65520 ties to even inf") << 65520.0f << 0x7C00u;
    QTest::newRow("1e6 overflows to inf") << 1.0e6f << 0x7C00u;
    QTest::newRow("-1e6 overflows to -inf") << -1.0e6f << 0xFC00u;
    QTest::newRow("float max overflows to inf") << std::numeric_limits<float>::max() << 0x7C00u;
    QTest::newRow("half of smallest subnormal ties to zero") << 0.5f * u << 0x0000u;
    QTest::newRow("above half of smallest subnormal rounds up") << 0.5f * u * 1.0001f << 0x0001u;
    QTest::newRow("1.5 subnormal units ties to even 2") << 1.5f * u << 0x0002u;
    QTest::newRow("2.5 subnormal units ties to even 2") << 2.5f * u << 0x0002u;
    QTest::newRow("quarter subnormal unit is zero") << 0.25f * u << 0x0000u;
    QTest::newRow("negative tiny is negative zero") << -0.25f * u << 0x8000u;
    QTest::newRow("float subnormal is zero") << bitsToFloat(0x00000001u) << 0x0000u;
    QTest::newRow("largest subnormal + half unit ties to min normal") << std::ldexp(1023.5f, -24) << 0x0400u;
    QTest::newRow("0.1") << 0.1f << 0x2E66u;
    QTest::newRow("-0.0 keeps its sign") << -0.0f << 0x8000u;
}

void TestDType::floatToHalf()
{
    QFETCH(float, value);
    QFETCH(uint, bits);
    QCOMPARE(novaq::floatToHalf(value), static_cast<uint16_t>(bits));
}

void TestDType::halfExhaustiveRoundTrip()
{
    int nans = 0;
    for (uint32_t h = 0; h <= 0xFFFFu; ++h) {
        const auto bits = static_cast<uint16_t>(h);
        const float f = novaq::halfToFloat(bits);
        const double expected = referenceHalfValue(bits);
        if (std::isnan(expected)) {
            ++nans;
            QVERIFY2(std::isnan(f), qPrintable(QString::number(h, 16)));
            QVERIFY2(isHalfNan(novaq::floatToHalf(f)), qPrintable(QString::number(h, 16)));
            continue;
        }
        QVERIFY2(sameValue(static_cast<double>(f), expected), qPrintable(QString::number(h, 16)));
        QCOMPARE(novaq::floatToHalf(f), bits);
    }
    QCOMPARE(nans, 2 * 1023);
}

void TestDType::floatToHalfMatchesReference()
{
    // Random bit patterns cover every exponent; the second half concentrates on the half
    // range, where rounding is exercised densely.
    std::mt19937 rng(1234);
    for (int i = 0; i < 400000; ++i) {
        uint32_t bits = rng();
        if (i % 2 == 1)
            bits = (bits & 0x807FFFFFu) | ((100u + rng() % 45u) << 23); // exponents 2^-27 .. 2^17
        const float f = bitsToFloat(bits);
        if (std::isnan(f))
            continue;
        const double got = static_cast<double>(novaq::halfToFloat(novaq::floatToHalf(f)));
        const double expected = referenceRoundToHalf(f);
        QVERIFY2(sameValue(got, expected), qPrintable(QStringLiteral("float bits 0x%1: got %2, expected %3")
                                                          .arg(bits, 8, 16, QLatin1Char('0'))
                                                          .arg(got, 0, 'g', 17)
                                                          .arg(expected, 0, 'g', 17)));
    }
}

void TestDType::bf16_data()
{
    QTest::addColumn<float>("value");
    QTest::addColumn<uint>("bits");
    QTest::addColumn<float>("back");
    const float tie = std::ldexp(1.0f, -8);
    QTest::newRow("one") << 1.0f << 0x3F80u << 1.0f;
    QTest::newRow("minus two") << -2.0f << 0xC000u << -2.0f;
    QTest::newRow("1 + half ulp ties to even 1") << 1.0f + tie << 0x3F80u << 1.0f;
    QTest::newRow("1 + 3 half ulps ties to even") << 1.0f + 3 * tie << 0x3F82u << 1.0f + 4 * tie;
    QTest::newRow("just above a tie rounds up") << 1.0f + tie + std::ldexp(1.0f, -20) << 0x3F81u << 1.0f + 2 * tie;
    QTest::newRow("pi") << 3.14159265f << 0x4049u << 3.140625f;
    QTest::newRow("+inf") << std::numeric_limits<float>::infinity() << 0x7F80u
                          << std::numeric_limits<float>::infinity();
    QTest::newRow("float max rounds to inf")
        << std::numeric_limits<float>::max() << 0x7F80u << std::numeric_limits<float>::infinity();
    QTest::newRow("negative zero") << -0.0f << 0x8000u << -0.0f;
    QTest::newRow("float subnormal kept") << bitsToFloat(0x00010000u) << 0x0001u << bitsToFloat(0x00010000u);
}

void TestDType::bf16()
{
    QFETCH(float, value);
    QFETCH(uint, bits);
    QFETCH(float, back);
    QCOMPARE(novaq::floatToBf16(value), static_cast<uint16_t>(bits));
    QCOMPARE(floatToBits(novaq::bf16ToFloat(static_cast<uint16_t>(bits))), floatToBits(back));
}

void TestDType::bf16Nan()
{
    for (uint32_t bits : {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu}) {
        const uint16_t b = novaq::floatToBf16(bitsToFloat(bits));
        QVERIFY2(std::isnan(novaq::bf16ToFloat(b)), qPrintable(QString::number(bits, 16)));
        QCOMPARE((b & 0x8000u) != 0, (bits & 0x80000000u) != 0);
    }
    for (uint32_t b = 0; b <= 0xFFFFu; ++b) { // exhaustive round trip of bf16
        const float f = novaq::bf16ToFloat(static_cast<uint16_t>(b));
        if (std::isnan(f))
            QVERIFY(std::isnan(novaq::bf16ToFloat(novaq::floatToBf16(f))));
        else
            QCOMPARE(novaq::floatToBf16(f), static_cast<uint16_t>(b));
    }
}

void TestDType::floatToBf16MatchesReference()
{
    std::mt19937 rng(99);
    for (int i = 0; i < 200000; ++i) {
        const uint32_t bits = rng();
        const float f = bitsToFloat(bits);
        if (std::isnan(f))
            continue;
        const double got = static_cast<double>(novaq::bf16ToFloat(novaq::floatToBf16(f)));
        QVERIFY2(sameValue(got, referenceRoundToBf16(f)), qPrintable(QString::number(bits, 16)));
    }
}

void TestDType::convertToFloatUnaligned_data()
{
    QTest::addColumn<DType>("type");
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QList<float>>("expected");

    auto f32 = [](float f) { return le(floatToBits(f), 4); };
    auto f64 = [](double d) { return le(std::bit_cast<uint64_t>(d), 8); };
    QTest::newRow("F32") << DType::F32 << (f32(1.5f) + f32(-2.0f) + f32(1e-3f)) << QList<float>{1.5f, -2.0f, 1e-3f};
    QTest::newRow("F16") << DType::F16 << (le(0x3C00, 2) + le(0xC000, 2) + le(0x7BFF, 2) + le(0x0001, 2))
                         << QList<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)};
    QTest::newRow("BF16") << DType::BF16 << (le(0x3F80, 2) + le(0xC000, 2) + le(0x4049, 2))
                          << QList<float>{1.0f, -2.0f, 3.140625f};
    QTest::newRow("F64") << DType::F64 << (f64(0.25) + f64(-1e10)) << QList<float>{0.25f, -1e10f};
    QTest::newRow("I64") << DType::I64 << (le(static_cast<uint64_t>(-5), 8) + le(uint64_t(1) << 40, 8))
                         << QList<float>{-5.0f, 1099511627776.0f};
    QTest::newRow("I32") << DType::I32 << (le(static_cast<uint32_t>(-70000), 4) + le(123456, 4))
                         << QList<float>{-70000.0f, 123456.0f};
    QTest::newRow("I16") << DType::I16 << (le(static_cast<uint16_t>(-300), 2) + le(32767, 2))
                         << QList<float>{-300.0f, 32767.0f};
    QTest::newRow("I8") << DType::I8 << (le(0x80, 1) + le(0x7F, 1) + le(0xFF, 1))
                        << QList<float>{-128.0f, 127.0f, -1.0f};
    QTest::newRow("U8") << DType::U8 << (le(0xFF, 1) + le(0, 1) + le(7, 1)) << QList<float>{255.0f, 0.0f, 7.0f};
    QTest::newRow("BOOL") << DType::Bool << (le(0, 1) + le(1, 1) + le(2, 1)) << QList<float>{0.0f, 1.0f, 1.0f};
}

void TestDType::convertToFloatUnaligned()
{
    QFETCH(DType, type);
    QFETCH(QByteArray, bytes);
    QFETCH(QList<float>, expected);
    const size_t count = static_cast<size_t>(expected.size());
    QCOMPARE(static_cast<size_t>(bytes.size()), count * novaq::dtypeInfo(type).bytes);
    for (int misalign = 0; misalign < 8; ++misalign) { // every offset against an 8-aligned base
        std::vector<uint64_t> storage(static_cast<size_t>(bytes.size()) / 8 + 3);
        auto* base = reinterpret_cast<std::byte*>(storage.data()) + misalign;
        std::memcpy(base, bytes.constData(), static_cast<size_t>(bytes.size()));
        std::vector<float> out(count, -777.0f);
        novaq::convertToFloat(type, base, count, out.data());
        for (size_t i = 0; i < count; ++i)
            QCOMPARE(floatToBits(out[i]), floatToBits(expected[static_cast<qsizetype>(i)]));
    }
}

void TestDType::convertFromFloat_data()
{
    QTest::addColumn<DType>("type");
    QTest::addColumn<QByteArray>("expected");
    QTest::newRow("F32") << DType::F32 << (le(0x3F800000u, 4) + le(0xC0000000u, 4) + le(0x7F800000u, 4));
    QTest::newRow("F16") << DType::F16 << (le(0x3C00, 2) + le(0xC000, 2) + le(0x7C00, 2));
    QTest::newRow("BF16") << DType::BF16 << (le(0x3F80, 2) + le(0xC000, 2) + le(0x7F80, 2));
}

void TestDType::convertFromFloat()
{
    QFETCH(DType, type);
    QFETCH(QByteArray, expected);
    const float in[] = {1.0f, -2.0f, std::numeric_limits<float>::infinity()};
    std::vector<std::byte> out(static_cast<size_t>(expected.size()) + 1);
    novaq::convertFromFloat(type, in, 3, out.data() + 1); // unaligned destination
    QCOMPARE(QByteArray(reinterpret_cast<const char*>(out.data()) + 1, expected.size()), expected);

    std::vector<float> back(3);
    novaq::convertToFloat(type, out.data() + 1, 3, back.data());
    for (size_t i = 0; i < 3; ++i)
        QCOMPARE(back[i], in[i]);
}

void TestDType::convertFromFloatRejectsIntegers()
{
    const float in[] = {1.0f};
    std::byte out[8]{};
    for (DType type : {DType::I32, DType::U8, DType::Bool, DType::F64}) {
        try {
            novaq::convertFromFloat(type, in, 1, out);
            QFAIL("convertFromFloat accepted a type it cannot write");
        } catch (const novaq::Error& e) {
            QCOMPARE(e.kind(), novaq::ErrorKind::InvalidArgument);
            QVERIFY2(QString::fromStdString(e.what()).contains(QString::fromUtf8(
                         novaq::dtypeInfo(type).name.data(), qsizetype(novaq::dtypeInfo(type).name.size()))),
                     e.what());
            QVERIFY2(QString::fromStdString(e.what()).contains("BF16"), e.what());
        }
    }
}

void TestDType::tensorShapeHelpers_data()
{
    QTest::addColumn<QList<qint64>>("shape");
    QTest::addColumn<qint64>("numel");
    QTest::addColumn<qint64>("rows");
    QTest::addColumn<qint64>("cols");
    QTest::addColumn<QString>("text");
    QTest::newRow("matrix") << QList<qint64>{4096, 256} << qint64(1048576) << qint64(4096) << qint64(256)
                            << "[4096, 256]";
    QTest::newRow("rank 0 scalar") << QList<qint64>{} << qint64(1) << qint64(1) << qint64(1) << "[]";
    QTest::newRow("rank 1 vector") << QList<qint64>{7} << qint64(7) << qint64(7) << qint64(1) << "[7]";
    QTest::newRow("rank 3") << QList<qint64>{2, 3, 4} << qint64(24) << qint64(2) << qint64(12) << "[2, 3, 4]";
    QTest::newRow("zero size") << QList<qint64>{0, 5} << qint64(0) << qint64(0) << qint64(5) << "[0, 5]";
}

void TestDType::tensorShapeHelpers()
{
    QFETCH(QList<qint64>, shape);
    QFETCH(qint64, numel);
    QFETCH(qint64, rows);
    QFETCH(qint64, cols);
    QFETCH(QString, text);
    novaq::TensorInfo t;
    t.shape.assign(shape.begin(), shape.end());
    QCOMPARE(t.numel(), numel);
    QCOMPARE(t.rows(), rows);
    QCOMPARE(t.cols(), cols);
    QCOMPARE(QString::fromStdString(novaq::shapeToString(t.shape)), text);
}

void TestDType::exitCodes_data()
{
    QTest::addColumn<int>("kind");
    QTest::addColumn<int>("code");
    QTest::newRow("InvalidArgument") << int(novaq::ErrorKind::InvalidArgument) << 2;
    QTest::newRow("InvalidInput") << int(novaq::ErrorKind::InvalidInput) << 3;
    QTest::newRow("Unsupported") << int(novaq::ErrorKind::Unsupported) << 4;
    QTest::newRow("Io") << int(novaq::ErrorKind::Io) << 5;
    QTest::newRow("Corrupt") << int(novaq::ErrorKind::Corrupt) << 6;
    QTest::newRow("Network") << int(novaq::ErrorKind::Network) << 7;
    QTest::newRow("Cancelled") << int(novaq::ErrorKind::Cancelled) << 130;
    QTest::newRow("Internal") << int(novaq::ErrorKind::Internal) << 1;
}

void TestDType::exitCodes()
{
    QFETCH(int, kind);
    QFETCH(int, code);
    QCOMPARE(novaq::exitCodeFor(static_cast<novaq::ErrorKind>(kind)), code);
}

// Regression: broken invariants threw the InvalidArgument kind, so the CLI called a bug "bad
// usage" (exit 2). They are ErrorKind::Internal now (exit 1, "please report it").
void TestDType::bugsAreNotBadUsage()
{
    const std::vector<float> a(4, 1.0f), b(3, 1.0f);
    novaq::ErrorKind kind{};
    const std::string message = novaq::test::failureMessage([&] { (void)novaq::relativeError(a, b); }, &kind);
    QCOMPARE(int(kind), int(novaq::ErrorKind::Internal));
    QVERIFY2(message.rfind("internal: ", 0) == 0, message.c_str());
    QCOMPARE(novaq::exitCodeFor(kind), 1);
}

// The four float types and nothing else: what compress checks for NaN and export keeps as floats.
void TestDType::floatTypes()
{
    for (const novaq::DTypeInfo& info : novaq::allDTypes()) {
        const bool expected = info.name == "F32" || info.name == "F16" || info.name == "BF16" || info.name == "F64";
        QVERIFY2(novaq::isFloatDType(info.type) == expected, std::string(info.name).c_str());
    }
}

QTEST_APPLESS_MAIN(TestDType)
#include "test_dtype.moc"
