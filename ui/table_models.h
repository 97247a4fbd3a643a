#pragma once
// Table models over the engine's own records: the planned handling of each tensor before a
// run (ModelInspection) and the finished tensors of a run (TensorResult).

#include "novaq/pipeline/inspect.h"
#include "novaq/pipeline/job.h"

#include <QAbstractTableModel>

#include <vector>

namespace novaq::ui {

class TensorPlanModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Name, Shape, Kind, Plan, Why, Estimate, ColumnCount };

    using QAbstractTableModel::QAbstractTableModel;

    void setInspection(const ModelInspection& inspection);
    void clear();

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<TensorInspection> m_tensors;
};

class TensorResultModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Name, Shape, StoredAs, Bits, Error, Sqnr, Size, Time, ColumnCount };

    using QAbstractTableModel::QAbstractTableModel;

    void append(const TensorResult& result); // one row at the end
    void setResults(const std::vector<TensorResult>& results);
    void clear();
    const TensorResult& result(int row) const { return m_results.at(size_t(row)); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<TensorResult> m_results;
};

} // namespace novaq::ui
