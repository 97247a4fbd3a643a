#pragma once
// Measuring a model on text: perplexity, and against a reference model (the original) the
// mean KL divergence of the next-token distributions and top-1 agreement. And greedy or
// sampled generation for a quick look.
//
// Protocol (the one the reference figures in ../shared/models use):
//   tokens = concatenation over the documents of the text of [BOS] + ids(document), where a
//   document is a non-empty line (DocumentSplit::Lines) or a blank-line-separated paragraph
//   (DocumentSplit::Paragraphs, its lines joined by '\n');
//   optionally cut to the first maxTokens tokens;
//   window j of N = ctx tokens has inputs t[jN .. jN+N-1] and targets t[jN+1 .. jN+N];
//   windows run while jN + N + 1 <= len(t) (a last partial window is dropped); no BOS is
//   added at window starts, nothing carries over between windows, every target is scored;
//   perplexity = exp(mean negative log-likelihood).
//   KL = mean over scored positions of sum_v p_ref(v) (log p_ref(v) - log p(v)).

#include "novaq/pipeline/job.h"
#include "novaq/runtime/llama.h"

#include <functional>
#include <span>
#include <string_view>
#include <vector>

namespace novaq {

class Tokenizer;

enum class DocumentSplit { Lines, Paragraphs };

std::vector<int32_t> protocolTokens(const Tokenizer& tokenizer, std::string_view text, DocumentSplit split, int bos,
                                    int64_t maxTokens = 0);

struct EvalOptions {
    int ctx = 256;
};

struct EvalResult {
    int64_t windows = 0;
    int64_t scored = 0;    // targets scored
    double meanNll = 0;    // of the model
    double perplexity = 0; // exp(meanNll)
    bool compared = false; // a reference was given
    double refMeanNll = 0; // of the reference
    double refPerplexity = 0;
    double meanKl = 0; // KL(reference || model), nats per token
    double top1 = 0;   // fraction of positions where both argmaxes agree
    double seconds = 0;
};

// Progress: windows done of total (called from the calling thread's tasks, serialized).
using EvalProgress = std::function<void(int64_t done, int64_t total)>;

// Throws Error(InvalidArgument) when the text has too few tokens for one window, and
// Error(InvalidInput) when model and reference disagree on the vocabulary.
EvalResult evaluate(const LlamaModel& model, const LlamaModel* reference, std::span<const int32_t> tokens,
                    const EvalOptions& options, const CancelToken* cancel = nullptr, const EvalProgress& progress = {});

struct GenerateOptions {
    int maxTokens = 64;
    float temperature = 0; // 0: greedy
    uint64_t seed = 1;
    bool stopAtEos = true;
};

// Continues `prompt`; onToken sees each new id as it is produced and may return false to stop.
std::vector<int32_t> generate(const LlamaModel& model, std::span<const int32_t> prompt, const GenerateOptions& options,
                              const std::function<bool(int32_t)>& onToken = {}, const CancelToken* cancel = nullptr);

} // namespace novaq
