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
    if (role == Qt::TextAlignmentRole && index.column() == Size)
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
    if (role == Qt::TextAlignmentRole && section == Size)
        return rightAligned();
    return {};
}

} // namespace novaq::ui
