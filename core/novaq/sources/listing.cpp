#include "novaq/sources/listing.h"

#include "novaq/container/open_model.h"
#include "novaq/io/units.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace novaq::sources {

namespace {

std::string pad(const std::string& s, size_t width)
{
    return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

std::string padLeft(const std::string& s, size_t width)
{
    return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string shortCommit(const std::string& commit) { return commit.substr(0, 12); }

bool isChosen(const hf::FileChoice* choice, const std::string& path)
{
    return choice && std::find(choice->files.begin(), choice->files.end(), path) != choice->files.end();
}

} // namespace

std::string countText(uint64_t n)
{
    char buf[32];
    if (n >= 1000000)
        std::snprintf(buf, sizeof buf, "%.1fM", double(n) / 1e6);
    else if (n >= 10000)
        std::snprintf(buf, sizeof buf, "%.1fk", double(n) / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
    return buf;
}

nlohmann::json searchResultsJson(const std::vector<hf::ModelSummary>& models)
{
    nlohmann::json out = nlohmann::json::array();
    for (const hf::ModelSummary& m : models)
        out.push_back({{"id", m.id},
                       {"downloads", m.downloads},
                       {"likes", m.likes},
                       {"last_modified", m.lastModified},
                       {"pipeline_tag", m.pipelineTag},
                       {"library_name", m.libraryName},
                       {"gated", m.gated},
                       {"tags", m.tags}});
    return out;
}

std::string formatSearchResults(const std::vector<hf::ModelSummary>& models, const hf::SearchQuery& query,
                                const ShownText& shown)
{
    std::ostringstream out;
    if (models.empty()) {
        out << "No models match '" << query.text << "'" << (query.format.empty() ? "" : " with format " + query.format)
            << ".\n";
        return out.str();
    }
    size_t width = 5;
    for (const hf::ModelSummary& m : models)
        width = std::max(width, shown(m.id).size());
    out << pad("MODEL", width + 2) << padLeft("DOWNLOADS", 10) << padLeft("LIKES", 8) << "  UPDATED     NOTE\n";
    for (const hf::ModelSummary& m : models)
        out << pad(shown(m.id), width + 2) << padLeft(countText(m.downloads), 10) << padLeft(countText(m.likes), 8)
            << "  " << pad(shown(m.lastModified.substr(0, 10)), 12) << (m.gated == "false" ? "" : "gated") << '\n';
    out << models.size() << " models; `novaq hf ID --list` shows one's files\n";
    return out.str();
}

nlohmann::json modelInfoJson(const hf::ModelInfo& info, const hf::FileChoice* choice)
{
    nlohmann::json files = nlohmann::json::array();
    for (const hf::RepoFile& f : info.files)
        files.push_back({{"path", f.path},
                         {"size", f.size},
                         {"sha256", f.sha256},
                         {"git_oid", f.gitOid},
                         {"selected", isChosen(choice, f.path)}});
    return {{"id", info.id},
            {"revision", info.revision},
            {"commit", info.commit},
            {"gated", info.gated},
            {"private", info.isPrivate},
            {"architecture", info.architecture},
            {"parameters", info.parameters},
            {"pipeline_tag", info.pipelineTag},
            {"library_name", info.libraryName},
            {"downloads", info.downloads},
            {"likes", info.likes},
            {"last_modified", info.lastModified},
            {"selection", choice ? choice->description : ""},
            {"files", files}};
}

std::string formatModelInfo(const hf::ModelInfo& info, const std::string& revision, const hf::FileChoice* choice,
                            const std::string& choiceProblem, const ShownText& shown)
{
    std::ostringstream out;
    out << shown(info.id) << " at " << shown(revision) << " (commit " << shortCommit(info.commit) << ")\n";
    out << "  architecture: " << (info.architecture.empty() ? "unknown" : shown(info.architecture))
        << "   parameters: " << (info.parameters ? countText(info.parameters) : std::string("unknown"))
        << "   gated: " << (info.gated == "false" ? "no" : shown(info.gated) + " (needs a token with access)")
        << (info.isPrivate ? "   private" : "") << '\n';
    size_t width = 0;
    uint64_t total = 0;
    for (const hf::RepoFile& f : info.files)
        width = std::max(width, shown(f.path).size());
    out << "  files (* = what `novaq hf` downloads):\n";
    for (const hf::RepoFile& f : info.files) {
        total += f.size;
        out << "  " << (isChosen(choice, f.path) ? "* " : "  ") << pad(shown(f.path), width + 2)
            << padLeft(humanBytes(f.size), 10) << (f.sha256.empty() ? "" : "  sha256 " + f.sha256.substr(0, 16) + "...")
            << '\n';
    }
    out << "  " << info.files.size() << " files, " << humanBytes(total) << " in all\n";
    if (choice)
        out << "  selected: " << shown(choice->description)
            << (choice->indexPath.empty() ? "" : " (shards listed in the index)") << '\n';
    else
        out << "  selected: nothing yet; " << shown(choiceProblem) << '\n';
    return out.str();
}

nlohmann::json ollamaListJson(const std::vector<ollama::ListedModel>& models)
{
    nlohmann::json out = nlohmann::json::array();
    for (const ollama::ListedModel& m : models)
        out.push_back({{"name", m.name},
                       {"size", m.size},
                       {"family", m.family},
                       {"parameter_size", m.parameterSize},
                       {"quantization", m.quantization},
                       {"modified", m.modified},
                       {"where", m.where}});
    return out;
}

std::string formatOllamaList(const std::vector<ollama::ListedModel>& models, bool fromServer, const std::string& server,
                             const std::vector<std::filesystem::path>& stores, const ShownText& shown)
{
    std::ostringstream out;
    if (fromServer) {
        out << "Models of the Ollama server at " << server << ":\n";
    } else {
        out << "No Ollama server answers at " << server << "; models in the stores";
        for (const std::filesystem::path& s : stores)
            out << " " << s.string();
        out << ":\n";
    }
    size_t width = 4;
    for (const ollama::ListedModel& m : models)
        width = std::max(width, shown(m.name).size());
    for (const ollama::ListedModel& m : models) {
        out << "  " << pad(shown(m.name), width + 2) << padLeft(humanBytes(m.size), 10);
        if (!m.parameterSize.empty() || !m.quantization.empty())
            out << "  " << shown(m.parameterSize) << " " << shown(m.quantization);
        if (!fromServer)
            out << "  " << shown(m.where);
        out << '\n';
    }
    out << models.size() << " models" << (models.empty() ? "; pull one with `ollama pull NAME`" : "") << '\n';
    return out.str();
}

std::string snapshotSummary(const std::string& repo, const hf::Snapshot& snapshot, const ShownText& shown)
{
    return repo + " at commit " + shortCommit(snapshot.commit) + ": " + shown(snapshot.description) + "; " +
           std::to_string(snapshot.filesCached) + " file(s) from the cache, " +
           std::to_string(snapshot.filesDownloaded) + " downloaded (" + humanBytes(snapshot.downloadedBytes) + ")" +
           (snapshot.offline ? ", offline" : "");
}

std::string urlDownloadSummary(const UrlDownload& download, ModelFormat format, const ShownText& shown)
{
    return std::string(download.reused ? "Using the earlier download" : "Downloaded") + " " +
           shown(download.file.string()) + " (" + humanBytes(download.size) + ", " +
           (format == ModelFormat::Unknown ? std::string("format not recognized by content")
                                           : std::string(formatName(format))) +
           ")";
}

} // namespace novaq::sources
