#pragma once
// Ollama as a model source (formats-and-protocols.md 1b): names as Ollama parses them,
// models read in place from the Ollama store (read-only: Ollama prunes blobs it does not
// know, so we never write there), listing through a running server, and pulls from a
// registry into NOVAQ's own store of the same layout.

#include "novaq/io/cancel.h"
#include "novaq/net/downloader.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace novaq::ollama {

inline constexpr const char* kDefaultHost = "registry.ollama.ai";
inline constexpr const char* kDefaultNamespace = "library";
inline constexpr const char* kDefaultTag = "latest";
inline constexpr const char* kModelMediaType = "application/vnd.ollama.image.model";
inline constexpr const char* kManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json";

// [scheme://][host[:port]/][namespace/]model[:tag]
struct ModelName {
    std::string scheme = "https";
    std::string host = kDefaultHost;
    std::string ns = kDefaultNamespace;
    std::string model;
    std::string tag = kDefaultTag;

    // Throws Error(InvalidArgument) naming the bad part.
    static ModelName parse(const std::string& text);
    std::string full() const;                   // host/namespace/model:tag
    std::string shortest() const;               // without the default host and namespace
    std::filesystem::path manifestPath() const; // manifests/<host>/<ns>/<model>/<tag>
};

struct Layer {
    std::string mediaType;
    std::string digest; // sha256:<64 hex>
    uint64_t size = 0;
};

struct Manifest {
    Layer config;
    std::vector<Layer> layers;
    const Layer* modelLayer() const; // the GGUF weights; null when there is none

    // Throws Error(InvalidInput) naming `what` when the JSON is not a manifest.
    static Manifest parse(const std::string& json, const std::string& what);
};

// "sha256:<hex>" or "sha256-<hex>" -> "<hex>" (lower-case); throws for anything else.
std::string digestHex(const std::string& digest);

// OLLAMA_MODELS when set, else ~/.ollama/models and the Linux service's
// /usr/share/ollama/.ollama/models; then NOVAQ's own store (models pulled by NOVAQ).
std::vector<std::filesystem::path> storeFolders();
// $XDG_CACHE_HOME/novaq/ollama, else ~/.cache/novaq/ollama.
std::filesystem::path novaqStore();

struct LocalModel {
    ModelName name;
    std::filesystem::path store;
    std::filesystem::path blob; // the GGUF file, read in place
    uint64_t size = 0;
};

// The model in the first store that has it, with its weights blob present.
std::optional<LocalModel> findLocal(const ModelName& name, const std::vector<std::filesystem::path>& stores);

struct ListedModel {
    std::string name; // as Ollama shows it: model:tag (with host/namespace when not the default)
    uint64_t size = 0;
    std::string family;
    std::string parameterSize;
    std::string quantization;
    std::string modified;
    std::string where; // "server http://127.0.0.1:11434" or the store folder
};

// OLLAMA_HOST as Ollama reads it (host, host:port, or a URL), default http://127.0.0.1:11434.
std::string serverUrl();
// GET /api/tags with a short timeout; nullopt when no server answers.
std::optional<std::vector<ListedModel>> listFromServer(const std::string& server, const CancelToken* cancel);
// Every manifest in the stores with a model layer; family, parameter size and quantization
// come from the model's config blob when the store has it (as /api/tags reports them).
std::vector<ListedModel> listStores(const std::vector<std::filesystem::path>& stores);

// Pulls the model layer of `name` from its registry into `store` (manifest, then the blob by
// digest, verified by SHA-256, resumable, parallel for large blobs). `insecure` allows a
// plain-http registry. Returns the model as found in `store` afterwards.
LocalModel pull(const ModelName& name, bool insecure, const std::filesystem::path& store,
                const net::DownloadSettings& settings, net::DownloadSink* sink, const CancelToken* cancel);

} // namespace novaq::ollama
