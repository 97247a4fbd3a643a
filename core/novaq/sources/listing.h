#pragma once
// The answers of the model sources as a report: `novaq search` (Hub search results),
// `novaq hf --list` (a model's details and files) and `novaq ollama --list` (the models
// Ollama has), each as JSON and as the text table the CLI prints. The JSON carries every
// text as it came; in the text, every text that came from a server or a store goes through
// `shown` (the CLI passes its printable(), which escapes control characters), the rest is
// printed as given.

#include "novaq/formats/model_reader.h"
#include "novaq/io/shown_text.h"
#include "novaq/sources/huggingface.h"
#include "novaq/sources/ollama.h"
#include "novaq/sources/url_source.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace novaq::sources {

// "999", "12.3k" (from 10,000), "4.5M" (from a million): counts in a listing.
std::string countText(uint64_t n);

// `novaq search`: an array of {id, downloads, likes, last_modified, pipeline_tag,
// library_name, gated, tags}.
nlohmann::json searchResultsJson(const std::vector<hf::ModelSummary>& models);
// The table MODEL / DOWNLOADS / LIKES / UPDATED / NOTE and a count line; a sentence naming
// the query (as typed) when nothing matched.
std::string formatSearchResults(const std::vector<hf::ModelSummary>& models, const hf::SearchQuery& query,
                                const ShownText& shown);

// `novaq hf --list`: the model's details and every file, `selected` marking what a download
// takes (`choice`; nullptr when nothing fits).
nlohmann::json modelInfoJson(const hf::ModelInfo& info, const hf::FileChoice* choice);
// The same as text; `choiceProblem` says why nothing is selected when `choice` is nullptr.
std::string formatModelInfo(const hf::ModelInfo& info, const std::string& revision, const hf::FileChoice* choice,
                            const std::string& choiceProblem, const ShownText& shown);

// `novaq ollama --list`: an array of {name, size, family, parameter_size, quantization,
// modified, where}.
nlohmann::json ollamaListJson(const std::vector<ollama::ListedModel>& models);
// Where the list came from (the server at `server`, or else the `stores`), then a line per
// model and a count.
std::string formatOllamaList(const std::vector<ollama::ListedModel>& models, bool fromServer, const std::string& server,
                             const std::vector<std::filesystem::path>& stores, const ShownText& shown);

// After `novaq hf` fetched `repo`: "org/x at commit 0123456789ab: safetensors (...); 2 file(s)
// from the cache, 1 downloaded (1.2 GiB)[, offline]" (no newline).
std::string snapshotSummary(const std::string& repo, const hf::Snapshot& snapshot, const ShownText& shown);

// After `novaq url` fetched a file: "Downloaded FILE (SIZE, FORMAT)" or "Using the earlier
// download FILE (...)", FORMAT as recognized by content (no newline).
std::string urlDownloadSummary(const UrlDownload& download, ModelFormat format, const ShownText& shown);

} // namespace novaq::sources
