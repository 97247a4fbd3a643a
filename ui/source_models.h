#pragma once
// Table models over the model sources' own records: Hugging Face search results (with a
// "downloaded" badge for repos already in the local cache), the files of one Hugging Face
// repo, and the Ollama models on this computer.

#include "novaq/sources/huggingface.h"
#include "novaq/sources/ollama.h"

#include <QAbstractTableModel>

#include <cstdint>
#include <optional>
#include <vector>

namespace novaq::ui {

// One search result and whether the repo is already in the local Hugging Face cache.
struct HubResult {
    hf::ModelSummary summary;
    bool cached = false;
    // The weights "Use this model" downloads, once the details were read (the search listing
    // does not give sizes); 0 while unknown. atLeast: several GGUF files and none chosen yet,
    // so this is the smallest of them.
    uint64_t sizeBytes = 0;
    bool sizeAtLeast = false;
};

// The "fits in memory" hint of a model of `bytes` on a computer with `physical` bytes of
// memory (novaq::memoryFit: the files plus a margin). Empty texts when either is unknown.
struct MemoryHint {
    QString text;      // "fits in memory", "larger than this computer's memory (15.5 GiB)"
    QString shortText; // for a list column: "fits", "too large"
    QString tooltip;   // the sentence with both figures
    bool tooLarge = false;
};
MemoryHint memoryHint(uint64_t bytes, std::optional<uint64_t> physical);

// What a repo's "Use this model" would download (hf::chooseFiles), in bytes; with several
// GGUF files and none chosen, the smallest of them and atLeast set. 0 when nothing fits.
uint64_t downloadBytes(const std::vector<hf::RepoFile>& files, const std::string& repo, bool* atLeast);

class HubResultsModel : public QAbstractTableModel {
    Q_OBJECT
public:
    explicit HubResultsModel(QObject* parent = nullptr);
    enum Column { Model, Downloads, Likes, Updated, Size, Memory, Local, ColumnCount };

    void setResults(std::vector<HubResult> results);
    void appendResults(std::vector<HubResult> results); // the next page, below the rows shown
    void markCached(const std::string& id);             // after a download: the "downloaded" badge
    // After the details were read: the size and memory hint of that repo's rows.
    void setSize(const std::string& id, uint64_t bytes, bool atLeast);
    // This computer's memory, for the hint (physicalMemoryBytes() unless a test sets another).
    void setPhysicalMemory(std::optional<uint64_t> bytes);
    std::optional<uint64_t> physicalMemory() const noexcept { return m_physical; }
    void clear();
    const HubResult& result(int row) const { return m_results.at(size_t(row)); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<HubResult> m_results;
    std::optional<uint64_t> m_physical;
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
    enum Column { Name, Size, Memory, Parameters, Family, Quantization, Where, ColumnCount };
    explicit OllamaModelsModel(QObject* parent = nullptr);

    void setModels(std::vector<ollama::ListedModel> models);
    void setPhysicalMemory(std::optional<uint64_t> bytes); // as HubResultsModel's
    void clear();
    const ollama::ListedModel& model(int row) const { return m_models.at(size_t(row)); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<ollama::ListedModel> m_models;
    std::optional<uint64_t> m_physical;
};

} // namespace novaq::ui
