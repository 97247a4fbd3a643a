#include "novaq/formats/pytorch_reader.h"

#include "novaq/formats/mapped_model_reader.h"
#include "novaq/formats/model_files.h"
#include "novaq/formats/unpickler.h"
#include "novaq/formats/zip_archive.h"
#include "novaq/io/byte_cursor.h"
#include "novaq/io/error.h"
#include "novaq/io/mapped_file.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_map>

namespace novaq {

namespace fs = std::filesystem;
using nlohmann::json;
using pickle::Kind;
using pickle::Unpickled;
using pickle::ValueId;

namespace {

// 0x1950a86a20f9469cfc6c, the legacy format's magic number, as the LONG1 bytes torch writes.
constexpr std::array<uint8_t, 10> kLegacyMagic{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocolVersion = 1001;
constexpr int kMaxNesting = 16; // dicts inside dicts (a checkpoint wraps its state dict once or twice)
constexpr size_t kMaxListed = 5;
// Keys under which training checkpoints keep the state dict, in order of preference.
constexpr std::array<std::string_view, 5> kStateDictKeys{"state_dict", "model_state_dict", "model", "module", "ema"};

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

[[noreturn]] void fail(const fs::path& file, const std::string& what)
{
    throw Error(ErrorKind::InvalidInput, file.string() + ": " + what);
}

// Where a tensor's elements are. `base` is the file offset of element 0 of its storage (a
// legacy storage view already applied); element i of the tensor is at base + elem * (offset +
// sum(index[d] * strides[d])).
// A zip record holding a storage, checked against its CRC-32 once, when a tensor in it is first
// read (checking every record at open would read the whole checkpoint for `inspect`).
struct RecordCheck {
    std::filesystem::path archive;
    std::string name;
    uint64_t offset = 0; // of its bytes in the file
    uint64_t size = 0;
    uint32_t crc32 = 0;
    std::once_flag verified;
};

struct Layout {
    std::shared_ptr<RecordCheck> record; // null: nothing to check (the legacy format has no CRC)
    uint64_t base = 0;
    int64_t storageOffset = 0;
    std::vector<int64_t> strides;
    bool contiguous = true;
    uint64_t extentBegin = 0; // the bytes the tensor touches, for release()
    uint64_t extentEnd = 0;
};

struct Parsed {
    std::vector<TensorInfo> tensors;
    std::vector<Layout> layouts;
};

// A storage as found in the file: where its bytes begin and how many elements it holds.
struct StorageBytes {
    uint64_t offset = 0;
    uint64_t bytes = 0;
    std::shared_ptr<RecordCheck> record;
};

// ---- the pickle's object tree -> named tensors ----

struct NamedTensor {
    std::string name;
    ValueId tensor;
};

void collect(const Unpickled& u, ValueId dict, const std::string& prefix, int depth, const fs::path& file,
             std::vector<NamedTensor>& out)
{
    if (depth > kMaxNesting)
        fail(file, "the state dict nests dicts more than " + std::to_string(kMaxNesting) + " levels deep (at " +
                       quote(prefix) + "); the pickle is hostile or damaged");
    const auto& items = u[dict].items;
    for (size_t i = 0; i + 1 < items.size(); i += 2) {
        const pickle::Value& key = u[items[i]];
        const pickle::Value& value = u[items[i + 1]];
        if (key.kind != Kind::String)
            continue; // non-string keys hold no named weights (e.g. optimizer state by parameter id)
        if (value.kind == Kind::Tensor)
            out.push_back({prefix + key.text, items[i + 1]});
        else if (value.kind == Kind::Dict)
            collect(u, items[i + 1], prefix + key.text + ".", depth + 1, file, out);
        // other leaves (epoch numbers, lists, None) are not weights: skipped
    }
}

bool holdsTensors(const Unpickled& u, ValueId dict)
{
    const auto& items = u[dict].items;
    for (size_t i = 1; i < items.size(); i += 2)
        if (u[items[i]].kind == Kind::Tensor)
            return true;
    return false;
}

// The tensors of a state dict, or of the state dict inside a training checkpoint
// ({"state_dict": {...}, "optimizer": ..., "epoch": 3}), with dotted names for nested dicts.
std::vector<NamedTensor> namedTensors(const Unpickled& u, const fs::path& file)
{
    const pickle::Value& root = u[u.root];
    if (root.kind != Kind::Dict)
        fail(file, "the pickle holds a " +
                       std::string(root.kind == Kind::Tensor  ? "single tensor"
                                   : root.kind == Kind::List  ? "list"
                                   : root.kind == Kind::Tuple ? "tuple"
                                                              : "value") +
                       ", not a state dict (a dict of tensor names to tensors); save model.state_dict() instead");
    ValueId dict = u.root;
    if (!holdsTensors(u, dict)) {
        const auto& items = root.items;
        for (std::string_view wanted : kStateDictKeys) {
            bool found = false;
            for (size_t i = 0; i + 1 < items.size() && !found; i += 2) {
                if (u[items[i]].kind == Kind::String && u[items[i]].text == wanted &&
                    u[items[i + 1]].kind == Kind::Dict) {
                    dict = items[i + 1];
                    found = true;
                }
            }
            if (found)
                break;
        }
    }
    std::vector<NamedTensor> out;
    collect(u, dict, "", 0, file, out);
    std::set<std::string> seen;
    for (const NamedTensor& t : out)
        if (!seen.insert(t.name).second)
            fail(file, "tensor " + quote(t.name) + " appears twice in the state dict; the file is damaged");
    return out;
}

// Checks a tensor's view against its storage and builds its TensorInfo and Layout.
void addTensor(const fs::path& file, const Unpickled& u, const NamedTensor& named, const StorageBytes& storage,
               uint32_t fileIndex, Parsed& out)
{
    const pickle::TensorRef& ref = u.tensors[static_cast<size_t>(u[named.tensor].integer)];
    const pickle::StorageRef& s = u.storages[static_cast<size_t>(u[ref.storage].integer)];
    const auto bad = [&](const std::string& what) {
        fail(file,
             "tensor " + quote(named.name) + " (REDUCE at file offset " + std::to_string(ref.offset) + "): " + what);
    };
    const uint64_t elem = dtypeInfo(s.dtype).bytes;

    // Elements the storage (or the legacy view of it) holds, and where element 0 is.
    uint64_t available = static_cast<uint64_t>(s.numel);
    uint64_t base = storage.offset;
    if (s.viewKey) {
        if (static_cast<uint64_t>(s.viewOffset) > available ||
            static_cast<uint64_t>(s.viewNumel) > available - static_cast<uint64_t>(s.viewOffset))
            bad("storage view " + quote(*s.viewKey) + " (elements " + std::to_string(s.viewOffset) + " + " +
                std::to_string(s.viewNumel) + ") lies outside its storage " + quote(s.key) + " of " +
                std::to_string(s.numel) + " elements");
        base += static_cast<uint64_t>(s.viewOffset) * elem;
        available = static_cast<uint64_t>(s.viewNumel);
    }

    TensorInfo t;
    t.name = named.name;
    t.shape = ref.shape;
    t.dtype = s.dtype;
    t.fileIndex = fileIndex;

    uint64_t numel = 1;
    bool overflow = false;
    for (int64_t d : ref.shape)
        overflow = overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel);
    uint64_t nbytes = 0;
    if (overflow || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, elem, &nbytes))
        bad("size " + shapeToString(ref.shape) + " has more elements than fit in 64 bits");

    Layout layout;
    layout.storageOffset = ref.storageOffset;
    layout.strides = ref.strides;
    layout.base = base;
    const auto offset = static_cast<uint64_t>(ref.storageOffset);
    uint64_t last = offset; // the last element index the view touches
    if (numel > 0) {
        for (size_t d = 0; d < ref.shape.size(); ++d) {
            uint64_t step = 0;
            overflow = overflow ||
                       __builtin_mul_overflow(static_cast<uint64_t>(ref.shape[d] - 1),
                                              static_cast<uint64_t>(ref.strides[d]), &step) ||
                       __builtin_add_overflow(last, step, &last);
        }
        if (overflow || last >= available)
            bad("size " + shapeToString(ref.shape) + ", stride " + shapeToString(ref.strides) + " and storage offset " +
                std::to_string(offset) + " reach element " +
                (overflow ? std::string("beyond 2^64") : std::to_string(last)) + ", past the end of storage " +
                quote(s.key) + " (" + std::to_string(available) + " elements of " +
                std::string(dtypeInfo(s.dtype).name) + "); the file is damaged");
        int64_t expected = 1;
        for (size_t d = ref.shape.size(); d-- > 0;) {
            if (ref.shape[d] != 1 && ref.strides[d] != expected)
                layout.contiguous = false;
            expected *= ref.shape[d];
        }
        layout.extentBegin = base + offset * elem;
        layout.extentEnd = base + (last + 1) * elem;
    } else if (offset > available) {
        bad("storage offset " + std::to_string(offset) + " lies past the end of storage " + quote(s.key) + " (" +
            std::to_string(available) + " elements)");
    }
    t.offset = base + offset * elem;
    t.nbytes = nbytes;
    layout.record = storage.record;
    out.tensors.push_back(std::move(t));
    out.layouts.push_back(std::move(layout));
}

// The number of bytes `numel` elements of storage `s` take, checked.
uint64_t storageBytes(const fs::path& file, const pickle::StorageRef& s)
{
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(s.numel), uint64_t{dtypeInfo(s.dtype).bytes}, &bytes))
        fail(file, "storage " + quote(s.key) + " of " + std::to_string(s.numel) + " elements is absurdly large");
    return bytes;
}

// ---- the zip format ----

bool isTorchScript(const ZipArchive& zip, const std::string& prefix)
{
    if (zip.find(prefix + "constants.pkl"))
        return true;
    return std::any_of(zip.entries().begin(), zip.entries().end(),
                       [&](const ZipEntry& e) { return e.name.starts_with(prefix + "code/"); });
}

// The archive's one data.pkl record, <prefix>/data.pkl with any single-level prefix
// ("archive/", "<file stem>/").
const ZipEntry& findDataPickle(const ZipArchive& zip, const fs::path& file)
{
    std::vector<const ZipEntry*> pickles;
    for (const ZipEntry& e : zip.entries()) {
        if (e.name == "data.pkl" ||
            (e.name.ends_with("/data.pkl") && e.name.find('/') == e.name.size() - std::string_view("/data.pkl").size()))
            pickles.push_back(&e);
    }
    if (pickles.empty()) {
        if (isTorchScript(zip, "") || std::any_of(zip.entries().begin(), zip.entries().end(),
                                                  [](const ZipEntry& e) { return e.name.ends_with("/constants.pkl"); }))
            throw Error(ErrorKind::Unsupported, file.string() + ": this is a TorchScript archive (torch.jit.save), "
                                                                "not a checkpoint; save model.state_dict() with "
                                                                "torch.save and open that");
        std::string names;
        for (size_t i = 0; i < zip.entries().size() && i < kMaxListed; ++i)
            names += (i ? ", " : "") + quote(zip.entries()[i].name);
        fail(file, "a zip archive without a data.pkl record, so not a PyTorch checkpoint (it holds " +
                       std::to_string(zip.entries().size()) + " entries" + (names.empty() ? "" : ": " + names) +
                       (zip.entries().size() > kMaxListed ? ", ..." : "") + ")");
    }
    if (pickles.size() > 1)
        fail(file, "the archive holds " + std::to_string(pickles.size()) + " data.pkl records (" +
                       quote(pickles[0]->name) + ", " + quote(pickles[1]->name) +
                       "); a PyTorch checkpoint has exactly one");
    return *pickles.front();
}

// The optional byteorder record: the tensors must be little-endian.
void checkByteOrder(const ZipArchive& zip, const std::string& prefix, const fs::path& file)
{
    if (const ZipEntry* order = zip.find(prefix + "byteorder")) {
        const auto bytes = zip.verifiedData(*order);
        const std::string text(reinterpret_cast<const char*>(bytes.data()), std::min<size_t>(bytes.size(), 16));
        if (text == "big")
            throw Error(ErrorKind::Unsupported, file.string() + ": record " + quote(order->name) +
                                                    " says the tensors are big-endian; only little-endian "
                                                    "checkpoints are read (load and save it on a little-endian "
                                                    "machine)");
        if (text != "little")
            fail(file, "record " + quote(order->name) + " must say \"little\" or \"big\", found " + quote(text));
    }
}

Parsed parseZip(const MappedFile& map, uint32_t fileIndex)
{
    const fs::path& file = map.path();
    const ZipArchive zip(map.bytes(), file);
    const ZipEntry& pickleEntry = findDataPickle(zip, file);
    const std::string prefix =
        pickleEntry.name.substr(0, pickleEntry.name.size() - std::string_view("data.pkl").size());
    if (isTorchScript(zip, prefix))
        throw Error(ErrorKind::Unsupported, file.string() + ": this is a TorchScript archive (torch.jit.save), "
                                                            "not a checkpoint; save model.state_dict() with "
                                                            "torch.save and open that");
    checkByteOrder(zip, prefix, file);

    const uint64_t pickleOffset = zip.dataOffset(pickleEntry);
    const pickle::PickleSource source{file.string(), pickleEntry.name, pickleOffset};
    const Unpickled u = pickle::unpickle(zip.verifiedData(pickleEntry), source);
    const std::vector<NamedTensor> named = namedTensors(u, file);

    std::unordered_map<std::string, StorageBytes> records; // key -> its record's bytes
    Parsed out;
    for (const NamedTensor& n : named) {
        const pickle::TensorRef& ref = u.tensors[static_cast<size_t>(u[n.tensor].integer)];
        const pickle::StorageRef& s = u.storages[static_cast<size_t>(u[ref.storage].integer)];
        auto it = records.find(s.key);
        if (it == records.end()) {
            const std::string recordName = prefix + "data/" + s.key;
            const ZipEntry* entry = zip.find(recordName);
            if (!entry)
                fail(file, "tensor " + quote(n.name) + " uses storage " + quote(s.key) + ", but the archive has no " +
                               "record " + quote(recordName) + "; the file is truncated or damaged");
            const uint64_t offset = zip.dataOffset(*entry);
            auto check = std::make_shared<RecordCheck>();
            check->archive = file;
            check->name = entry->name;
            check->offset = offset;
            check->size = entry->size;
            check->crc32 = entry->crc32;
            it = records.emplace(s.key, StorageBytes{offset, entry->size, std::move(check)}).first;
        }
        const uint64_t needed = storageBytes(file, s);
        if (needed > it->second.bytes)
            fail(file, "storage " + quote(s.key) + " of tensor " + quote(n.name) + " is " + std::to_string(s.numel) +
                           " elements of " + s.typeName + " (" + std::to_string(needed) + " bytes), but its record " +
                           quote(prefix + "data/" + s.key) + " holds " + std::to_string(it->second.bytes) +
                           " bytes; the file is damaged");
        addTensor(file, u, n, it->second, fileIndex, out);
    }
    return out;
}

// ---- the legacy stream ----

// The legacy format: pickles one after the other, then the raw storages.
struct LegacyStream {
    const fs::path& file;
    std::span<const std::byte> bytes;
    uint64_t pos = 0;

    Unpickled next(const char* what)
    {
        const pickle::PickleSource source{file.string(), std::string("the legacy ") + what + " pickle", pos};
        Unpickled u = pickle::unpickle(bytes.subspan(static_cast<size_t>(pos)), source);
        pos += u.consumed;
        return u;
    }
};

// The three header pickles: PyTorch's magic number, the protocol version, sys_info (which
// must not say big-endian).
void readLegacyHeader(LegacyStream& in)
{
    const fs::path& file = in.file;
    const Unpickled magic = in.next("magic number");
    const pickle::Value& m = magic[magic.root];
    if (m.kind != Kind::BigInt || m.text.size() != kLegacyMagic.size() ||
        !std::equal(kLegacyMagic.begin(), kLegacyMagic.end(), m.text.begin(),
                    [](uint8_t a, char b) { return a == static_cast<uint8_t>(b); }))
        fail(file, "a pickle that does not start with PyTorch's magic number 0x1950a86a20f9469cfc6c, so not a "
                   "PyTorch checkpoint");
    const Unpickled version = in.next("protocol version");
    if (version[version.root].kind != Kind::Int || version[version.root].integer != kLegacyProtocolVersion)
        fail(file, "the legacy protocol version (after the magic number) must be 1001, found " +
                       (version[version.root].kind == Kind::Int ? std::to_string(version[version.root].integer)
                                                                : std::string("something else")));
    const Unpickled sysInfo = in.next("sys_info");
    if (sysInfo[sysInfo.root].kind != Kind::Dict)
        fail(file, "the legacy sys_info record must be a dict");
    const auto& info = sysInfo[sysInfo.root].items;
    for (size_t i = 0; i + 1 < info.size(); i += 2)
        if (sysInfo[info[i]].kind == Kind::String && sysInfo[info[i]].text == "little_endian" &&
            sysInfo[info[i + 1]].kind == Kind::Bool && sysInfo[info[i + 1]].integer == 0)
            throw Error(ErrorKind::Unsupported, file.string() + ": the checkpoint was saved big-endian; only "
                                                                "little-endian checkpoints are read");
}

// Each root storage the pickle at objectOffset names: its type and size.
std::map<std::string, const pickle::StorageRef*> rootStorages(const Unpickled& u, const fs::path& file,
                                                              uint64_t objectOffset)
{
    std::map<std::string, const pickle::StorageRef*> roots;
    for (const pickle::StorageRef& s : u.storages) {
        auto [it, inserted] = roots.emplace(s.key, &s);
        if (!inserted && (it->second->dtype != s.dtype || it->second->numel != s.numel))
            fail(file, "storage " + quote(s.key) + " is named twice with different types or sizes (" +
                           it->second->typeName + " of " + std::to_string(it->second->numel) + ", " + s.typeName +
                           " of " + std::to_string(s.numel) + ") in the pickle at offset " +
                           std::to_string(objectOffset));
    }
    return roots;
}

// Then, in the order of the key list, each storage: int64 element count and the raw elements.
std::unordered_map<std::string, StorageBytes>
readLegacyStorages(LegacyStream& in, const Unpickled& keys, uint64_t keysOffset,
                   const std::map<std::string, const pickle::StorageRef*>& roots)
{
    const fs::path& file = in.file;
    ByteCursor cursor(in.bytes, file.string());
    cursor.seek(in.pos, "the end of the storage key list");
    std::unordered_map<std::string, StorageBytes> records;
    for (ValueId k : keys[keys.root].items) {
        if (keys[k].kind != Kind::String)
            fail(file, "the storage key list at offset " + std::to_string(keysOffset) + " holds a non-string");
        const std::string& key = keys[k].text;
        const auto root = roots.find(key);
        if (root == roots.end())
            fail(file, "the storage key list names storage " + quote(key) +
                           ", which no tensor uses, so its element size is unknown; the file is damaged");
        cursor.setContext("storage " + quote(key));
        const uint64_t countAt = cursor.pos();
        const auto count = cursor.read<uint64_t>("element count");
        if (count != static_cast<uint64_t>(root->second->numel))
            fail(file, "storage " + quote(key) + " holds " + std::to_string(count) + " elements (count at offset " +
                           std::to_string(countAt) + "), but the pickle says " + std::to_string(root->second->numel));
        const uint64_t size = storageBytes(file, *root->second);
        if (size > cursor.remaining())
            fail(file, "storage " + quote(key) + ": its " + std::to_string(size) + " bytes at offset " +
                           std::to_string(cursor.pos()) + " run past the end of the file (" +
                           std::to_string(cursor.size()) + " bytes); the file is truncated, download it again");
        if (!records.emplace(key, StorageBytes{cursor.pos(), size, nullptr}).second)
            fail(file, "the storage key list names storage " + quote(key) + " twice");
        cursor.skip(size, "elements");
    }
    in.pos = cursor.pos();
    return records;
}

Parsed parseLegacy(const MappedFile& map, uint32_t fileIndex)
{
    const fs::path& file = map.path();
    LegacyStream in{file, map.bytes()};
    readLegacyHeader(in);
    const uint64_t objectOffset = in.pos;
    const Unpickled u = in.next("state dict");
    const std::vector<NamedTensor> named = namedTensors(u, file);
    const uint64_t keysOffset = in.pos;
    const Unpickled keys = in.next("storage keys");
    if (keys[keys.root].kind != Kind::List)
        fail(file, "the storage key list at offset " + std::to_string(keysOffset) + " must be a list");
    const std::unordered_map<std::string, StorageBytes> records =
        readLegacyStorages(in, keys, keysOffset, rootStorages(u, file, objectOffset));

    Parsed out;
    for (const NamedTensor& n : named) {
        const pickle::TensorRef& ref = u.tensors[static_cast<size_t>(u[n.tensor].integer)];
        const pickle::StorageRef& s = u.storages[static_cast<size_t>(u[ref.storage].integer)];
        const auto it = records.find(s.key);
        if (it == records.end())
            fail(file, "tensor " + quote(n.name) + " uses storage " + quote(s.key) +
                           ", which the storage key list at offset " + std::to_string(keysOffset) +
                           " does not name; the file is damaged");
        addTensor(file, u, n, it->second, fileIndex, out);
    }
    return out;
}

bool hasLegacyMagic(std::span<const std::byte> head) noexcept
{
    // PROTO n, an optional FRAME (protocol 4+), then LONG1 of 10 bytes holding the magic number.
    if (head.size() < 2 || head[0] != std::byte{0x80} || head[1] < std::byte{2} || head[1] > std::byte{5})
        return false;
    size_t pos = 2;
    if (head.size() > pos && head[pos] == std::byte{0x95})
        pos += 9;
    if (head.size() < pos + 2 + kLegacyMagic.size() || head[pos] != std::byte{0x8a} || head[pos + 1] != std::byte{10})
        return false;
    for (size_t i = 0; i < kLegacyMagic.size(); ++i)
        if (head[pos + 2 + i] != std::byte{kLegacyMagic[i]})
            return false;
    return true;
}

Parsed parseCheckpoint(const MappedFile& map, uint32_t fileIndex)
{
    const auto head = map.bytes().first(static_cast<size_t>(std::min<uint64_t>(map.size(), 64)));
    if (ZipArchive::hasZipMagic(head))
        return parseZip(map, fileIndex);
    if (hasLegacyMagic(head))
        return parseLegacy(map, fileIndex);
    fail(map.path(), "not a PyTorch checkpoint: it is neither a zip archive (torch.save since 1.6) nor a legacy "
                     "pickle stream starting with PyTorch's magic number");
}

// ---- gathering strided views ----

void gatherBytes(const std::byte* storage, const TensorInfo& t, const Layout& l, std::byte* dst)
{
    const uint64_t elem = dtypeInfo(t.dtype).bytes;
    const size_t rank = t.shape.size();
    if (t.numel() == 0)
        return;
    if (rank == 0) {
        std::memcpy(dst, storage + static_cast<uint64_t>(l.storageOffset) * elem, elem);
        return;
    }
    const auto inner = static_cast<uint64_t>(t.shape[rank - 1]);
    const auto innerStride = static_cast<uint64_t>(l.strides[rank - 1]);
    const uint64_t rows = static_cast<uint64_t>(t.numel()) / inner;
    std::vector<int64_t> index(rank, 0);
    auto row = static_cast<uint64_t>(l.storageOffset); // element index of the row's first element
    for (uint64_t r = 0; r < rows; ++r) {
        if (innerStride == 1) {
            std::memcpy(dst, storage + row * elem, inner * elem);
        } else {
            for (uint64_t i = 0; i < inner; ++i)
                std::memcpy(dst + i * elem, storage + (row + i * innerStride) * elem, elem);
        }
        dst += inner * elem;
        for (size_t d = rank - 1; d-- > 0;) {
            row += static_cast<uint64_t>(l.strides[d]);
            if (++index[d] < t.shape[d])
                break;
            row -= static_cast<uint64_t>(l.strides[d]) * static_cast<uint64_t>(t.shape[d]);
            index[d] = 0;
        }
    }
}

// ---- metadata ----

// ---- the reader ----

class PyTorchModel final : public MappedModelReader {
public:
    PyTorchModel(std::vector<MappedFile> maps, Parsed parsed, json metadata)
        : MappedModelReader(ModelFormat::PyTorch, std::move(maps), std::move(parsed.tensors), std::move(metadata)),
          m_layouts(std::move(parsed.layouts))
    {}

    void readFloat(size_t index, std::span<float> out) const override
    {
        checkOutputSize(index, out.size());
        const TensorInfo& t = m_tensors[index];
        if (out.empty())
            return;
        verifyRecord(index);
        const Layout& l = m_layouts[index];
        if (l.contiguous) {
            convertToFloat(t.dtype, fileData(t) + t.offset, out.size(), out.data());
            return;
        }
        std::vector<std::byte> gathered(static_cast<size_t>(t.nbytes));
        gatherBytes(fileData(t) + l.base, t, l, gathered.data());
        convertToFloat(t.dtype, gathered.data(), out.size(), out.data());
    }

    std::span<const std::byte> rawBytes(size_t index) const override
    {
        const TensorInfo& t = tensor(index);
        if (t.nbytes == 0)
            return {};
        verifyRecord(index);
        const Layout& l = m_layouts[index];
        if (l.contiguous)
            return {fileData(t) + t.offset, static_cast<size_t>(t.nbytes)};
        const std::lock_guard lock(m_mutex);
        auto [it, inserted] = m_gathered.try_emplace(index);
        if (inserted) {
            it->second.resize(static_cast<size_t>(t.nbytes));
            gatherBytes(fileData(t) + l.base, t, l, it->second.data());
        }
        return it->second;
    }

    // A view's pages are those of its whole extent in the storage, not only its first bytes.
    void release(size_t index) const noexcept override
    {
        if (index >= m_tensors.size())
            return;
        const Layout& l = m_layouts[index];
        m_maps[m_tensors[index].fileIndex].release(l.extentBegin, l.extentEnd - l.extentBegin);
        const std::lock_guard lock(m_mutex);
        m_gathered.erase(index);
    }

private:
    // The CRC-32 of the zip record under tensor `index`, once per record (Error(InvalidInput)
    // naming archive, record and both checksums; a failed check is repeated by the next read).
    void verifyRecord(size_t index) const
    {
        RecordCheck* record = m_layouts[index].record.get();
        if (!record)
            return;
        std::call_once(record->verified, [&] {
            const std::byte* bytes = fileData(m_tensors[index]) + record->offset;
            ZipArchive::verify({bytes, static_cast<size_t>(record->size)}, record->crc32, record->archive,
                               record->name);
        });
    }

    std::vector<Layout> m_layouts;
    mutable std::mutex m_mutex;
    mutable std::map<size_t, std::vector<std::byte>> m_gathered; // non-contiguous rawBytes until release()
};

} // namespace

bool sniffPyTorch(std::span<const std::byte> head, uint64_t /*fileSize*/) noexcept
{
    return ZipArchive::hasZipMagic(head) || hasLegacyMagic(head);
}

std::unique_ptr<ModelReader> openPyTorch(const fs::path& path)
{
    std::vector<MappedFile> maps;
    maps.emplace_back(path);
    Parsed parsed = parseCheckpoint(maps.front(), 0);
    return std::make_unique<PyTorchModel>(std::move(maps), std::move(parsed),
                                          makeModelMetadata(json::object(), readConfigJson(path.parent_path())));
}

std::unique_ptr<ModelReader> openPyTorchIndex(const fs::path& index)
{
    ShardIndex shards(index);
    std::vector<MappedFile> maps;
    Parsed all;
    for (const auto& [shard, listed] : shards.shards()) {
        const auto fileIndex = static_cast<uint32_t>(maps.size());
        maps.emplace_back(shards.shardPath(shard));
        Parsed parsed = parseCheckpoint(maps.back(), fileIndex);
        for (size_t i = 0; i < parsed.tensors.size(); ++i) {
            shards.claim(parsed.tensors[i].name, shard);
            all.tensors.push_back(std::move(parsed.tensors[i]));
            all.layouts.push_back(std::move(parsed.layouts[i]));
        }
    }
    shards.checkAllFound();
    json metadata = makeModelMetadata(json::object(), readConfigJson(shards.folder()));
    metadata["index_metadata"] = shards.metadata();
    return std::make_unique<PyTorchModel>(std::move(maps), std::move(all), std::move(metadata));
}

} // namespace novaq
