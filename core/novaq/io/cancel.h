#pragma once
// Cancelling long work: the one token every layer (codec, net, runtime, pipeline) checks.

#include <atomic>

namespace novaq {

// Cancelling is a request; jobs check it between units of work (k-means iterations, row
// blocks) and stop by throwing Error(Cancelled) after cleaning up what they wrote.
class CancelToken {
public:
    void cancel() noexcept { m_cancelled.store(true, std::memory_order_relaxed); }
    bool cancelled() const noexcept { return m_cancelled.load(std::memory_order_relaxed); }
    void throwIfCancelled() const; // throws Error(Cancelled)

private:
    std::atomic<bool> m_cancelled{false};
};

// Throws Error(Cancelled) when token is set and cancelled; a null token never cancels.
void checkCancel(const CancelToken* token);

} // namespace novaq
