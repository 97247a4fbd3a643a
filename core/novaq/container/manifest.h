#pragma once
// The manifest of a .novaq file: one JSON document, written after the data. This header is
// the schema; manifest.cpp converts both ways and rejects what does not fit, naming the
// field (e.g. "tensors[3].codec.b1: expected an integer 1..12": the codec's limits are kCodecLimits).
//
// {
//   "format": "novaq", "version": [1, 0], "writer": "novaq-studio 0.1.0",
//   "source": { "label": "...", "path": "/abs/input", "format": "safetensors", "files": ["model.safetensors"],
//               "tensor_bytes": 13644256 },
//   "architecture": "llama",
//   "config": { ...config.json passthrough, or null... },
//   "format_metadata": { ...source format metadata passthrough... },
//   "settings": { "bits": 1.5, "d": 8, "b1": 8, "b2": 4, "subspaces": 4, "seed": 20260101, ... },
//   "tensors": [ TensorRecord, ... ]            in file order (the order they finished)
//   "attachments": [ {"name": "tokenizer.model", "data": {...}} ]   optional (--with-tokenizer);
//                                               read by novaqAttachments() (novaq_model_reader.h)
// }
// TensorRecord:
// { "name": "...", "shape": [m, n], "source_dtype": "F16",
//   "encoding": "novaq" | "raw" | "gguf",
//   "dtype": "F16",                 raw: stored element type; gguf: the ggml block type ("Q4_K")
//                                   whose blocks are stored exactly as in the source GGUF file
//                                   (format 1.1; shape[last] a multiple of the block size,
//                                   length = elements / block size * block bytes)
//   "codec": {"d":8,"b1":8,"b2":4,"subspaces":4,"col_scale":false},   novaq only
//                                   (codec_spec.h's JSON form plus col_scale; each field inside
//                                   kCodecLimits). A codec variant is a new "encoding" name with
//                                   its own fields, never a new key in "codec" or in the record:
//                                   older readers ignore unknown keys and would decode the
//                                   variant's tensors as plain "novaq" ones, wrongly
//                                   (novaq_file.h has the version rules).
//   "data": {"offset": o, "length": l, "xxh3": "0123456789abcdef"},
//   "stats": {"rel_error": e, "sqnr_db": s, "effective_bits": b, "bytes_in": i, "bytes_out": o,
//             "output_error": x   (optional: calibrated runs, relative layer-output error) } }

#include "novaq/codec/codec_config.h"
#include "novaq/container/novaq_file.h"
#include "novaq/formats/gguf_quants.h"
#include "novaq/tensor/dtype.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace novaq {

enum class TensorEncoding { Novaq, Raw, Gguf };

struct TensorRecord {
    std::string name;
    std::vector<int64_t> shape;
    std::string sourceDtype;
    TensorEncoding encoding = TensorEncoding::Raw;
    DType dtype = DType::F16;             // Raw: the stored element type
    CodecConfig codec;                    // Novaq
    bool colScale = false;                // Novaq
    const GgmlTypeTraits* ggml = nullptr; // Gguf: the block type (a supported row of ggmlTypeTable())
    SectionRef data;
    double relError = 0, sqnrDb = 0, effectiveBits = 0;
    uint64_t bytesIn = 0, bytesOut = 0;
    double outputError = -1; // calibrated runs only (stats.output_error, optional)

    nlohmann::json toJson() const;
    // Throws Error(Corrupt) naming the field and `where` (e.g. "tensors[3]").
    static TensorRecord fromJson(const nlohmann::json& j, const std::string& where);
};

// All tensor records of a manifest, checked: names non-empty and unique, sizes >= 0 (> 0 when
// quantized), sections inside [64, fileSize - 64), payload lengths matching their encoding
// (payloadBytes(), or the GGUF block size and bytes). An unknown encoding in a file of a newer
// minor version says so.
std::vector<TensorRecord> tensorRecords(const nlohmann::json& manifest, uint64_t fileSize);

} // namespace novaq
