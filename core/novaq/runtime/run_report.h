#pragma once
// The reports of running a model: EvalReport (session.h) as `novaq eval` gives it, and the
// continuations of `novaq generate`; JSON and text. In the text, paths and the tokenizer's
// name go through `shown` (io/shown_text.h).

#include "novaq/io/shown_text.h"
#include "novaq/runtime/session.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace novaq {

// {model, text, tokenizer, protocol, ctx, tokens, windows, scored, perplexity, mean_nll,
// seconds, weights_in_memory_bytes}, and with a reference {against, against_perplexity, kl,
// top1}.
nlohmann::json evalReportJson(const EvalRequest& request, const EvalReport& report);

// The text and its tokens, the model's perplexity, the original's with KL divergence and
// top-1 agreement when compared, and the time.
std::string formatEvalReport(const EvalRequest& request, const EvalReport& report, const ShownText& shown);

// One model's continuation of a prompt.
struct Generation {
    std::filesystem::path model;
    std::string text; // the continuation, as decoded
    std::vector<int32_t> ids;
    double tokensPerSecond = 0;
};

// `novaq generate --json`: {prompt, results: [{model, text, ids, tokens_per_second}]}.
nlohmann::json generationsJson(const std::string& prompt, const std::vector<Generation>& generations);
// "[12 tokens, 34.5 tokens/s]", the line after a streamed continuation.
std::string generationSummary(size_t tokens, double tokensPerSecond);

} // namespace novaq
