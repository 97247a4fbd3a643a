#pragma once
// EvalReport (session.h) as `novaq eval` gives it: JSON and text. In the text, the paths and
// the tokenizer's name go through `shown` (io/shown_text.h).

#include "novaq/io/shown_text.h"
#include "novaq/runtime/session.h"

#include <nlohmann/json.hpp>

#include <string>

namespace novaq {

// {model, text, tokenizer, protocol, ctx, tokens, windows, scored, perplexity, mean_nll,
// seconds, weights_in_memory_bytes}, and with a reference {against, against_perplexity, kl,
// top1}.
nlohmann::json evalReportJson(const EvalRequest& request, const EvalReport& report);

// The text and its tokens, the model's perplexity, the original's with KL divergence and
// top-1 agreement when compared, and the time.
std::string formatEvalReport(const EvalRequest& request, const EvalReport& report, const ShownText& shown);

} // namespace novaq
