#pragma once
// A restricted unpickler for PyTorch state dicts. It is an allowlist: it knows the opcodes a
// torch.save pickle uses (protocols 2 to 5) and a handful of globals (OrderedDict, the tensor
// rebuild functions, the typed storage classes). It never calls anything: "calling" an allowed
// global only records what the call would build, a description of each tensor (storage key,
// dtype, offset, shape, strides). Any other global, any other opcode, or a pickle past the
// stack, mark or memo bounds is refused with Error(InvalidInput) naming the file and offset.

#include "novaq/tensor/dtype.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace novaq::pickle {

using ValueId = uint32_t;

enum class Kind : uint8_t {
    None,
    Bool,
    Int,    // fits in int64 (`integer`)
    BigInt, // a LONG1 wider than 64 bits: its little-endian two's-complement bytes in `text`
    Float,
    String, // unicode or bytes, in `text`
    Tuple,
    List,
    Dict, // dict or OrderedDict; `items` holds key, value, key, value, ... in insertion order
    Global,
    Storage, // a persistent id ('storage', ...): storages[integer]
    Tensor,  // a rebuilt tensor: tensors[integer]
};

enum class GlobalId : uint8_t { OrderedDict, RebuildTensor, RebuildTensorV2, RebuildParameter, StorageType };

struct Value {
    Kind kind = Kind::None;
    int64_t integer = 0; // Bool, Int, Global (a GlobalId), Storage and Tensor (their index)
    double real = 0.0;
    std::string text;           // String, BigInt, Global ("module.name")
    std::vector<ValueId> items; // Tuple, List, Dict
    DType dtype = DType::F32;   // Global StorageType
};

struct StorageRef {
    DType dtype = DType::F32;
    std::string typeName; // "FloatStorage"
    std::string key;      // the record name (data/<key> in the zip format)
    std::string location; // "cpu", "cuda:0"
    int64_t numel = 0;    // elements of dtype
    // Legacy format only: the storage is a view of elements [viewOffset, viewOffset + viewNumel) of the
    // root storage `key` (whose size is `numel`); viewKey names the view.
    std::optional<std::string> viewKey;
    int64_t viewOffset = 0;
    int64_t viewNumel = 0;
};

struct TensorRef {
    ValueId storage = 0;       // a Storage value
    int64_t storageOffset = 0; // in elements
    std::vector<int64_t> shape;
    std::vector<int64_t> strides; // in elements
    uint64_t offset = 0;          // file offset of the REDUCE that built it, for messages
};

struct Unpickled {
    std::vector<Value> values;
    std::vector<StorageRef> storages;
    std::vector<TensorRef> tensors;
    ValueId root = 0;
    uint64_t consumed = 0; // bytes up to and including STOP

    const Value& operator[](ValueId id) const { return values[id]; }
};

// Where a pickle lives, for messages: "<file>: ... at offset N (byte K of <name>)".
struct PickleSource {
    std::string file;        // the file's path
    std::string name;        // e.g. "archive/data.pkl"
    uint64_t fileOffset = 0; // file offset of the pickle's first byte
};

constexpr size_t kMaxStack = 1u << 20; // values on the stack at once
constexpr size_t kMaxMarkDepth = 256;  // nested MARKs
constexpr size_t kMaxMemo = 1u << 24;  // memo index bound (also bounded by the pickle's size)
constexpr size_t kMaxRank = 8;         // tensor dimensions

// Reads one pickle from the start of `bytes` (it may be followed by more data).
Unpickled unpickle(std::span<const std::byte> bytes, const PickleSource& source);

} // namespace novaq::pickle
