#pragma once
// Table models over the model sources' own records: Hugging Face search results (with a
// "downloaded" badge for repos already in the local cache), the files of one Hugging Face
// repo, and the Ollama models on this computer.

#include "novaq/sources/huggingface.h"
#include "novaq/sources/ollama.h"

#include <QAbstractTableModel>

#include <vector>

namespace novaq::ui {

// One search result and whether the repo is already in the local Hugging Face cache.
struct HubResult {
    hf::ModelSummary summary;
    bool cached = false;
};

class HubResultsModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Model, Downloads, Likes, Updated, Local, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    void setResults(std::vector<HubResult> results);
    void appendResults(std::vector<HubResult> results); // the next page, below the rows shown
    void markCached(const std::string& id);             // after a download: the "downloaded" badge
    void clear();
    const HubResult& result(int row) const { return m_results.at(size_t(row)); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<HubResult> m_results;
};

class HubFilesModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { File, Size, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    void setFiles(std::vector<hf::RepoFile> files);
    void clear();
    const hf::RepoFile& file(int row) const { return m_files.at(size_t(row)); }
    uint64_t totalBytes() const noexcept;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<hf::RepoFile> m_files;
};

class OllamaModelsModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Name, Size, Parameters, Family, Quantization, Where, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    void setModels(std::vector<ollama::ListedModel> models);
    void clear();
    const ollama::ListedModel& model(int row) const { return m_models.at(size_t(row)); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<ollama::ListedModel> m_models;
};

} // namespace novaq::ui
