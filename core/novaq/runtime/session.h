#pragma once
// Opening a model to run it (`novaq eval`, `novaq generate`, calibration, the GUI): the
// reader, the loaded Llama weights and the tokenizer, found the same way everywhere.

#include "novaq/formats/model_reader.h"
#include "novaq/runtime/eval.h"
#include "novaq/runtime/llama.h"
#include "novaq/text/tokenizer.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace novaq {

struct RunnableModel {
    std::filesystem::path path;
    std::unique_ptr<ModelReader> reader;
    LlamaModel model;
    std::unique_ptr<Tokenizer> tokenizer; // null when none was found (see tokenizerError)
    std::string tokenizerError;           // why none was found
    double loadSeconds = 0;
};

// Opens `path` and loads its weights. The tokenizer: `tokenizerPath` when given, else the
// one in the model (GGUF metadata, a file attached to a .novaq file) or beside it.
RunnableModel openRunnable(const std::filesystem::path& path, const std::optional<std::filesystem::path>& tokenizerPath,
                           const LoadOptions& options = {});

// The tokenizer of `primary`, else of `fallback` (the original model of a compressed one);
// throws the primary's error when neither has one, and Error(InvalidInput) when its ids do
// not fit the primary model's vocabulary.
const Tokenizer& tokenizerOf(const RunnableModel& primary, const RunnableModel* fallback);

// The BOS id the model was trained with: its configuration's, else the tokenizer's (-1: none).
int bosOf(const LlamaConfig& config, const Tokenizer& tokenizer) noexcept;

// Reads a text file for evaluation or calibration, at most kMaxTextBytes (io/text_file.h), only
// a regular file; throws Error(Io / InvalidInput) naming it.
std::string readTextForEval(const std::filesystem::path& path);

struct EvalRequest {
    std::filesystem::path model;
    std::optional<std::filesystem::path> against;
    std::filesystem::path text;
    std::optional<std::filesystem::path> tokenizer;
    EvalOptions options;
    DocumentSplit split = DocumentSplit::Lines;
    int64_t maxTokens = 0; // 0: the whole text
    bool decodeQuantized = false;
    Tables tables = fastestTables();
};

struct EvalReport {
    EvalResult result;
    int64_t tokens = 0; // in the text under the protocol
    std::string tokenizerKind;
    size_t modelMemoryBytes = 0; // weights as held by the runtime
    double loadSeconds = 0;
};

EvalReport evaluateFiles(const EvalRequest& request, const CancelToken* cancel = nullptr,
                         const ProgressFn& progress = {});

} // namespace novaq
