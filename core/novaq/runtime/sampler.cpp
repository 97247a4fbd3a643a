#include "novaq/runtime/sampler.h"

#include "novaq/io/error.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace novaq {

int32_t argmaxToken(std::span<const float> logits) noexcept
{
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplingParams& params) : m_params(params), m_rng(params.seed)
{
    if (!(params.temperature >= 0) || !std::isfinite(params.temperature))
        throw Error(ErrorKind::InvalidArgument,
                    "temperature must be a number >= 0 (0 is greedy), got " + std::to_string(params.temperature));
    if (!(params.topP > 0 && params.topP <= 1))
        throw Error(ErrorKind::InvalidArgument,
                    "top_p must be greater than 0 and at most 1, got " + std::to_string(params.topP));
    if (params.topK < 0)
        throw Error(ErrorKind::InvalidArgument, "top_k must be >= 0 (0: off), got " + std::to_string(params.topK));
}

double Sampler::uniform() { return static_cast<double>(m_rng() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(std::span<const float> logits)
{
    if (logits.empty())
        throw Error(ErrorKind::InvalidArgument, "no logits to sample from");
    if (m_params.temperature <= 0)
        return argmaxToken(logits);

    const auto V = static_cast<int64_t>(logits.size());
    m_candidates.clear();
    m_candidates.reserve(logits.size());
    for (int64_t v = 0; v < V; ++v)
        m_candidates.emplace_back(logits[static_cast<size_t>(v)], static_cast<int32_t>(v));
    // Most likely first; equal logits by id, so the order (and the draw) never depends on the
    // sort's implementation.
    const auto higher = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    size_t keep = m_candidates.size();
    if (m_params.topK > 0 && static_cast<size_t>(m_params.topK) < keep) {
        keep = static_cast<size_t>(m_params.topK);
        std::partial_sort(m_candidates.begin(), m_candidates.begin() + static_cast<std::ptrdiff_t>(keep),
                          m_candidates.end(), higher);
        m_candidates.resize(keep);
    } else if (m_params.topP < 1) {
        std::sort(m_candidates.begin(), m_candidates.end(), higher);
    }

    // Softmax of logits / temperature over the kept candidates (in double, max subtracted).
    float top = m_candidates.front().first;
    for (const auto& c : m_candidates)
        top = std::max(top, c.first);
    m_weights.resize(keep);
    double total = 0;
    for (size_t i = 0; i < keep; ++i) {
        m_weights[i] = std::exp((double(m_candidates[i].first) - double(top)) / double(m_params.temperature));
        total += m_weights[i];
    }
    if (m_params.topP < 1) {
        // The candidates are sorted: keep the shortest head whose mass reaches topP.
        double mass = 0;
        size_t n = 0;
        while (n < keep) {
            mass += m_weights[n++];
            if (mass >= double(m_params.topP) * total)
                break;
        }
        keep = n;
        total = mass;
    }
    const double u = uniform() * total;
    double acc = 0;
    for (size_t i = 0; i < keep; ++i) {
        acc += m_weights[i];
        if (u < acc)
            return m_candidates[i].second;
    }
    return m_candidates[keep - 1].second; // rounding left u at the very top
}

} // namespace novaq
