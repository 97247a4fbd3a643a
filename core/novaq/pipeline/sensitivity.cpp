#include "novaq/pipeline/sensitivity.h"

#include "novaq/codec/encoder.h"
#include "novaq/io/error.h"
#include "novaq/runtime/eval.h"
#include "novaq/runtime/llama.h"
#include "novaq/runtime/session.h"
#include "novaq/text/tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace novaq {

namespace {

// The matrix with Gaussian noise whose variance in each row is `relative` times that row's mean
// square (Box-Muller over SplitMix64: the same bits on every platform and thread count).
RowMatrix perturbed(const Linear& linear, double relative, uint64_t seed)
{
    RowMatrix W(linear.rows(), linear.cols());
    SplitMix64 rng{seed};
    for (int64_t r = 0; r < W.rows(); ++r) {
        float* row = W.data() + r * W.cols();
        linear.row(r, row);
        double meanSquare = 0;
        for (int64_t c = 0; c < W.cols(); ++c)
            meanSquare += double(row[c]) * row[c];
        const double sd = std::sqrt(relative * meanSquare / double(std::max<int64_t>(W.cols(), 1)));
        for (int64_t c = 0; c < W.cols(); ++c) {
            const double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
            row[c] += static_cast<float>(sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
        }
    }
    return W;
}

class Probe {
public:
    Probe(LlamaModel& model, std::vector<std::vector<int32_t>> windows) : m_model(model), m_windows(std::move(windows))
    {
        const LlamaConfig& c = m_model.config;
        m_entry.resize(m_windows.size());
        m_reference.resize(m_windows.size());
        for (size_t w = 0; w < m_windows.size(); ++w) {
            const int64_t T = static_cast<int64_t>(m_windows[w].size());
            std::vector<float> H(static_cast<size_t>(T * c.dim));
            embedTokens(m_model, m_windows[w], H.data());
            KvCache cache(c, T);
            for (int l = 0; l < c.layers; ++l) {
                m_entry[w].push_back(H);
                forwardLayer(m_model, l, H.data(), T, cache);
            }
            m_entry[w].push_back(H); // the final hidden states
            std::vector<float> logits(static_cast<size_t>(T * c.vocab));
            outputLogits(m_model, H.data(), T, logits.data());
            m_reference[w].resize(logits.size());
            std::vector<double> lp;
            for (int64_t t = 0; t < T; ++t) {
                logSoftmax(logits.data() + t * c.vocab, c.vocab, lp);
                std::copy(lp.begin(), lp.end(), m_reference[w].begin() + t * c.vocab);
                if (t + 1 < T)
                    m_nll -= lp[static_cast<size_t>(m_windows[w][static_cast<size_t>(t + 1)])];
            }
            m_scored += T - 1;
        }
    }

    // Mean KL (reference || model) per position when the model runs from block `layer` on
    // (layers: the output layer only; -1: from the embedding).
    double klFrom(int layer) const
    {
        const LlamaConfig& c = m_model.config;
        double kl = 0;
        int64_t n = 0;
        std::vector<double> lp;
        for (size_t w = 0; w < m_windows.size(); ++w) {
            const int64_t T = static_cast<int64_t>(m_windows[w].size());
            std::vector<float> H;
            if (layer < 0) {
                H.resize(static_cast<size_t>(T * c.dim));
                embedTokens(m_model, m_windows[w], H.data());
            } else {
                H = m_entry[w][static_cast<size_t>(layer)];
            }
            KvCache cache(c, T);
            for (int l = std::max(layer, 0); l < c.layers; ++l)
                forwardLayer(m_model, l, H.data(), T, cache);
            std::vector<float> logits(static_cast<size_t>(T * c.vocab));
            outputLogits(m_model, H.data(), T, logits.data());
            for (int64_t t = 0; t < T; ++t) {
                logSoftmax(logits.data() + t * c.vocab, c.vocab, lp);
                const double* p = m_reference[w].data() + t * c.vocab;
                double sum = 0;
                for (int64_t i = 0; i < c.vocab; ++i)
                    sum += std::exp(p[i]) * (p[i] - lp[static_cast<size_t>(i)]);
                kl += std::max(sum, 0.0);
                ++n;
            }
        }
        return n ? kl / double(n) : 0.0;
    }

    double meanNll() const { return m_scored ? m_nll / double(m_scored) : 0.0; }
    int64_t scored() const { return m_scored; }

private:
    LlamaModel& m_model;
    std::vector<std::vector<int32_t>> m_windows;
    std::vector<std::vector<std::vector<float>>> m_entry; // per window, per block: its input
    std::vector<std::vector<double>> m_reference;         // per window: T x vocab log-probs
    double m_nll = 0;
    int64_t m_scored = 0;
};

} // namespace

Sensitivity measureSensitivity(const ModelReader& reader, const Tokenizer& tokenizer, const SensitivityOptions& options,
                               const CancelToken* cancel)
{
    const auto start = std::chrono::steady_clock::now();
    LlamaModel model = loadLlama(reader);
    const LlamaConfig& c = model.config;
    const int ctx = std::max(options.ctx, 2);
    const std::vector<int32_t> all =
        protocolTokens(tokenizer, readTextForEval(options.text), DocumentSplit::Lines, bosOf(c, tokenizer), 0);
    const int64_t windows =
        std::min<int64_t>(static_cast<int64_t>(all.size()) / ctx, std::max<int64_t>(options.tokens / ctx, 1));
    if (windows < 1)
        throw Error(ErrorKind::InvalidArgument, options.text.string() + ": " + std::to_string(all.size()) +
                                                    " tokens, fewer than one window of " + std::to_string(ctx) +
                                                    " for measuring sensitivity; give a longer calibration text");
    std::vector<std::vector<int32_t>> chunks;
    for (int64_t w = 0; w < windows; ++w)
        chunks.emplace_back(all.begin() + w * ctx, all.begin() + (w + 1) * ctx);
    Probe probe(model, std::move(chunks));

    Sensitivity out;
    out.perTensor.assign(reader.tensors().size(), 0.0);
    out.baseNll = probe.meanNll();
    out.tokens = windows * ctx;
    const double e = options.relativeError;
    // One matrix at a time: swapped for its perturbed copy, measured, swapped back.
    auto measure = [&](std::unique_ptr<Linear>& slot, size_t tensor, int fromLayer) {
        if (cancel)
            cancel->throwIfCancelled();
        if (!slot || tensor == kNoTensor || tensor >= out.perTensor.size())
            return;
        std::unique_ptr<Linear> original = std::move(slot);
        slot = makeDenseLinear(perturbed(*original, e, options.seed ^ (0x9E3779B97F4A7C15ull * (tensor + 1))));
        out.perTensor[tensor] = probe.klFrom(fromLayer) / e;
        slot = std::move(original);
    };
    measure(model.embedding, model.embeddingTensor, -1);
    for (int l = 0; l < c.layers; ++l)
        for (int s = 0; s < kLinearSlots; ++s)
            measure(model.layers[static_cast<size_t>(l)].linear[s],
                    model.layerTensor[static_cast<size_t>(l)][static_cast<size_t>(s)], l);
    if (model.output)
        measure(model.output, model.outputTensor, c.layers);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

uint64_t sensitivityMemoryBytes(const ModelReader& reader, const SensitivityOptions& options)
{
    const LlamaConfig c = llamaConfig(reader);
    uint64_t params = 0;
    for (const TensorInfo& t : reader.tensors())
        params += static_cast<uint64_t>(t.numel());
    const uint64_t tokens = static_cast<uint64_t>(std::max<int64_t>(options.tokens, options.ctx));
    return 4 * params + 8 * tokens * static_cast<uint64_t>(c.vocab) +
           4 * tokens * static_cast<uint64_t>(c.dim) * static_cast<uint64_t>(c.layers + 1);
}

std::shared_ptr<const Sensitivity> sensitivityFor(const ModelReader& reader, const std::filesystem::path& modelPath,
                                                  const std::filesystem::path& text, const CancelToken* cancel)
{
    // Keyed by both paths and the text's size and time: an edited text is measured again.
    std::error_code ec;
    const auto stamp = [&](const std::filesystem::path& p) {
        const auto time = std::filesystem::last_write_time(p, ec).time_since_epoch().count();
        const auto size = std::filesystem::is_regular_file(p, ec) ? std::filesystem::file_size(p, ec) : 0;
        return std::filesystem::absolute(p, ec).string() + "|" + std::to_string(size) + "|" + std::to_string(time);
    };
    const std::string key = stamp(modelPath) + "\n" + stamp(text);
    static std::mutex mutex;
    static std::map<std::string, std::shared_ptr<const Sensitivity>> measured;
    {
        std::lock_guard<std::mutex> lock(mutex);
        if (auto it = measured.find(key); it != measured.end())
            return it->second;
    }
    SensitivityOptions options;
    options.text = text;
    if (sensitivityMemoryBytes(reader, options) > kSensitivityMemoryLimit)
        return nullptr;
    const std::unique_ptr<Tokenizer> tokenizer = findTokenizer(reader, modelPath);
    auto result = std::make_shared<const Sensitivity>(measureSensitivity(reader, *tokenizer, options, cancel));
    std::lock_guard<std::mutex> lock(mutex);
    return measured.emplace(key, std::move(result)).first->second;
}

} // namespace novaq
