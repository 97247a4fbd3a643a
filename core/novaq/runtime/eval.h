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
//
// Protocol llama.cpp (EvalProtocol::LlamaCpp), the one of llama.cpp's `llama-perplexity`
// (examples/perplexity/perplexity.cpp, function perplexity(), read for this description), so
// that our figures can be set beside the ones people publish with it:
//   tokens = [BOS] + ids(the whole text as one string), no splitting into documents;
//   optionally cut to the first maxTokens tokens (llama-perplexity's --chunks C is maxTokens
//   C * ctx);
//   chunk j of N = ctx tokens is t[jN .. jN+N-1], chunks run while (j+1)N <= len(t) (a last
//   partial chunk is dropped) and at least two are needed (llama-perplexity refuses fewer than
//   2N tokens);
//   the first token of every chunk is replaced by BOS when the model has one, positions restart
//   at 0, nothing carries over between chunks;
//   only the second half is scored: positions i = N/2 .. N-2 of the chunk, each predicting the
//   chunk's token i+1, i.e. N - 1 - N/2 targets per chunk (the first half only gives context);
//   perplexity = exp(total negative log-likelihood / number of scored targets).

#include "novaq/io/cancel.h"
#include "novaq/io/progress.h"
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

enum class EvalProtocol {
    Novaq,    // back-to-back windows, every target scored, BOS per document
    LlamaCpp, // llama-perplexity's chunks: BOS first, second half scored
};

// [BOS] + ids(text) (no BOS when bos < 0), cut to maxTokens when > 0: llama.cpp's protocol.
std::vector<int32_t> llamaCppProtocolTokens(const Tokenizer& tokenizer, std::string_view text, int bos,
                                            int64_t maxTokens = 0);

// The tokens the given protocol evaluates (`split` applies to EvalProtocol::Novaq only).
std::vector<int32_t> evalTokens(const Tokenizer& tokenizer, std::string_view text, EvalProtocol protocol,
                                DocumentSplit split, int bos, int64_t maxTokens = 0);

struct EvalOptions {
    int ctx = 256;
    EvalProtocol protocol = EvalProtocol::Novaq;
    int bos = -1; // EvalProtocol::LlamaCpp: written over the first token of each chunk (< 0: none)
};

struct EvalResult {
    int64_t windows = 0;   // chunks under EvalProtocol::LlamaCpp
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

// log-softmax of one row of logits (n of them), in double (evaluation, sensitivity).
void logSoftmax(const float* logits, int64_t n, std::vector<double>& out);

// Throws Error(InvalidArgument) when the text has too few tokens for one window, and
// Error(InvalidInput) when model and reference disagree on the vocabulary. `progress` is told the
// windows scored of all (stage "eval"), from the calling thread's tasks, one call at a time.
EvalResult evaluate(const LlamaModel& model, const LlamaModel* reference, std::span<const int32_t> tokens,
                    const EvalOptions& options, const CancelToken* cancel = nullptr, const ProgressFn& progress = {});

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
