#pragma once
// The tensors of a cluster run (cluster.h) as they travel between ranks, and the check that
// every rank sees the same model. Used by compressModel (compress.cpp).

#include "novaq/container/manifest.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/pipeline/job.h"

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

namespace novaq {

// One tensor as the rank that compressed it hands it on (cluster.h): to rank 0, which
// writes it, and for calibrated tensors to every rank, whose calibration continues with it.
struct TensorOutcome {
    TensorRecord rec; // encoding, dtype, codec, colScale, relError, outputError
    double unrefinedOutputError = -1;
    double seconds = 0;
    std::vector<std::byte> payload;
    std::vector<float> What; // on the rank that compressed it only
};

// Doubles travel as their bytes, so rank 0 writes exactly what the computing rank measured.
// What stays behind: the other ranks decode the payload.
std::vector<std::byte> packOutcome(const TensorOutcome& o);
// Throws Error(Corrupt) on a truncated or oversized message.
TensorOutcome unpackOutcome(std::span<const std::byte> in);

// openModel() on every rank (a single process: just openModel). Every rank must read the same
// model (a shared filesystem): a rank that cannot, or that sees other tensors, throws an Error
// naming its rank and host, which stops the job.
std::unique_ptr<ModelReader> openOnEveryRank(const std::filesystem::path& input, const CancelToken* cancel);

} // namespace novaq
