#pragma once
// Picking the next token from a model's logits: greedy, or sampled with temperature, top-k
// and top-p (nucleus), reproducible for a given seed.

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace novaq {

struct SamplingParams {
    float temperature = 0; // 0: greedy (the most likely token, the lowest id on a tie)
    float topP = 1;        // keep the most likely tokens whose probabilities add up to topP (1: all)
    int topK = 0;          // keep the topK most likely tokens (0: all)
    uint64_t seed = 1;     // the same seed, logits and parameters give the same tokens
};

class Sampler {
public:
    // Throws Error(InvalidArgument) naming the parameter outside its range (temperature >= 0,
    // 0 < topP <= 1, topK >= 0).
    explicit Sampler(const SamplingParams& params);

    // The next token id from one row of logits (the vocabulary's size).
    int32_t sample(std::span<const float> logits);

    const SamplingParams& params() const noexcept { return m_params; }

private:
    double uniform(); // in [0, 1), from the 53 high bits of the generator (same on every platform)

    SamplingParams m_params;
    std::mt19937_64 m_rng;
    std::vector<std::pair<float, int32_t>> m_candidates; // scratch: (logit, id)
    std::vector<double> m_weights;                       // scratch
};

// The greedy pick: the first index of the largest value.
int32_t argmaxToken(std::span<const float> logits) noexcept;

} // namespace novaq
