#pragma once
// The Hugging Face Hub as a model source (formats-and-protocols.md 1a): search, model
// details with files, sizes and SHA-256, and downloads into the huggingface_hub cache layout
// (models--org--name/{blobs,snapshots/<commit>,refs/<rev>}) so that files already there are
// used without a request and what we download is reused by other tools.
//
// The token is sent only to the Hub's own host, never to the storage host a download
// redirects to, and never appears in a message.

#include "novaq/io/cancel.h"
#include "novaq/net/downloader.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace novaq::hf {

struct HubSettings {
    std::string endpoint = "https://huggingface.co"; // HF_ENDPOINT, no trailing '/'
    std::string token;                               // secret: never printed
    std::filesystem::path cacheDir;                  // HF_HUB_CACHE, else $HF_HOME/hub
    bool offline = false;                            // HF_HUB_OFFLINE=1: cache only, no request
    int maxPages = 1000; // of one listing (search, file tree): a Hub that links on forever is stopped

    // As huggingface_hub reads them: HF_ENDPOINT; HF_TOKEN, HUGGING_FACE_HUB_TOKEN,
    // HUGGINGFACE_HUB_TOKEN, then the token file ($HF_TOKEN_PATH, else $HF_HOME/token);
    // HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, $HF_HOME/hub ($HF_HOME defaults to
    // $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface); HF_HUB_OFFLINE.
    static HubSettings fromEnvironment();
};

struct SearchQuery {
    std::string text;               // substring of the repo id
    std::string format;             // a tag filter: "gguf", "safetensors", ...; empty: any
    std::string sort = "downloads"; // downloads, likes, lastModified (or "updated"), trendingScore
    int limit = 20;                 // results wanted in all (pages are followed)
    std::string author;
};

struct ModelSummary {
    std::string id;
    uint64_t downloads = 0;
    uint64_t likes = 0;
    std::string lastModified;
    std::string pipelineTag;
    std::string libraryName;
    std::string gated; // "false", "auto", "manual"
    std::vector<std::string> tags;
};

struct SearchPage {
    std::vector<ModelSummary> models;
    std::string nextUrl; // from the Link header; empty on the last page
};

struct RepoFile {
    std::string path;
    uint64_t size = 0;
    std::string gitOid; // git blob sha1
    std::string sha256; // LFS files: SHA-256 of the content; empty for small git files

    // The name of its blob in the cache (huggingface_hub's etag).
    const std::string& blobName() const { return sha256.empty() ? gitOid : sha256; }
};

struct ModelInfo {
    std::string id;
    std::string commit;   // the 40-hex commit the revision resolved to
    std::string revision; // as asked
    std::string gated;    // "false", "auto", "manual"
    bool isPrivate = false;
    std::string architecture;
    uint64_t parameters = 0; // 0 when the Hub does not know
    std::string pipelineTag;
    std::string libraryName;
    uint64_t downloads = 0;
    uint64_t likes = 0;
    std::string lastModified;
    std::vector<RepoFile> files; // from the tree API: sizes and SHA-256
};

// What to fetch for a model: the weights and the files that describe them.
struct FileChoice {
    std::vector<std::string> files; // repo paths, in download order
    std::string modelPath;          // what to open: a weights file or an index
    std::string indexPath;          // a sharded checkpoint's index, fetched first; empty if none
    std::string description;        // "safetensors (3 shards)", "GGUF Q4_K_M"
};

// safetensors (with their index) else PyTorch shards else GGUF; `wanted` (a path, or a
// part of a GGUF file name such as "Q4_K_M") picks a file. Throws Error(InvalidArgument)
// naming the candidates (the first 10, then how many more) when the choice is ambiguous or
// nothing fits.
FileChoice chooseFiles(const std::vector<RepoFile>& files, const std::string& wanted, const std::string& repo);

// The shards an index file names (its weight_map values).
std::vector<std::string> shardsOfIndex(const std::filesystem::path& index);

struct Snapshot {
    std::string repo;
    std::string commit;
    std::filesystem::path folder;    // snapshots/<commit>
    std::filesystem::path modelPath; // what to open
    std::vector<std::string> files;  // repo paths present
    uint64_t downloadedBytes = 0;    // 0: everything came from the cache
    int filesDownloaded = 0;
    int filesCached = 0;
    bool offline = false; // served from the cache without a request
    std::string description;
};

class HubClient {
public:
    HubClient(HubSettings settings, net::DownloadSettings download, net::DownloadSink* sink, const CancelToken* cancel);

    SearchPage searchPage(const SearchQuery& query, const std::string& pageUrl = {}) const;
    // Follows pages until `query.limit` results (or the last page). Throws Error(Network) when
    // the pages go on past settings().maxPages or a page links back to one already read.
    std::vector<ModelSummary> search(const SearchQuery& query) const;

    // Details of a repo at a revision, with the file tree (sizes, SHA-256).
    ModelInfo modelInfo(const std::string& repo, const std::string& revision = "main") const;
    // The same bounds on pages as search().
    std::vector<RepoFile> tree(const std::string& repo, const std::string& commit) const;

    // Fetches what chooseFiles() picks (or `file`) into the cache and returns where it is.
    // Files already in the cache are not requested; offline, only the cache is used.
    Snapshot download(const std::string& repo, const std::string& revision, const std::string& file) const;

    // The cache folder of a repo, and the commit a revision points to there (if known).
    std::filesystem::path repoFolder(const std::string& repo) const;
    std::optional<std::string> cachedCommit(const std::string& repo, const std::string& revision) const;

    const HubSettings& settings() const noexcept { return m_settings; }
    std::string modelPageUrl(const std::string& repo) const { return m_settings.endpoint + "/" + repo; }

private:
    nlohmann::json getJson(const std::string& url, const std::string& repo, const std::string& revision,
                           std::string* nextUrl) const;
    net::HttpHeaders authHeaders(const std::string& url) const;
    std::string fixEndpoint(const std::string& url) const;
    [[noreturn]] void throwHubError(const net::HttpResponse& response, const std::string& repo,
                                    const std::string& revision, const std::string& file) const;
    Snapshot fromCache(const std::string& repo, const std::string& revision, const std::string& file,
                       const std::string& why) const;
    std::filesystem::path fetchFile(const std::string& repo, const std::string& commit, const RepoFile& file,
                                    Snapshot& snapshot) const;

    HubSettings m_settings;
    net::DownloadSettings m_download;
    net::DownloadSink* m_sink;
    const CancelToken* m_cancel;
};

// "org/name" with the Hub's allowed characters; throws Error(InvalidArgument) otherwise.
void validateRepoId(const std::string& repo);

// The repo id in what a person types or pastes: "https://huggingface.co/org/name",
// "hf.co/org/name/", "<endpoint>/org/name" (a mirror, HF_ENDPOINT) or "org/name" itself, all
// -> "org/name": one known prefix is taken off, then any trailing '/'. Nothing is checked
// (validateRepoId does that, when the Hub is asked).
std::string repoIdFrom(std::string text, const std::string& endpoint);

} // namespace novaq::hf
