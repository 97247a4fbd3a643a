#include "ui/source_models.h"

#include "ui/format.h"

#include <QDateTime>
#include <QLocale>

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

} // namespace

// ---- HubResultsModel ------------------------------------------------------------------

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
        case Local:
            return r.cached ? tr("downloaded") : QString();
        default:
            return {};
        }
    }
    if (role == Qt::TextAlignmentRole && (index.column() == Downloads || index.column() == Likes))
        return rightAligned();
    if (role == Qt::ToolTipRole) {
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
        case Local:
            return tr("On this computer");
        default:
            return {};
        }
    }
    if (role == Qt::TextAlignmentRole && (section == Downloads || section == Likes))
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
