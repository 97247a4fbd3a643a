#include "novaq/runtime/eval.h"

#include "novaq/io/error.h"
#include "novaq/text/tokenizer.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <random>

namespace novaq {

std::vector<int32_t> protocolTokens(const Tokenizer& tokenizer, std::string_view text, DocumentSplit split, int bos,
                                    int64_t maxTokens)
{
    std::vector<int32_t> tokens;
    auto addDocument = [&](std::string_view doc) {
        if (bos >= 0)
            tokens.push_back(bos);
        const std::vector<int32_t> ids = tokenizer.encode(doc, false);
        tokens.insert(tokens.end(), ids.begin(), ids.end());
    };
    std::string paragraph;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (split == DocumentSplit::Lines) {
            if (!line.empty())
                addDocument(line);
        } else if (line.empty()) {
            if (!paragraph.empty())
                addDocument(paragraph);
            paragraph.clear();
        } else {
            if (!paragraph.empty())
                paragraph += '\n';
            paragraph += line;
        }
        if (maxTokens > 0 && static_cast<int64_t>(tokens.size()) >= maxTokens)
            break;
        start = end + 1;
    }
    if (!paragraph.empty() && (maxTokens <= 0 || static_cast<int64_t>(tokens.size()) < maxTokens))
        addDocument(paragraph);
    if (maxTokens > 0 && static_cast<int64_t>(tokens.size()) > maxTokens)
        tokens.resize(static_cast<size_t>(maxTokens));
    return tokens;
}

std::vector<int32_t> llamaCppProtocolTokens(const Tokenizer& tokenizer, std::string_view text, int bos,
                                            int64_t maxTokens)
{
    std::vector<int32_t> tokens;
    if (bos >= 0)
        tokens.push_back(bos);
    const std::vector<int32_t> ids = tokenizer.encode(text, false);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    if (maxTokens > 0 && static_cast<int64_t>(tokens.size()) > maxTokens)
        tokens.resize(static_cast<size_t>(maxTokens));
    return tokens;
}

std::vector<int32_t> evalTokens(const Tokenizer& tokenizer, std::string_view text, EvalProtocol protocol,
                                DocumentSplit split, int bos, int64_t maxTokens)
{
    if (protocol == EvalProtocol::LlamaCpp)
        return llamaCppProtocolTokens(tokenizer, text, bos, maxTokens);
    return protocolTokens(tokenizer, text, split, bos, maxTokens);
}

void logSoftmax(const float* logits, int64_t n, std::vector<double>& out)
{
    out.resize(static_cast<size_t>(n));
    double maxv = -INFINITY;
    for (int64_t i = 0; i < n; ++i)
        maxv = std::max(maxv, double(logits[i]));
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
        sum += std::exp(double(logits[i]) - maxv);
    const double lse = maxv + std::log(sum);
    for (int64_t i = 0; i < n; ++i)
        out[static_cast<size_t>(i)] = double(logits[i]) - lse;
}

namespace {

int64_t argmax(const float* v, int64_t n) { return std::max_element(v, v + n) - v; }

struct WindowSums {
    double nll = 0, refNll = 0, kl = 0;
    int64_t agree = 0;
};

} // namespace

namespace {

// The windows evaluate() scores. Novaq: window w has inputs t[wN..wN+N-1] and targets
// t[wN+1..wN+N], all scored. LlamaCpp: chunk w is t[wN..wN+N-1] (first token made BOS);
// positions first..N-2 are scored, each against the chunk's next token (see eval.h).
struct WindowPlan {
    int64_t N = 0, windows = 0, first = 0, perWindow = 0;
    bool llamaCpp = false;
};

// Checks the options against the model and the text; throws what to change.
WindowPlan planWindows(const LlamaModel& model, const LlamaModel* reference, int64_t len, const EvalOptions& options)
{
    const int64_t N = options.ctx;
    if (N < 2)
        throw Error(ErrorKind::InvalidArgument, "--ctx " + std::to_string(N) + ": a window needs at least 2 tokens");
    if (N > model.config.maxSeq)
        throw Error(ErrorKind::InvalidArgument, "--ctx " + std::to_string(N) + " is longer than the model's context (" +
                                                    std::to_string(model.config.maxSeq) + " positions)");
    const bool llamaCpp = options.protocol == EvalProtocol::LlamaCpp;
    const int64_t windows = llamaCpp ? (len >= 2 * N ? len / N : 0) : (len >= N + 1 ? (len - 1) / N : 0);
    const int64_t first = llamaCpp ? N / 2 : 0;
    const int64_t perWindow = llamaCpp ? N - 1 - first : N;
    if (windows == 0)
        throw Error(ErrorKind::InvalidArgument,
                    "the text gives " + std::to_string(len) + " tokens, fewer than " +
                        (llamaCpp ? "two chunks of --ctx " + std::to_string(N) + " need (" + std::to_string(2 * N)
                                  : "one window of --ctx " + std::to_string(N) + " needs (" + std::to_string(N + 1)) +
                        "); use a longer text or a smaller --ctx");
    if (llamaCpp && N < 3)
        throw Error(ErrorKind::InvalidArgument, "--ctx " + std::to_string(N) +
                                                    ": the llama.cpp protocol scores the second half of each chunk "
                                                    "and needs --ctx 3 or more");
    if (reference && reference->config.vocab != model.config.vocab)
        throw Error(ErrorKind::InvalidInput, "the two models have different vocabularies (" +
                                                 std::to_string(model.config.vocab) + " and " +
                                                 std::to_string(reference->config.vocab) + " tokens)");
    return WindowPlan{N, windows, first, perWindow, llamaCpp};
}

// Runs window w through the model (and the reference) and sums its scored positions.
WindowSums scoreWindow(const LlamaModel& model, const LlamaModel* reference, std::span<const int32_t> tokens,
                       const WindowPlan& plan, int bos, int64_t w)
{
    const int64_t N = plan.N, V = model.config.vocab;
    const std::span<const int32_t> window = tokens.subspan(static_cast<size_t>(w * N), static_cast<size_t>(N));
    std::vector<int32_t> chunk;
    std::span<const int32_t> input = window;
    if (plan.llamaCpp && bos >= 0) {
        chunk.assign(window.begin(), window.end());
        chunk[0] = bos;
        input = chunk;
    }
    std::vector<float> logits(static_cast<size_t>(N * V)), refLogits;
    KvCache cache(model.config, N);
    forward(model, cache, input, logits.data());
    if (reference) {
        refLogits.resize(logits.size());
        KvCache refCache(reference->config, N);
        forward(*reference, refCache, input, refLogits.data());
    }
    WindowSums s;
    std::vector<double> lp, lq;
    for (int64_t t = plan.first; t < plan.first + plan.perWindow; ++t) {
        const int32_t target = tokens[static_cast<size_t>(w * N + t + 1)];
        logSoftmax(logits.data() + t * V, V, lp);
        s.nll -= lp[static_cast<size_t>(target)];
        if (reference) {
            logSoftmax(refLogits.data() + t * V, V, lq);
            s.refNll -= lq[static_cast<size_t>(target)];
            double kl = 0;
            for (int64_t v = 0; v < V; ++v)
                kl += std::exp(lq[static_cast<size_t>(v)]) * (lq[static_cast<size_t>(v)] - lp[static_cast<size_t>(v)]);
            s.kl += kl;
            s.agree += argmax(logits.data() + t * V, V) == argmax(refLogits.data() + t * V, V);
        }
    }
    return s;
}

// The figures from the windows' sums, added in window order: the same at any thread count.
EvalResult summarize(const std::vector<WindowSums>& sums, const WindowPlan& plan, bool compared)
{
    EvalResult r;
    r.windows = plan.windows;
    r.scored = plan.windows * plan.perWindow;
    WindowSums total;
    for (const WindowSums& s : sums) {
        total.nll += s.nll;
        total.refNll += s.refNll;
        total.kl += s.kl;
        total.agree += s.agree;
    }
    const double n = double(r.scored);
    r.meanNll = total.nll / n;
    r.perplexity = std::exp(r.meanNll);
    if (compared) {
        r.compared = true;
        r.refMeanNll = total.refNll / n;
        r.refPerplexity = std::exp(r.refMeanNll);
        r.meanKl = total.kl / n;
        r.top1 = double(total.agree) / n;
    }
    return r;
}

} // namespace

EvalResult evaluate(const LlamaModel& model, const LlamaModel* reference, std::span<const int32_t> tokens,
                    const EvalOptions& options, const CancelToken* cancel, const ProgressFn& progress)
{
    const auto started = std::chrono::steady_clock::now();
    const WindowPlan plan = planWindows(model, reference, static_cast<int64_t>(tokens.size()), options);
    std::vector<WindowSums> sums(static_cast<size_t>(plan.windows));
    std::atomic<int64_t> done{0};
    std::mutex progressMutex;
    tbb::parallel_for(int64_t(0), plan.windows, [&](int64_t w) {
        if (cancel && cancel->cancelled())
            return;
        sums[static_cast<size_t>(w)] = scoreWindow(model, reference, tokens, plan, options.bos, w);
        const int64_t d = ++done;
        if (progress) {
            std::lock_guard lock(progressMutex);
            progress(ProgressStep{double(d), double(plan.windows), "eval"});
        }
    });
    checkCancel(cancel);
    EvalResult r = summarize(sums, plan, reference != nullptr);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return r;
}

std::vector<int32_t> generate(const LlamaModel& model, std::span<const int32_t> prompt, const GenerateOptions& options,
                              const std::function<bool(int32_t)>& onToken, const CancelToken* cancel)
{
    if (prompt.empty())
        throw Error(ErrorKind::InvalidArgument, "the prompt gives no tokens; give some text to continue");
    const int64_t capacity = std::min<int64_t>(model.config.maxSeq, int64_t(prompt.size()) + options.maxTokens);
    if (static_cast<int64_t>(prompt.size()) >= model.config.maxSeq)
        throw Error(ErrorKind::InvalidArgument, "the prompt has " + std::to_string(prompt.size()) +
                                                    " tokens, the model's context holds " +
                                                    std::to_string(model.config.maxSeq));
    KvCache cache(model.config, capacity);
    const int64_t V = model.config.vocab;
    // As Generator::prefill runs a prompt: all but its last id in batches without logits (the
    // output layer over every prompt token would be wasted), then the last id for its logits.
    for (size_t at = 0; at + 1 < prompt.size(); at += static_cast<size_t>(kForwardBatchTokens))
        forward(model, cache, prompt.subspan(at, std::min<size_t>(kForwardBatchTokens, prompt.size() - 1 - at)),
                nullptr);
    std::vector<float> last(static_cast<size_t>(V));
    forward(model, cache, prompt.last(1), last.data());
    std::mt19937_64 rng(options.seed);
    std::vector<int32_t> out;
    while (static_cast<int64_t>(out.size()) < options.maxTokens && cache.pos < capacity) {
        checkCancel(cancel);
        int32_t next;
        if (options.temperature <= 0) {
            next = static_cast<int32_t>(argmax(last.data(), V));
        } else {
            std::vector<double> lp;
            std::vector<float> scaled(last);
            for (float& x : scaled)
                x /= options.temperature;
            logSoftmax(scaled.data(), V, lp);
            double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng), acc = 0;
            next = static_cast<int32_t>(V - 1);
            for (int64_t v = 0; v < V; ++v) {
                acc += std::exp(lp[static_cast<size_t>(v)]);
                if (u < acc) {
                    next = static_cast<int32_t>(v);
                    break;
                }
            }
        }
        if (options.stopAtEos && next == model.config.eos)
            break;
        out.push_back(next);
        if (onToken && !onToken(next))
            break;
        if (cache.pos >= capacity || static_cast<int64_t>(out.size()) >= options.maxTokens)
            break; // (no forward pass for logits nobody reads)
        const int32_t one[1] = {next};
        forward(model, cache, one, last.data());
    }
    return out;
}

} // namespace novaq
