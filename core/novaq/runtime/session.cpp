#include "novaq/runtime/session.h"

#include "novaq/container/novaq_model_reader.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/model_files.h"
#include "novaq/io/error.h"
#include "novaq/io/text_file.h"

#include <chrono>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace novaq {

namespace fs = std::filesystem;

namespace {

// Gives the pages of freed heap memory back to the system. glibc keeps what a program frees for
// its next allocations and returns only a free top of the heap, so the temporaries of loading
// (the tokenizer's parse tree, each matrix's unpacked copy while it is repacked) stayed in the
// resident set for the whole run. Once after the tokenizer and once after the weights, the two
// points where nothing is held in between, each returning about 4 MB on the 1B-class model's
// generate (issue 17; the tokenizer's tables are flat since, text/tokenizer_detail.h, so its
// parse leaves few holes: about 0.6 MB above what it keeps); each pass walks the free lists
// (milliseconds).
void returnFreedMemory() noexcept
{
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
}

} // namespace

RunnableModel openRunnable(const fs::path& path, const std::optional<fs::path>& tokenizerPath,
                           const LoadOptions& options)
{
    const auto started = std::chrono::steady_clock::now();
    RunnableModel r;
    r.path = path;
    r.reader = openModel(path);
    // The tokenizer before the weights: parsing it (tokenizer.json's JSON tree, a GGUF file's
    // metadata) leaves freed memory behind, which is returned before the weights take their place.
    if (tokenizerPath) {
        r.tokenizer = openTokenizerFile(*tokenizerPath);
    } else {
        try {
            r.tokenizer = findTokenizer(*r.reader, path);
        } catch (const Error& e) {
            r.tokenizerError = e.what();
        }
    }
    returnFreedMemory();
    r.model = loadLlama(*r.reader, options);
    returnFreedMemory();
    r.loadSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return r;
}

const Tokenizer& tokenizerOf(const RunnableModel& primary, const RunnableModel* fallback)
{
    const Tokenizer* tokenizer = primary.tokenizer                 ? primary.tokenizer.get()
                                 : fallback && fallback->tokenizer ? fallback->tokenizer.get()
                                                                   : nullptr;
    if (!tokenizer)
        throw Error(ErrorKind::InvalidInput, primary.tokenizerError + " (or give one with --tokenizer FILE)");
    if (tokenizer->vocabSize() > primary.model.config.vocab)
        throw Error(ErrorKind::InvalidInput, "the tokenizer (" + std::string(tokenizer->kind()) + ", " +
                                                 std::to_string(tokenizer->vocabSize()) +
                                                 " tokens) does not fit the vocabulary of " + primary.path.string() +
                                                 " (" + std::to_string(primary.model.config.vocab) +
                                                 " tokens); give the model's own tokenizer with --tokenizer FILE");
    return *tokenizer;
}

int bosOf(const LlamaConfig& config, const Tokenizer& tokenizer) noexcept
{
    return config.bos >= 0 ? config.bos : tokenizer.bos();
}

std::string readTextForEval(const fs::path& path)
{
    std::string text = readBoundedText(path); // not /dev/zero, not past kMaxTextBytes
    if (text.find('\0') != std::string::npos)
        throw Error(ErrorKind::InvalidInput,
                    path.string() + ": holds NUL bytes, so it is not a plain-text file; give a UTF-8 text file");
    return text;
}

EvalReport evaluateFiles(const EvalRequest& request, const CancelToken* cancel, const ProgressFn& progress)
{
    const std::string text = readTextForEval(request.text);
    LoadOptions load;
    load.decodeQuantized = request.decodeQuantized;
    load.tables = request.tables;
    const RunnableModel model = openRunnable(request.model, request.tokenizer, load);
    std::optional<RunnableModel> against;
    if (request.against)
        against = openRunnable(*request.against, request.tokenizer, load);
    const Tokenizer& tokenizer = tokenizerOf(model, against ? &*against : nullptr);
    const int bos = bosOf(model.model.config, tokenizer);

    EvalReport report;
    const std::vector<int32_t> tokens =
        evalTokens(tokenizer, text, request.options.protocol, request.split, bos, request.maxTokens);
    EvalOptions options = request.options;
    options.bos = bos;
    report.tokens = static_cast<int64_t>(tokens.size());
    report.tokenizerKind = std::string(tokenizer.kind());
    report.modelMemoryBytes = model.model.memoryBytes();
    report.loadSeconds = model.loadSeconds + (against ? against->loadSeconds : 0.0);
    report.result = evaluate(model.model, against ? &against->model : nullptr, tokens, options, cancel, progress);
    return report;
}

} // namespace novaq
