#include "ui/table_models.h"

#include "ui/explanations.h"
#include "ui/format.h"

namespace novaq::ui {

namespace {

QVariant alignFor(bool number)
{
    return number ? QVariant(int(Qt::AlignRight | Qt::AlignVCenter)) : QVariant(int(Qt::AlignLeft | Qt::AlignVCenter));
}

} // namespace

// ---- TensorPlanModel

void TensorPlanModel::setInspection(const ModelInspection& inspection)
{
    beginResetModel();
    m_tensors = inspection.tensors;
    endResetModel();
}

void TensorPlanModel::clear()
{
    beginResetModel();
    m_tensors.clear();
    endResetModel();
}

int TensorPlanModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_tensors.size()); }

int TensorPlanModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant TensorPlanModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const TensorInspection& t = m_tensors[size_t(index.row())];
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Name:
            return QString::fromStdString(t.info.name);
        case Shape:
            return shapeText(t.info.shape);
        case Kind:
            return tensorKindName(tensorKind(t.info.name));
        case Plan:
            return t.quantize ? tr("compressed") : tr("kept");
        case Why:
            return QString::fromStdString(t.quantize ? t.plannedAs : t.reason + " (" + t.plannedAs + ")");
        case Estimate:
            return sizeText(t.estimatedBytes);
        default:
            return {};
        }
    }
    if (role == Qt::TextAlignmentRole)
        return alignFor(index.column() == Estimate || index.column() == Shape);
    if (role == Qt::ToolTipRole) {
        // The whole story of the row: views may elide the name or hide the Why column.
        const QString name = QString::fromStdString(t.info.name);
        // The shape too: a narrow Settings page hides the Shape column.
        const QString kind = tensorKindName(tensorKind(t.info.name)) + QStringLiteral(", ") + shapeText(t.info.shape);
        if (t.quantize) {
            const QString label = QString::fromStdString(t.plannedAs);
            return tr("%1 (%2): compressed as %3").arg(name, kind, label) + QLatin1Char('\n') +
                   explain::codecLabelInWords(label);
        }
        return tr("%1 (%2): kept as %3 - %4")
            .arg(name, kind, QString::fromStdString(t.plannedAs), QString::fromStdString(t.reason));
    }
    return {};
}

QVariant TensorPlanModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation == Qt::Horizontal && role == Qt::ToolTipRole) {
        switch (section) {
        case Name:
            return explain::tensorName();
        case Shape:
            return explain::tensorShape();
        case Kind:
            return tr("What the tensor does in the model: attention, MLP (feed-forward), embedding or output.");
        case Plan:
            return tr("Compressed, or kept as it is (tensors too small or too sensitive to gain).");
        case Why:
            return explain::codecLabel();
        case Estimate:
            return tr("The estimated size of the tensor in the compressed file.");
        default:
            return {};
        }
    }
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case Name:
        return tr("Tensor");
    case Shape:
        return tr("Shape");
    case Kind:
        return tr("Kind");
    case Plan:
        return tr("Will be");
    case Why:
        return tr("How / why");
    case Estimate:
        return tr("Est. size");
    default:
        return {};
    }
}

// ---- TensorResultModel

void TensorResultModel::append(const TensorResult& result)
{
    const int row = int(m_results.size());
    beginInsertRows({}, row, row);
    m_results.push_back(result);
    endInsertRows();
}

void TensorResultModel::setResults(const std::vector<TensorResult>& results)
{
    beginResetModel();
    m_results = results;
    endResetModel();
}

void TensorResultModel::clear()
{
    beginResetModel();
    m_results.clear();
    endResetModel();
}

int TensorResultModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_results.size());
}

int TensorResultModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant TensorResultModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const TensorResult& r = m_results[size_t(index.row())];
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Name:
            return QString::fromStdString(r.name);
        case Shape:
            return shapeText(r.shape);
        case StoredAs:
            return QString::fromStdString(r.storedAs);
        case Bits:
            return bitsText(r.effectiveBits);
        case Error:
            return errorText(r.relError);
        case Sqnr:
            return r.sqnrDb >= 999 ? tr("exact") : QStringLiteral("%1 dB").arg(r.sqnrDb, 0, 'f', 1);
        case Size:
            return QStringLiteral("%1 -> %2").arg(sizeText(r.bytesIn), sizeText(r.bytesOut));
        case Time:
            return QStringLiteral("%1 s").arg(r.seconds, 0, 'f', 2);
        default:
            return {};
        }
    }
    if (role == Qt::TextAlignmentRole)
        return alignFor(index.column() != Name && index.column() != StoredAs);
    if (role == Qt::ToolTipRole && index.column() == StoredAs)
        return explain::codecLabelInWords(QString::fromStdString(r.storedAs));
    return {};
}

QVariant TensorResultModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation == Qt::Horizontal && role == Qt::ToolTipRole) {
        switch (section) {
        case Name:
            return explain::tensorName();
        case Shape:
            return explain::tensorShape();
        case StoredAs:
            return explain::codecLabel();
        case Bits:
            return explain::bitsPerWeight();
        case Error:
            return explain::relativeError();
        case Sqnr:
            return explain::sqnr();
        case Size:
            return tr("The tensor's size in the source, then in the compressed file.");
        case Time:
            return tr("How long this tensor took to compress, in seconds.");
        default:
            return {};
        }
    }
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case Name:
        return tr("Tensor");
    case Shape:
        return tr("Shape");
    case StoredAs:
        return tr("Stored as");
    case Bits:
        return tr("Bits/weight");
    case Error:
        return tr("Rel. error");
    case Sqnr:
        return tr("SQNR");
    case Size:
        return tr("Size");
    case Time:
        return tr("Time");
    default:
        return {};
    }
}

} // namespace novaq::ui
