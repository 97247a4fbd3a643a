#include "novaq/pipeline/report.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/container/manifest.h"
#include "novaq/tensor/dtype.h"
#include "novaq/tensor/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string_view>

namespace novaq {

namespace {

// Figures shown as "exact" instead of a number (see TensorResult::sqnrDb).
constexpr double kExactSqnrDb = 999.0;

std::string format(const char* fmt, double value)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, value);
    return buf;
}

std::string relErrorText(double e)
{
    if (e == 0.0)
        return "0";
    if (!std::isfinite(e))
        return "n/a";
    return e >= 1e-3 ? format("%.4f", e) : format("%.1e", e);
}

std::string sqnrText(double db)
{
    if (db >= kExactSqnrDb)
        return "exact";
    if (!std::isfinite(db))
        return "n/a";
    return format("%.1f", db);
}

std::string ratioText(double ratio) { return ratio > 0 ? format("%.2fx", ratio) : "n/a"; }

uint64_t numelOf(const std::vector<int64_t>& shape)
{
    uint64_t n = 1;
    for (int64_t s : shape)
        n *= static_cast<uint64_t>(std::max<int64_t>(s, 0));
    return n;
}

// "bits=1.5 d=8 b1=8 b2=4 subspaces=4 seed=20260101 ..." with the common keys first.
std::string settingsText(const nlohmann::json& settings)
{
    if (!settings.is_object() || settings.empty())
        return "(none recorded)";
    static constexpr const char* kFirst[] = {"bits", "d", "b1", "b2", "subspaces", "seed"};
    std::vector<std::string> parts;
    auto add = [&](const std::string& key, const nlohmann::json& value) {
        parts.push_back(key + "=" + (value.is_string() ? value.get<std::string>() : value.dump()));
    };
    // A fit (--target-size, --target-bits, --fit-memory) records the smallest preset, where it
    // started, as bits/d/b1/b2; every tensor has its own, so the line says that instead.
    const bool fit = settings.contains("allocation") && settings.at("allocation") == "target";
    if (fit)
        parts.emplace_back("per-tensor presets (fit to target)");
    for (const char* key : kFirst)
        if (settings.contains(key) && !(fit && std::string_view(key) != "subspaces" && std::string_view(key) != "seed"))
            add(key, settings.at(key));
    // An init-capture, not [&]: clang 14 (the fuzz preset's compiler) cannot capture a
    // structured binding.
    for (const auto& [key, value] : settings.items())
        if (std::find_if(std::begin(kFirst), std::end(kFirst), [&name = key](const char* k) { return name == k; }) ==
            std::end(kFirst))
            add(key, value);
    std::string out;
    for (const std::string& p : parts)
        out += (out.empty() ? "" : " ") + p;
    return out;
}

std::string stringField(const nlohmann::json& object, const char* key)
{
    if (object.is_object() && object.contains(key) && object.at(key).is_string())
        return object.at(key).get<std::string>();
    return {};
}

// The tensor rows of formatReportTable: titles, cells and column widths.
struct TensorTable {
    struct Column {
        std::string title;
        bool rightAlign;
    };
    std::vector<Column> columns;
    std::vector<std::vector<std::string>> rows; // the rows shown
    std::vector<size_t> widths;
    size_t head = 0, tail = 0; // rows shown before and after the "... N more ..." line
};

std::vector<std::string> tensorCells(const TensorResult& t, bool withTimes)
{
    std::vector<std::string> row = {t.name,
                                    shapeToString(t.shape),
                                    t.storedAs,
                                    relErrorText(t.relError),
                                    sqnrText(t.sqnrDb),
                                    format("%.2f", t.effectiveBits),
                                    humanBytes(t.bytesIn),
                                    humanBytes(t.bytesOut)};
    if (withTimes)
        row.push_back(format("%.2fs", t.seconds));
    return row;
}

TensorTable tensorTable(const ModelReport& report, bool withTimes, size_t maxRows)
{
    TensorTable table;
    table.columns = {{"tensor", false}, {"shape", false}, {"stored as", false}, {"rel.err", true},
                     {"SQNR dB", true}, {"bits", true},   {"in", true},         {"out", true}};
    if (withTimes)
        table.columns.push_back({"time", true});
    // Which rows are shown: all, or the first and last ones around a "... N more ..." line.
    const size_t n = report.tensors.size();
    table.head = n;
    if (maxRows > 0 && n > maxRows) {
        table.head = (maxRows + 1) / 2;
        table.tail = maxRows - table.head;
    }
    for (size_t i = 0; i < table.head; ++i)
        table.rows.push_back(tensorCells(report.tensors[i], withTimes));
    for (size_t i = n - table.tail; i < n; ++i)
        table.rows.push_back(tensorCells(report.tensors[i], withTimes));
    for (const TensorTable::Column& c : table.columns)
        table.widths.push_back(c.title.size());
    for (const auto& row : table.rows)
        for (size_t c = 0; c < row.size(); ++c)
            table.widths[c] = std::max(table.widths[c], row[c].size());
    return table;
}

// The table's title line, a rule, and its rows around the "... N more tensors ..." line.
void writeTensorTable(std::ostringstream& out, const TensorTable& table, size_t n)
{
    auto line = [&](const std::vector<std::string>& row) {
        std::string text;
        for (size_t c = 0; c < row.size(); ++c) {
            const std::string pad(table.widths[c] - row[c].size(), ' ');
            if (c > 0)
                text += "  ";
            text += table.columns[c].rightAlign ? pad + row[c] : row[c] + (c + 1 < row.size() ? pad : "");
        }
        out << text << '\n';
    };
    std::vector<std::string> titles;
    for (const TensorTable::Column& c : table.columns)
        titles.push_back(c.title);
    line(titles);
    size_t total = 0;
    for (size_t w : table.widths)
        total += w;
    out << std::string(total + 2 * (table.widths.size() - 1), '-') << '\n';
    const size_t head = table.head, tail = table.tail;
    for (size_t i = 0; i < table.rows.size(); ++i) {
        if (i == head && tail + head < n)
            out << "... " << (n - head - tail) << " more tensors ...\n";
        line(table.rows[i]);
    }
    if (head + tail < n && tail == 0)
        out << "... " << (n - head) << " more tensors ...\n";
    out << '\n';
}

// The totals under the table: one "label   value" line each.
void writeTotals(std::ostringstream& out, const ModelReport& report, bool withTimes)
{
    auto totalLine = [&](const std::string& label, const std::string& value) {
        out << label << std::string(label.size() < 24 ? 24 - label.size() : 1, ' ') << value << '\n';
    };
    const size_t n = report.tensors.size();
    const uint64_t params = report.params();
    const size_t quantizedCount =
        size_t(std::count_if(report.tensors.begin(), report.tensors.end(), [](const auto& t) { return t.quantized; }));
    totalLine("tensors", std::to_string(n) + " (" + std::to_string(quantizedCount) + " quantized, " +
                             std::to_string(n - quantizedCount) + " kept)");
    totalLine("parameters", withThousands(params) + " (" + withThousands(report.quantizedParams()) + " quantized)");
    totalLine("source size", humanBytes(report.sourceBytes) + " (" + withThousands(report.sourceBytes) + " bytes" +
                                 (report.sourceFormat.empty() ? "" : ", " + report.sourceFormat) + ")");
    totalLine("output size",
              humanBytes(report.fileBytes) + " (" + withThousands(report.fileBytes) + " bytes, whole file)");
    totalLine("ratio vs source", ratioText(report.ratioVsSource()));
    totalLine("ratio vs 16-bit", ratioText(report.ratioVs16Bit()));
    totalLine("effective bits/weight", format("%.3f", report.effectiveBits()) + " (all overhead included)");
    totalLine("mean rel. error", relErrorText(report.meanRelError()) + " (quantized tensors, weighted by parameters)");
    const std::string worst = report.worstTensor();
    totalLine("worst rel. error", relErrorText(report.worstRelError()) + (worst.empty() ? "" : " (" + worst + ")"));
    if (withTimes)
        totalLine("time", format("%.1f s", report.seconds));
    if (!report.architecture.empty())
        totalLine("architecture", report.architecture);
    totalLine("settings", settingsText(report.settings));
}

} // namespace

uint64_t ModelReport::params() const noexcept
{
    uint64_t n = 0;
    for (const TensorResult& t : tensors)
        n += t.params;
    return n;
}

uint64_t ModelReport::quantizedParams() const noexcept
{
    uint64_t n = 0;
    for (const TensorResult& t : tensors)
        if (t.quantized)
            n += t.params;
    return n;
}

double ModelReport::ratioVsSource() const noexcept
{
    return fileBytes > 0 ? double(sourceBytes) / double(fileBytes) : 0.0;
}

double ModelReport::ratioVs16Bit() const noexcept
{
    return fileBytes > 0 ? 2.0 * double(params()) / double(fileBytes) : 0.0;
}

double ModelReport::effectiveBits() const noexcept
{
    const uint64_t n = params();
    return n > 0 ? 8.0 * double(fileBytes) / double(n) : 0.0;
}

double ModelReport::meanRelError() const noexcept
{
    double weighted = 0.0;
    double weights = 0.0;
    for (const TensorResult& t : tensors) {
        if (!t.quantized)
            continue;
        weighted += t.relError * double(t.params);
        weights += double(t.params);
    }
    return weights > 0 ? weighted / weights : 0.0;
}

// Worst over every tensor: a kept tensor converted from F32 to F16 has a (tiny) error too.
double ModelReport::worstRelError() const noexcept
{
    double worst = 0.0;
    for (const TensorResult& t : tensors)
        worst = std::max(worst, t.relError);
    return worst;
}

std::string ModelReport::worstTensor() const
{
    const TensorResult* worst = nullptr;
    for (const TensorResult& t : tensors)
        if (t.relError > 0 && (!worst || t.relError > worst->relError))
            worst = &t;
    return worst ? worst->name : std::string();
}

nlohmann::json QualityCheck::toJson() const
{
    return {
        {"text", text},
        {"tokens", tokens},
        {"ctx", ctx},
        {"perplexity", perplexity},
        {"original_perplexity", originalPerplexity},
        {"mean_kl", meanKl},
        {"top1_agreement", top1},
    };
}

nlohmann::json ModelReport::toJson() const
{
    nlohmann::json list = nlohmann::json::array();
    for (const TensorResult& t : tensors) {
        list.push_back({
            {"name", t.name},
            {"shape", t.shape},
            {"source_dtype", t.sourceDtype},
            {"quantized", t.quantized},
            {"stored_as", t.storedAs},
            {"rel_error", t.relError},
            {"sqnr_db", t.sqnrDb},
            {"effective_bits", t.effectiveBits},
            {"params", t.params},
            {"bytes_in", t.bytesIn},
            {"bytes_out", t.bytesOut},
            {"seconds", t.seconds},
        });
        if (t.outputError >= 0) {
            list.back()["output_error"] = t.outputError;
            if (t.outputErrorUnrefined >= 0)
                list.back()["output_error_unrefined"] = t.outputErrorUnrefined;
        }
    }
    nlohmann::json totals = {
        {"params", params()},
        {"quantized_params", quantizedParams()},
        {"source_bytes", sourceBytes},
        {"file_bytes", fileBytes},
        {"ratio_vs_source", ratioVsSource()},
        {"ratio_vs_16bit", ratioVs16Bit()},
        {"effective_bits", effectiveBits()},
        {"mean_rel_error", meanRelError()},
        {"worst_rel_error", worstRelError()},
        {"worst_tensor", worstTensor()},
        {"seconds", seconds},
    };
    nlohmann::json json = {
        {"output", output.string()},
        {"source", source},
        {"source_format", sourceFormat},
        {"architecture", architecture},
        {"settings", settings.is_null() ? nlohmann::json::object() : settings},
        {"tensors", std::move(list)},
        {"totals", std::move(totals)},
    };
    if (quality)
        json["quality"] = quality->toJson();
    return json;
}

ModelReport reportFromManifest(const nlohmann::json& manifest, const std::filesystem::path& file, uint64_t fileBytes)
{
    ModelReport report;
    report.output = file;
    report.fileBytes = fileBytes;
    if (manifest.contains("source") && manifest.at("source").is_object()) {
        const nlohmann::json& source = manifest.at("source");
        report.source = stringField(source, "label");
        report.sourceFormat = stringField(source, "format");
        if (source.contains("tensor_bytes") && source.at("tensor_bytes").is_number_unsigned())
            report.sourceBytes = source.at("tensor_bytes").get<uint64_t>();
    }
    report.architecture = stringField(manifest, "architecture");
    if (manifest.contains("settings") && manifest.at("settings").is_object())
        report.settings = manifest.at("settings");
    else
        report.settings = nlohmann::json::object();

    for (const TensorRecord& r : tensorRecords(manifest, fileBytes)) {
        TensorResult t;
        t.name = r.name;
        t.shape = r.shape;
        t.sourceDtype = r.sourceDtype;
        t.quantized = r.encoding == TensorEncoding::Novaq;
        t.storedAs = t.quantized                          ? codecLabel(r.codec)
                     : r.encoding == TensorEncoding::Gguf ? std::string(r.ggml->name)
                                                          : std::string(dtypeInfo(r.dtype).name);
        t.relError = r.relError;
        t.sqnrDb = r.sqnrDb;
        t.effectiveBits = r.effectiveBits;
        t.params = numelOf(r.shape);
        t.bytesIn = r.bytesIn;
        t.bytesOut = r.bytesOut;
        t.outputError = r.outputError;
        report.tensors.push_back(std::move(t));
    }
    return report;
}

std::string formatReportTable(const ModelReport& report, bool withTimes, size_t maxRows)
{
    std::ostringstream out;
    writeTensorTable(out, tensorTable(report, withTimes, maxRows), report.tensors.size());
    writeTotals(out, report, withTimes);
    return out.str();
}

void RunningTotals::add(const TensorResult& tensor) noexcept
{
    ++tensors;
    if (tensor.quantized)
        ++quantizedTensors;
    params += tensor.params;
    bytesIn += tensor.bytesIn;
    bytesOut += tensor.bytesOut;
}

double RunningTotals::ratio() const noexcept { return compressionRatio(bytesIn, bytesOut); }

double RunningTotals::effectiveBits() const noexcept
{
    return params > 0 ? 8.0 * double(bytesOut) / double(params) : 0.0;
}

int Histogram::total() const noexcept
{
    int n = 0;
    for (int c : counts)
        n += c;
    return n;
}

Histogram errorHistogram(std::span<const TensorResult> tensors, int bins)
{
    Histogram h;
    h.counts.assign(size_t(std::clamp(bins, 1, kMaxHistogramBins)), 0);
    std::vector<double> errors;
    for (const TensorResult& t : tensors)
        if (t.quantized && std::isfinite(t.relError))
            errors.push_back(t.relError);
    if (errors.empty())
        return h;
    const auto [lo, hi] = std::minmax_element(errors.begin(), errors.end());
    const double low = *lo;
    const double high = *hi;
    const size_t n = h.counts.size();
    const double width = (high - low) / double(n);
    for (size_t i = 0; i <= n; ++i)
        h.edges.push_back(i == n ? high : low + width * double(i));
    if (!(high > low)) {
        h.counts[0] = int(errors.size());
        return h;
    }
    // The bin is the number of inner edges at or below the error: exact against the edges shown.
    const auto inner = std::span<const double>(h.edges).subspan(1, n - 1);
    for (double e : errors) {
        const auto bin = size_t(std::upper_bound(inner.begin(), inner.end(), e) - inner.begin());
        h.counts[bin] += 1;
    }
    return h;
}

double compressionRatio(uint64_t sourceBytes, uint64_t outputBytes) noexcept
{
    return outputBytes > 0 ? double(sourceBytes) / double(outputBytes) : 0.0;
}

double estimatedSecondsLeft(double elapsedSeconds, double fractionDone) noexcept
{
    if (!(fractionDone > 0.02) || !(elapsedSeconds > 0.5))
        return -1.0;
    if (fractionDone >= 1.0)
        return 0.0;
    return elapsedSeconds * (1.0 - fractionDone) / fractionDone;
}

} // namespace novaq
