#include "ui/source_models.h"

#include "ui/explanations.h"
#include "ui/format.h"

#include "novaq/io/error.h"
#include "novaq/io/system_memory.h"

#include <QColor>
#include <QDateTime>
#include <QLocale>

#include <algorithm>
#include <map>

namespace novaq::ui {

namespace {

QString countText(uint64_t n) { return QLocale().toString(qulonglong(n)); }

// "2026-01-05T10:00:00.000Z" -> the date in the user's short format.
QString dateText(const std::string& iso)
{
    const QDateTime t = QDateTime::fromString(QString::fromStdString(iso), Qt::ISODateWithMs);
    if (!t.isValid())
        return QString::fromStdString(iso.substr(0, 10));
    return QLocale().toString(t.date(), QLocale::ShortFormat);
}

QVariant rightAligned() { return QVariant(int(Qt::AlignRight | Qt::AlignVCenter)); }

// The hint of a model too large for this computer, in the banner red of the app (legible on
// light and dark palettes alike).
QColor tooLargeColor() { return QColor(0xd9, 0x48, 0x5f); }

bool endsWithGguf(const std::string& path)
{
    return path.size() > 5 && QString::fromStdString(path.substr(path.size() - 5)).toLower() == QStringLiteral(".gguf");
}

} // namespace

MemoryHint memoryHint(uint64_t bytes, std::optional<uint64_t> physical)
{
    MemoryHint hint;
    const MemoryFit fit = memoryFit(bytes, physical.value_or(0));
    if (fit == MemoryFit::Unknown)
        return hint;
    const QString need = sizeText(expectedRunMemory(bytes));
    const QString have = sizeText(*physical);
    if (fit == MemoryFit::Fits) {
        hint.text = HubResultsModel::tr("fits in memory");
        hint.shortText = HubResultsModel::tr("fits");
        hint.tooltip = HubResultsModel::tr("Fits in this computer's memory: running it needs about %1 (its files plus "
                                           "a margin) of the %2 this computer has.")
                           .arg(need, have);
    } else {
        hint.tooLarge = true;
        hint.text = HubResultsModel::tr("larger than this computer's memory (%1)").arg(have);
        hint.shortText = HubResultsModel::tr("too large");
        hint.tooltip = HubResultsModel::tr("Larger than this computer's memory (%1): running it needs about %2 (its "
                                           "files plus a margin). It can still be compressed, slowly; the compressed "
                                           "file may then fit.")
                           .arg(have, need);
    }
    return hint;
}

uint64_t downloadBytes(const std::vector<hf::RepoFile>& files, const std::string& repo, bool* atLeast)
{
    *atLeast = false;
    std::map<std::string, uint64_t> sizes;
    for (const hf::RepoFile& f : files)
        sizes[f.path] = f.size;
    try {
        const hf::FileChoice choice = hf::chooseFiles(files, "", repo);
        uint64_t total = 0;
        for (const std::string& path : choice.files)
            total += sizes.count(path) ? sizes[path] : 0;
        return total;
    } catch (const Error&) {
        // Several GGUF files (one per quantization) and none chosen: the smallest is a floor.
        uint64_t smallest = 0;
        for (const hf::RepoFile& f : files)
            if (endsWithGguf(f.path) && f.size > 0 && (smallest == 0 || f.size < smallest))
                smallest = f.size;
        *atLeast = smallest > 0;
        return smallest;
    }
}

// ---- HubResultsModel ------------------------------------------------------------------

HubResultsModel::HubResultsModel(QObject* parent) : QAbstractTableModel(parent), m_physical(physicalMemoryBytes()) {}

void HubResultsModel::setSize(const std::string& id, uint64_t bytes, bool atLeast)
{
    for (size_t row = 0; row < m_results.size(); ++row) {
        if (m_results[row].summary.id != id)
            continue;
        m_results[row].sizeBytes = bytes;
        m_results[row].sizeAtLeast = atLeast;
        Q_EMIT dataChanged(index(int(row), Size), index(int(row), Memory));
    }
}

void HubResultsModel::setPhysicalMemory(std::optional<uint64_t> bytes)
{
    m_physical = bytes;
    if (!m_results.empty())
        Q_EMIT dataChanged(index(0, Memory), index(rowCount() - 1, Memory));
}

void HubResultsModel::setResults(std::vector<HubResult> results)
{
    beginResetModel();
    m_results = std::move(results);
    endResetModel();
}

void HubResultsModel::appendResults(std::vector<HubResult> results)
{
    if (results.empty())
        return;
    const int first = int(m_results.size());
    beginInsertRows({}, first, first + int(results.size()) - 1);
    for (HubResult& r : results)
        m_results.push_back(std::move(r));
    endInsertRows();
}

void HubResultsModel::markCached(const std::string& id)
{
    for (size_t row = 0; row < m_results.size(); ++row) {
        if (m_results[row].summary.id != id || m_results[row].cached)
            continue;
        m_results[row].cached = true;
        const QModelIndex cell = index(int(row), Local);
        Q_EMIT dataChanged(cell, cell);
    }
}

void HubResultsModel::clear() { setResults({}); }

int HubResultsModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_results.size()); }

int HubResultsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant HubResultsModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const HubResult& r = m_results[size_t(index.row())];
    const hf::ModelSummary& m = r.summary;
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Model:
            return QString::fromStdString(m.id);
        case Downloads:
            return countText(m.downloads);
        case Likes:
            return countText(m.likes);
        case Updated:
            return dateText(m.lastModified);
        case Size:
            if (r.sizeBytes == 0)
                return QStringLiteral("-");
            return r.sizeAtLeast ? tr("from %1").arg(sizeText(r.sizeBytes)) : sizeText(r.sizeBytes);
        case Memory:
            return memoryHint(r.sizeBytes, m_physical).shortText;
        case Local:
            return r.cached ? tr("downloaded") : QString();
        default:
            return {};
        }
    }
    if (role == Qt::TextAlignmentRole &&
        (index.column() == Downloads || index.column() == Likes || index.column() == Size))
        return rightAligned();
    if (role == Qt::ForegroundRole && index.column() == Memory && memoryHint(r.sizeBytes, m_physical).tooLarge)
        return tooLargeColor();
    if (role == Qt::ToolTipRole) {
        if (index.column() == Size && r.sizeBytes == 0)
            return tr("Select the model to read its size: Hugging Face's search listing does not give it.");
        if (index.column() == Size && r.sizeAtLeast)
            return tr("The smallest of the model's GGUF files; select one in the details to download that one.");
        if (index.column() == Memory && r.sizeBytes > 0)
            return memoryHint(r.sizeBytes, m_physical).tooltip;
        if (index.column() == Local && r.cached)
            return tr("This model is already in your Hugging Face cache; using it needs no download.");
        if (m.gated != "false" && !m.gated.empty())
            return tr("%1 is gated: the authors must grant you access on the website first.")
                .arg(QString::fromStdString(m.id));
        return QString::fromStdString(m.id);
    }
    return {};
}

QVariant HubResultsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount)
        return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case Model:
            return tr("Model");
        case Downloads:
            return tr("Downloads");
        case Likes:
            return tr("Likes");
        case Updated:
            return tr("Updated");
        case Size:
            return tr("Size");
        case Memory:
            return tr("Fits in memory");
        case Local:
            return tr("On this computer");
        default:
            return {};
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case Size:
            return tr("What \"Use this model\" downloads: the weights and the files that describe them. Known once "
                      "the model was selected; the search listing does not give it.");
        case Memory:
            return explain::fitsInMemory();
        default:
            return {};
        }
    }
    if (role == Qt::TextAlignmentRole && (section == Downloads || section == Likes || section == Size))
        return rightAligned();
    return {};
}

// ---- HubFilesModel --------------------------------------------------------------------

void HubFilesModel::setFiles(std::vector<hf::RepoFile> files)
{
    beginResetModel();
    m_files = std::move(files);
    endResetModel();
}

void HubFilesModel::clear() { setFiles({}); }

uint64_t HubFilesModel::totalBytes() const noexcept
{
    uint64_t total = 0;
    for (const hf::RepoFile& f : m_files)
        total += f.size;
    return total;
}

int HubFilesModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_files.size()); }

int HubFilesModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant HubFilesModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const hf::RepoFile& f = m_files[size_t(index.row())];
    if (role == Qt::DisplayRole)
        return index.column() == File ? QString::fromStdString(f.path) : sizeText(f.size);
    if (role == Qt::TextAlignmentRole && index.column() == Size)
        return rightAligned();
    if (role == Qt::ToolTipRole)
        return QString::fromStdString(f.path);
    return {};
}

QVariant HubFilesModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount)
        return {};
    if (role == Qt::DisplayRole)
        return section == File ? tr("File") : tr("Size");
    if (role == Qt::TextAlignmentRole && section == Size)
        return rightAligned();
    return {};
}

// ---- OllamaModelsModel ----------------------------------------------------------------

OllamaModelsModel::OllamaModelsModel(QObject* parent) : QAbstractTableModel(parent), m_physical(physicalMemoryBytes())
{}

void OllamaModelsModel::setPhysicalMemory(std::optional<uint64_t> bytes)
{
    m_physical = bytes;
    if (!m_models.empty())
        Q_EMIT dataChanged(index(0, Memory), index(rowCount() - 1, Memory));
}

void OllamaModelsModel::setModels(std::vector<ollama::ListedModel> models)
{
    beginResetModel();
    m_models = std::move(models);
    endResetModel();
}

void OllamaModelsModel::clear() { setModels({}); }

int OllamaModelsModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_models.size()); }

int OllamaModelsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant OllamaModelsModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const ollama::ListedModel& m = m_models[size_t(index.row())];
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Name:
            return QString::fromStdString(m.name);
        case Size:
            return sizeText(m.size);
        case Memory:
            return memoryHint(m.size, m_physical).shortText;
        case Parameters:
            return QString::fromStdString(m.parameterSize);
        case Family:
            return QString::fromStdString(m.family);
        case Quantization:
            return QString::fromStdString(m.quantization);
        case Where:
            return QString::fromStdString(m.where);
        default:
            return {};
        }
    }
    if (role == Qt::TextAlignmentRole && (index.column() == Size || index.column() == Parameters))
        return rightAligned();
    if (role == Qt::ForegroundRole && index.column() == Memory && memoryHint(m.size, m_physical).tooLarge)
        return tooLargeColor();
    if (role == Qt::ToolTipRole && index.column() == Memory && m.size > 0)
        return memoryHint(m.size, m_physical).tooltip;
    if (role == Qt::ToolTipRole)
        return tr("%1, found in %2").arg(QString::fromStdString(m.name), QString::fromStdString(m.where));
    return {};
}

QVariant OllamaModelsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount)
        return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case Name:
            return tr("Model");
        case Size:
            return tr("Size");
        case Memory:
            return tr("Fits in memory");
        case Parameters:
            return tr("Parameters");
        case Family:
            return tr("Family");
        case Quantization:
            return tr("Quantization");
        case Where:
            return tr("Where");
        default:
            return {};
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case Size:
            return tr("The size of the model's files in the store.");
        case Memory:
            return explain::fitsInMemory();
        case Parameters:
            return tr("How many weights the model has, as Ollama reports it (B: billions, M: millions).");
        case Family:
            return tr("The model family the weights belong to, such as llama or qwen2.");
        case Quantization:
            return tr("How the weights are stored now (the technical word is quantized), such as Q4_K_M or F16.");
        case Where:
            return tr("The Ollama server or store folder the model was found in.");
        default:
            return {};
        }
    }
    if (role == Qt::TextAlignmentRole && (section == Size || section == Parameters))
        return rightAligned();
    return {};
}

} // namespace novaq::ui
