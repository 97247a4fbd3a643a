// Issue 18: with calibration text a size fit spends its bytes by the model's measured
// sensitivity to each tensor (pipeline/sensitivity.h) instead of the role table. Checked: what
// is measured (every matrix, nothing else, the same numbers twice, first order in the error),
// that the fit follows it, that the run writes what `inspect` plans, and the refusals.

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/inspect.h"
#include "novaq/pipeline/sensitivity.h"
#include "novaq/text/tokenizer.h"

#include <QObject>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <map>

using namespace novaq;
using novaq::test::demoModelDir;
using novaq::test::textDir;

namespace {

bool isMatrix(const std::string& name)
{
    return name.find("_proj") != std::string::npos || name.find("embed_tokens") != std::string::npos ||
           name.find("lm_head") != std::string::npos;
}

Sensitivity measureDemo(double relativeError, int64_t tokens = 256)
{
    const std::unique_ptr<ModelReader> reader = openModel(demoModelDir());
    const std::unique_ptr<Tokenizer> tokenizer = findTokenizer(*reader, demoModelDir());
    SensitivityOptions o;
    o.text = textDir() / "kjv_calibration.txt";
    o.tokens = tokens;
    o.relativeError = relativeError;
    return measureSensitivity(*reader, *tokenizer, o);
}

// Bits per weight the plan gives each tensor, by name.
std::map<std::string, double> bitsByName(const ModelInspection& m)
{
    std::map<std::string, double> out;
    for (const TensorInspection& t : m.tensors)
        out[t.info.name] = t.quantize ? 8.0 * double(t.estimatedBytes) / double(t.info.numel()) : 16.0;
    return out;
}

} // namespace

class TestSensitivity : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void measuresEveryMatrixAndNothingElse();
    void sameNumbersTwice();
    void firstOrderInTheError();
    void fitFollowsTheSensitivity();
    void runWritesWhatInspectPlans();
    void shortTextIsRefusedByName();
};

// Every matrix the runtime multiplies gets a positive figure; norms get none; the unperturbed
// model's NLL on the windows is a real one (below a uniform guess over the vocabulary).
void TestSensitivity::measuresEveryMatrixAndNothingElse()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    const Sensitivity s = measureDemo(0.01);
    const std::unique_ptr<ModelReader> reader = openModel(demoModelDir());
    QCOMPARE(s.perTensor.size(), reader->tensors().size());
    QCOMPARE(s.tokens, int64_t(256));
    int matrices = 0;
    for (size_t i = 0; i < s.perTensor.size(); ++i) {
        const std::string& name = reader->tensors()[i].name;
        if (isMatrix(name)) {
            QVERIFY2(s.perTensor[i] > 0, name.c_str());
            ++matrices;
        } else {
            QVERIFY2(s.perTensor[i] == 0, name.c_str());
        }
    }
    QCOMPARE(matrices, 6 * 7 + 2);
    QVERIFY(s.baseNll > 0 && s.baseNll < std::log(4096.0));
}

void TestSensitivity::sameNumbersTwice()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    const Sensitivity a = measureDemo(0.01), b = measureDemo(0.01);
    QVERIFY(a.perTensor == b.perTensor);
    QCOMPARE(a.baseNll, b.baseNll);
}

// KL grows with the square of small logit changes, i.e. linearly in the relative squared error:
// halving the noise's variance gives nearly the same figure per unit of error, for the sum
// and for each of the most sensitive tensors.
void TestSensitivity::firstOrderInTheError()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    const Sensitivity a = measureDemo(0.01), b = measureDemo(0.005);
    double sumA = 0, sumB = 0;
    for (size_t i = 0; i < a.perTensor.size(); ++i) {
        sumA += a.perTensor[i];
        sumB += b.perTensor[i];
        if (a.perTensor[i] > 0.01) { // the embedding, the output layer, block 0's largest
            const double ratio = a.perTensor[i] / b.perTensor[i];
            QVERIFY2(ratio > 0.7 && ratio < 1.4, qPrintable(QString::number(ratio)));
        }
    }
    QVERIFY2(sumA / sumB > 0.8 && sumA / sumB < 1.25, qPrintable(QString::number(sumA / sumB)));
}

// With calibration text the fit is weighed by sensitivity: it says so, predicts a KL, lands
// within 2% under the target, differs from the role table's plan, and of two tensors of the
// same shape never gives the less sensitive one more bits.
void TestSensitivity::fitFollowsTheSensitivity()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    const std::unique_ptr<ModelReader> reader = openModel(demoModelDir());
    const uint64_t target = 4200000;
    const std::filesystem::path text = textDir() / "kjv_calibration.txt";
    const TargetFit roles = fitToTarget(*reader, demoModelDir(), target, 0, 4, "--target-size 4200000");
    const TargetFit measured = fitToTarget(*reader, demoModelDir(), target, 0, 4, "--target-size 4200000", 0, text);
    QCOMPARE(roles.inspection.sensitivityTokens, int64_t(0));
    QCOMPARE(measured.inspection.sensitivityTokens, int64_t(1024));
    QVERIFY(measured.inspection.predictedKl > 0);
    const uint64_t bytes = measured.inspection.estimatedFileBytes();
    QVERIFY2(bytes <= target && bytes >= target * 98 / 100, qPrintable(QString::number(bytes)));
    QVERIFY(bitsByName(roles.inspection) != bitsByName(measured.inspection));

    const std::shared_ptr<const Sensitivity> s = sensitivityFor(*reader, demoModelDir(), text);
    QCOMPARE(s.get(), sensitivityFor(*reader, demoModelDir(), text).get()); // measured once
    const auto bits = bitsByName(measured.inspection);
    const auto& tensors = reader->tensors();
    int pairs = 0;
    for (size_t i = 0; i < tensors.size(); ++i)
        for (size_t j = 0; j < tensors.size(); ++j)
            if (i != j && isMatrix(tensors[i].name) && tensors[i].shape == tensors[j].shape &&
                s->perTensor[i] > s->perTensor[j]) {
                QVERIFY2(bits.at(tensors[i].name) >= bits.at(tensors[j].name),
                         (tensors[i].name + " vs " + tensors[j].name).c_str());
                ++pairs;
            }
    QVERIFY(pairs > 100);
    // The figures a report shows.
    const nlohmann::json j = measured.inspection.toJson();
    QCOMPARE(j["target"]["allocation"].get<std::string>(), std::string("sensitivity"));
    QVERIFY(formatInspection(measured.inspection).find("allocation              by sensitivity") != std::string::npos);
}

// `novaq local --target-size --calibration` writes the plan `inspect` shows with the same text,
// and records how it was allocated.
void TestSensitivity::runWritesWhatInspectPlans()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    QTemporaryDir dir;
    const std::filesystem::path text = textDir() / "kjv_calibration.txt";
    const uint64_t target = 3300000;
    CompressOptions o;
    o.input = demoModelDir();
    o.output = std::filesystem::path(dir.path().toStdString()) / "fit.novaq";
    o.targetBytes = target;
    o.targetText = "--target-size 3300000";
    o.calibration = text;
    o.calibrationTokens = 512;
    o.threads = 2;
    const ModelReport report = compressModel(o, nullptr, nullptr);
    QCOMPARE(report.settings["target"]["allocation"].get<std::string>(), std::string("sensitivity"));
    QCOMPARE(report.settings["target"]["sensitivity_tokens"].get<int64_t>(), int64_t(1024));
    const uint64_t written = std::filesystem::file_size(o.output);
    QVERIFY2(written <= target && written >= target * 98 / 100, qPrintable(QString::number(written)));

    const TargetFit plan = fitToTarget(demoModelDir(), target, 0, 4, "--target-size 3300000", text);
    std::map<std::string, std::string> planned, stored;
    for (const TensorInspection& t : plan.inspection.tensors)
        planned[t.info.name] = t.plannedAs;
    for (const TensorResult& t : report.tensors)
        stored[t.name] = t.storedAs;
    // The run plans again as each tensor's real size comes in (compress.cpp), so a late tensor
    // may move a step (one did when this was written); the rest are stored as planned.
    QCOMPARE(stored.size(), planned.size());
    size_t same = 0;
    for (const auto& [name, label] : planned) {
        same += stored[name] == label;
        if (stored[name] != label)
            qInfo("%s: planned %s, stored %s", name.c_str(), label.c_str(), stored[name].c_str());
    }
    QVERIFY2(planned.size() - same <= 2, qPrintable(QString::number(planned.size() - same)));
}

void TestSensitivity::shortTextIsRefusedByName()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    QTemporaryDir dir;
    const std::filesystem::path text = std::filesystem::path(dir.path().toStdString()) / "short.txt";
    test::writeAll(text, std::string("In the beginning.\n"));
    const std::unique_ptr<ModelReader> reader = openModel(demoModelDir());
    try {
        (void)fitToTarget(*reader, demoModelDir(), 4200000, 0, 4, "--target-size 4200000", 0, text);
        QFAIL("a text shorter than one window was accepted");
    } catch (const Error& e) {
        QCOMPARE(e.kind(), ErrorKind::InvalidArgument);
        QVERIFY2(std::string(e.what()).find("short.txt") != std::string::npos, e.what());
    }
}

QTEST_GUILESS_MAIN(TestSensitivity)
#include "test_sensitivity.moc"
