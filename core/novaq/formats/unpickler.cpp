#include "novaq/formats/unpickler.h"

#include "novaq/io/byte_cursor.h"
#include "novaq/io/bytes.h"
#include "novaq/io/error.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <string_view>

namespace novaq::pickle {

namespace {

// Opcodes, as Python's pickle module names them.
enum Op : uint8_t {
    kMark = '(',
    kStop = '.',
    kBinInt = 'J',
    kBinInt1 = 'K',
    kBinInt2 = 'M',
    kNone = 'N',
    kBinPersId = 'Q',
    kReduce = 'R',
    kBinString = 'T',
    kShortBinString = 'U',
    kBinUnicode = 'X',
    kAppend = 'a',
    kBuild = 'b',
    kGlobal = 'c',
    kAppends = 'e',
    kBinGet = 'h',
    kLongBinGet = 'j',
    kEmptyList = ']',
    kBinPut = 'q',
    kLongBinPut = 'r',
    kSetItem = 's',
    kTuple = 't',
    kSetItems = 'u',
    kEmptyDict = '}',
    kEmptyTuple = ')',
    kBinFloat = 'G',
    kBinBytes = 'B',
    kShortBinBytes = 'C',
    kProto = 0x80,
    kTuple1 = 0x85,
    kTuple2 = 0x86,
    kTuple3 = 0x87,
    kNewTrue = 0x88,
    kNewFalse = 0x89,
    kLong1 = 0x8a,
    kShortBinUnicode = 0x8c,
    kBinUnicode8 = 0x8d,
    kBinBytes8 = 0x8e,
    kStackGlobal = 0x93,
    kMemoize = 0x94,
    kFrame = 0x95,
};

struct AllowedGlobal {
    std::string_view module;
    std::string_view name;
    GlobalId id;
    DType dtype = DType::F32; // StorageType only
};

// The whole allowlist. torch.storage._load_from_bytes, numpy and everything else stay out.
constexpr std::array<AllowedGlobal, 14> kAllowedGlobals{{
    {"collections", "OrderedDict", GlobalId::OrderedDict},
    {"torch._utils", "_rebuild_tensor", GlobalId::RebuildTensor},
    {"torch._utils", "_rebuild_tensor_v2", GlobalId::RebuildTensorV2},
    {"torch._utils", "_rebuild_parameter", GlobalId::RebuildParameter},
    {"torch", "FloatStorage", GlobalId::StorageType, DType::F32},
    {"torch", "HalfStorage", GlobalId::StorageType, DType::F16},
    {"torch", "BFloat16Storage", GlobalId::StorageType, DType::BF16},
    {"torch", "DoubleStorage", GlobalId::StorageType, DType::F64},
    {"torch", "LongStorage", GlobalId::StorageType, DType::I64},
    {"torch", "IntStorage", GlobalId::StorageType, DType::I32},
    {"torch", "ShortStorage", GlobalId::StorageType, DType::I16},
    {"torch", "CharStorage", GlobalId::StorageType, DType::I8},
    {"torch", "ByteStorage", GlobalId::StorageType, DType::U8},
    {"torch", "BoolStorage", GlobalId::StorageType, DType::Bool},
}};

constexpr ValueId kNoValue = std::numeric_limits<ValueId>::max();

std::string_view kindName(Kind kind)
{
    switch (kind) {
    case Kind::None:
        return "None";
    case Kind::Bool:
        return "bool";
    case Kind::Int:
    case Kind::BigInt:
        return "int";
    case Kind::Float:
        return "float";
    case Kind::String:
        return "string";
    case Kind::Tuple:
        return "tuple";
    case Kind::List:
        return "list";
    case Kind::Dict:
        return "dict";
    case Kind::Global:
        return "global";
    case Kind::Storage:
        return "storage";
    case Kind::Tensor:
        return "tensor";
    }
    return "value";
}

// A name from the file, safe to print: control and non-ASCII bytes escaped, length capped.
std::string printable(std::string_view s)
{
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < s.size() && i < 120; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F && c != '\\' && c != '\'') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    if (s.size() > 120)
        out += "...";
    return out;
}

// The pickle's bytes through the shared cursor (offsets within the pickle); running out of
// bytes names the opcode being read and where the pickle lies in its file.
class PickleInput final : public ByteCursor {
public:
    PickleInput(std::span<const std::byte> bytes, const PickleSource& source)
        : ByteCursor(bytes, source.file), m_source(source)
    {}

    uint64_t op = 0; // offset of the opcode being run

    std::string locate(uint64_t pos) const
    {
        return "offset " + std::to_string(m_source.fileOffset + pos) + " (byte " + std::to_string(pos) + " of " +
               m_source.name + ")";
    }

protected:
    [[noreturn]] void failPastEnd(std::string_view field, uint64_t bytes) const override
    {
        throw Error(ErrorKind::InvalidInput, m_source.file + ": " + m_source.name + ": the pickle ends at " +
                                                 locate(size()) + " inside the " + std::string(field) +
                                                 " of the opcode at " + locate(op) + " (" + std::to_string(bytes) +
                                                 " bytes needed, " + std::to_string(remaining()) +
                                                 " left) before its STOP opcode; the file is truncated or damaged");
    }

private:
    const PickleSource& m_source;
};

class Machine {
public:
    Machine(std::span<const std::byte> bytes, const PickleSource& source) : m_in(bytes, source), m_source(source)
    {
        m_memoBound = std::min<uint64_t>(kMaxMemo, m_in.size());
    }

    Unpickled run()
    {
        while (true) {
            m_in.op = m_in.pos();
            const auto op = m_in.read<uint8_t>("opcode");
            if (op == kStop) {
                if (m_stack.empty())
                    fail("STOP with an empty stack; the pickle is damaged");
                m_out.root = m_stack.back();
                m_out.consumed = m_in.pos();
                return std::move(m_out);
            }
            step(op);
        }
    }

private:
    // ---- errors ----
    [[noreturn]] void fail(const std::string& what) const
    {
        throw Error(ErrorKind::InvalidInput,
                    m_source.file + ": " + m_source.name + ": at " + m_in.locate(m_in.op) + ": " + what);
    }

    // ---- input ----
    uint8_t u8(const char* what) { return m_in.read<uint8_t>(what); }

    std::string text(uint64_t n, const char* what) { return std::string(m_in.readBytes(n, what)); }

    // A GLOBAL argument: text up to a newline.
    std::string line(const char* what)
    {
        const std::string_view rest(reinterpret_cast<const char*>(m_in.here()), static_cast<size_t>(m_in.remaining()));
        const size_t end = rest.find('\n');
        if (end == std::string_view::npos)
            m_in.need(rest.size() + 1, what); // throws: the pickle is truncated
        std::string out(m_in.readBytes(end, what));
        m_in.skip(1, "newline");
        return out;
    }

    // ---- values ----
    ValueId make(Value v)
    {
        if (m_out.values.size() >= kNoValue)
            fail("too many values");
        m_out.values.push_back(std::move(v));
        return static_cast<ValueId>(m_out.values.size() - 1);
    }

    ValueId makeKind(Kind kind)
    {
        Value v;
        v.kind = kind;
        return make(std::move(v));
    }

    ValueId makeInt(int64_t i)
    {
        Value v;
        v.kind = Kind::Int;
        v.integer = i;
        return make(std::move(v));
    }

    ValueId makeString(std::string s)
    {
        Value v;
        v.kind = Kind::String;
        v.text = std::move(s);
        return make(std::move(v));
    }

    Value& at(ValueId id) { return m_out.values[id]; }

    void push(ValueId id)
    {
        if (m_stack.size() >= kMaxStack)
            fail("the stack holds more than " + std::to_string(kMaxStack) +
                 " values; no state dict needs that many, the pickle is hostile or damaged");
        m_stack.push_back(id);
    }

    size_t stackFloor() const { return m_marks.empty() ? 0 : m_marks.back(); }

    ValueId pop(const char* opcode)
    {
        if (m_stack.size() <= stackFloor())
            fail(std::string(opcode) + " needs a value, but the stack " +
                 (m_stack.empty() ? "is empty" : "has none above the last MARK") + "; the pickle is damaged");
        const ValueId id = m_stack.back();
        m_stack.pop_back();
        return id;
    }

    ValueId& top(const char* opcode)
    {
        if (m_stack.size() <= stackFloor())
            fail(std::string(opcode) + " needs a value on the stack, but there is none; the pickle is damaged");
        return m_stack.back();
    }

    std::vector<ValueId> popMark(const char* opcode)
    {
        if (m_marks.empty())
            fail(std::string(opcode) + " without a MARK; the pickle is damaged");
        const size_t mark = m_marks.back();
        m_marks.pop_back();
        std::vector<ValueId> items(m_stack.begin() + static_cast<std::ptrdiff_t>(mark), m_stack.end());
        m_stack.resize(mark);
        return items;
    }

    ValueId makeSequence(Kind kind, std::vector<ValueId> items)
    {
        Value v;
        v.kind = kind;
        v.items = std::move(items);
        return make(std::move(v));
    }

    // ---- memo ----
    void put(uint64_t index)
    {
        if (index >= m_memoBound)
            fail("memo index " + std::to_string(index) + " is larger than this pickle could use (at most " +
                 std::to_string(m_memoBound) + "); the pickle is hostile or damaged");
        const ValueId value = top("PUT");
        if (index >= m_memo.size())
            m_memo.resize(static_cast<size_t>(index) + 1, kNoValue);
        if (m_memo[index] == kNoValue)
            ++m_memoCount;
        m_memo[index] = value;
    }

    void get(uint64_t index)
    {
        if (index >= m_memo.size() || m_memo[index] == kNoValue)
            fail("memo index " + std::to_string(index) + " was never stored; the pickle is damaged");
        push(m_memo[index]);
    }

    // ---- the allowlist ----
    ValueId global(const std::string& module, const std::string& name)
    {
        for (const AllowedGlobal& g : kAllowedGlobals) {
            if (g.module == module && g.name == name) {
                Value v;
                v.kind = Kind::Global;
                v.integer = static_cast<int64_t>(g.id);
                v.dtype = g.dtype;
                v.text = module + "." + name;
                return make(std::move(v));
            }
        }
        const std::string full = printable(module) + "." + printable(name);
        if (module == "torch" && name.size() > 7 && name.ends_with("Storage"))
            throw Error(ErrorKind::Unsupported,
                        m_source.file + ": the pickle uses '" + full + "' at " + m_in.locate(m_in.op) +
                            ": tensors of that type are not supported (supported: float, half, bfloat16, double, "
                            "long, int, short, char, byte and bool storages)");
        throw Error(ErrorKind::InvalidInput,
                    m_source.file + ": refuses to load: the pickle names the global '" + full + "' at " +
                        m_in.locate(m_in.op) +
                        "; only PyTorch state dicts are read (this file may run code when loaded by Python)");
    }

    const Value& expect(ValueId id, Kind kind, const std::string& what)
    {
        const Value& v = at(id);
        if (v.kind != kind)
            fail(what + " must be a " + std::string(kindName(kind)) + ", found a " + std::string(kindName(v.kind)));
        return v;
    }

    int64_t expectCount(ValueId id, const std::string& what)
    {
        const Value& v = at(id);
        if (v.kind != Kind::Int || v.integer < 0)
            fail(what + " must be a non-negative int, found " +
                 (v.kind == Kind::Int ? std::to_string(v.integer) : "a " + std::string(kindName(v.kind))));
        return v.integer;
    }

    // BINPERSID: ('storage', StorageType, key, location, numel[, view_metadata]).
    ValueId persistentLoad(ValueId pid)
    {
        const std::vector<ValueId> items = expect(pid, Kind::Tuple, "the persistent id").items;
        if (items.size() != 5 && items.size() != 6)
            fail("the persistent id must be a tuple ('storage', type, key, location, numel[, view]), found " +
                 std::to_string(items.size()) + " items");
        const Value& tag = at(items[0]);
        if (tag.kind != Kind::String || tag.text != "storage")
            fail("the persistent id names a '" + (tag.kind == Kind::String ? printable(tag.text) : "?") +
                 "', not a 'storage'; only tensor storages are read");
        const Value& type = expect(items[1], Kind::Global, "the storage type");
        if (static_cast<GlobalId>(type.integer) != GlobalId::StorageType)
            fail("the storage type is '" + type.text + "', not a torch storage class");
        StorageRef s;
        s.dtype = type.dtype;
        s.typeName = type.text.substr(type.text.find('.') + 1);
        s.key = expect(items[2], Kind::String, "the storage key").text;
        s.location = expect(items[3], Kind::String, "the storage location").text;
        s.numel = expectCount(items[4], "the storage size");
        if (static_cast<uint64_t>(s.numel) > std::numeric_limits<uint64_t>::max() / 64)
            fail("the storage size " + std::to_string(s.numel) + " is absurd");
        if (items.size() == 6 && at(items[5]).kind != Kind::None) {
            const std::vector<ValueId> view = expect(items[5], Kind::Tuple, "the storage view").items;
            if (view.size() != 3)
                fail("the storage view must be (key, offset, size), found " + std::to_string(view.size()) + " items");
            s.viewKey = expect(view[0], Kind::String, "the storage view key").text;
            s.viewOffset = expectCount(view[1], "the storage view offset");
            s.viewNumel = expectCount(view[2], "the storage view size");
        }
        m_out.storages.push_back(std::move(s));
        Value v;
        v.kind = Kind::Storage;
        v.integer = static_cast<int64_t>(m_out.storages.size() - 1);
        return make(std::move(v));
    }

    std::vector<int64_t> dims(ValueId id, const std::string& what)
    {
        const std::vector<ValueId> items = expect(id, Kind::Tuple, what).items;
        if (items.size() > kMaxRank)
            fail(what + " has " + std::to_string(items.size()) + " dimensions, more than the supported " +
                 std::to_string(kMaxRank));
        std::vector<int64_t> out;
        for (size_t i = 0; i < items.size(); ++i)
            out.push_back(expectCount(items[i], what + "[" + std::to_string(i) + "]"));
        return out;
    }

    ValueId reduce(ValueId callable, ValueId argsId)
    {
        const Value& fn = at(callable);
        if (fn.kind != Kind::Global)
            fail("REDUCE calls a " + std::string(kindName(fn.kind)) + "; only the allowed globals can be called");
        const std::string name = fn.text;
        const auto id = static_cast<GlobalId>(fn.integer);
        const std::vector<ValueId> args = expect(argsId, Kind::Tuple, "the arguments of " + name).items;
        switch (id) {
        case GlobalId::OrderedDict: {
            std::vector<ValueId> items;
            if (args.size() > 1)
                fail(name + " takes at most one argument, found " + std::to_string(args.size()));
            if (args.size() == 1) {
                const Value& pairs = at(args[0]);
                if (pairs.kind != Kind::List && pairs.kind != Kind::Tuple)
                    fail(name + " takes a list of pairs, found a " + std::string(kindName(pairs.kind)));
                for (ValueId p : pairs.items) {
                    const Value& pair = at(p);
                    if ((pair.kind != Kind::List && pair.kind != Kind::Tuple) || pair.items.size() != 2)
                        fail(name + " takes a list of (key, value) pairs");
                    items.insert(items.end(), pair.items.begin(), pair.items.end());
                }
            }
            return makeSequence(Kind::Dict, std::move(items));
        }
        case GlobalId::RebuildTensor:
        case GlobalId::RebuildTensorV2: {
            const bool v2 = id == GlobalId::RebuildTensorV2;
            if (v2 ? (args.size() != 6 && args.size() != 7) : args.size() != 4)
                fail(name + " takes " + (v2 ? "6 or 7" : "4") + " arguments, found " + std::to_string(args.size()));
            expect(args[0], Kind::Storage, "the storage of " + name);
            TensorRef t;
            t.storage = args[0];
            t.storageOffset = expectCount(args[1], "the storage offset of " + name);
            t.shape = dims(args[2], "the size of " + name);
            t.strides = dims(args[3], "the stride of " + name);
            if (t.shape.size() != t.strides.size())
                fail(name + " has a size of " + std::to_string(t.shape.size()) + " dimensions but a stride of " +
                     std::to_string(t.strides.size()));
            t.offset = m_source.fileOffset + m_in.op;
            m_out.tensors.push_back(std::move(t));
            Value v;
            v.kind = Kind::Tensor;
            v.integer = static_cast<int64_t>(m_out.tensors.size() - 1);
            return make(std::move(v));
        }
        case GlobalId::RebuildParameter:
            if (args.size() != 3)
                fail(name + " takes 3 arguments, found " + std::to_string(args.size()));
            expect(args[0], Kind::Tensor, "the data of " + name);
            return args[0];
        case GlobalId::StorageType:
            break;
        }
        fail("REDUCE calls " + name + ", which is not a function a state dict calls");
    }

    // ---- one opcode ----
    // shape: long on purpose (an opcode switch: one case per pickle opcode)
    void step(uint8_t op)
    {
        switch (op) {
        case kProto: {
            const uint8_t version = u8("protocol");
            if (version > 5)
                fail("pickle protocol " + std::to_string(version) + " is newer than the supported 2 to 5");
            break;
        }
        case kFrame:
            m_in.skip(8, "frame length");
            break;
        case kMark:
            if (m_marks.size() >= kMaxMarkDepth)
                fail("MARKs nest more than " + std::to_string(kMaxMarkDepth) +
                     " deep; no state dict needs that, the pickle is hostile or damaged");
            m_marks.push_back(m_stack.size());
            break;
        case kEmptyDict:
            push(makeKind(Kind::Dict));
            break;
        case kEmptyList:
            push(makeKind(Kind::List));
            break;
        case kEmptyTuple:
            push(makeKind(Kind::Tuple));
            break;
        case kNone:
            push(makeKind(Kind::None));
            break;
        case kNewTrue:
        case kNewFalse: {
            Value v;
            v.kind = Kind::Bool;
            v.integer = op == kNewTrue ? 1 : 0;
            push(make(std::move(v)));
            break;
        }
        case kBinUnicode:
        case kBinBytes:
            push(makeString(text(m_in.read<uint32_t>("length"), "text")));
            break;
        case kBinString: {
            const auto n = m_in.read<int32_t>("length");
            if (n < 0)
                fail("BINSTRING has a negative length");
            push(makeString(text(static_cast<uint64_t>(n), "text")));
            break;
        }
        case kBinUnicode8:
        case kBinBytes8:
            push(makeString(text(m_in.read<uint64_t>("length"), "text")));
            break;
        case kShortBinUnicode:
        case kShortBinBytes:
        case kShortBinString:
            push(makeString(text(u8("length"), "text")));
            break;
        case kBinPut:
            put(u8("memo index"));
            break;
        case kLongBinPut:
            put(m_in.read<uint32_t>("memo index"));
            break;
        case kMemoize:
            put(m_memoCount);
            break;
        case kBinGet:
            get(u8("memo index"));
            break;
        case kLongBinGet:
            get(m_in.read<uint32_t>("memo index"));
            break;
        case kBinInt:
            push(makeInt(m_in.read<int32_t>("int")));
            break;
        case kBinInt1:
            push(makeInt(u8("int")));
            break;
        case kBinInt2:
            push(makeInt(m_in.read<uint16_t>("int")));
            break;
        case kLong1: {
            const uint8_t n = u8("length");
            const std::string_view b = m_in.readBytes(n, "int");
            if (n <= 8) {
                // A little-endian two's complement of n bytes, sign-extended to 64 bits.
                std::array<std::byte, 8> wide{};
                std::memcpy(wide.data(), b.data(), n);
                if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80))
                    std::fill(wide.begin() + n, wide.end(), std::byte{0xff});
                const auto v = loadLe<uint64_t>(wide.data());
                push(makeInt(std::bit_cast<int64_t>(v)));
            } else {
                Value v;
                v.kind = Kind::BigInt;
                v.text.assign(b);
                push(make(std::move(v)));
            }
            break;
        }
        case kBinFloat: {
            Value v;
            v.kind = Kind::Float;
            v.real = loadBe<double>(m_in.readBytes(8, "float").data()); // the one big-endian field of a pickle
            push(make(std::move(v)));
            break;
        }
        case kTuple:
            push(makeSequence(Kind::Tuple, popMark("TUPLE")));
            break;
        case kTuple1:
        case kTuple2:
        case kTuple3: {
            std::vector<ValueId> items(static_cast<size_t>(op - kTuple1 + 1));
            for (size_t i = items.size(); i-- > 0;)
                items[i] = pop("TUPLE1/2/3");
            push(makeSequence(Kind::Tuple, std::move(items)));
            break;
        }
        case kAppend: {
            const ValueId item = pop("APPEND");
            const ValueId list = top("APPEND");
            if (at(list).kind != Kind::List)
                fail("APPEND to a " + std::string(kindName(at(list).kind)) + "; only lists take APPEND");
            at(list).items.push_back(item);
            break;
        }
        case kAppends: {
            const std::vector<ValueId> items = popMark("APPENDS");
            const ValueId list = top("APPENDS");
            if (at(list).kind != Kind::List)
                fail("APPENDS to a " + std::string(kindName(at(list).kind)) + "; only lists take APPENDS");
            at(list).items.insert(at(list).items.end(), items.begin(), items.end());
            break;
        }
        case kSetItem: {
            const ValueId value = pop("SETITEM");
            const ValueId key = pop("SETITEM");
            const ValueId dict = top("SETITEM");
            if (at(dict).kind != Kind::Dict)
                fail("SETITEM on a " + std::string(kindName(at(dict).kind)) + "; only dicts take SETITEM");
            at(dict).items.push_back(key);
            at(dict).items.push_back(value);
            break;
        }
        case kSetItems: {
            const std::vector<ValueId> items = popMark("SETITEMS");
            if (items.size() % 2 != 0)
                fail("SETITEMS with an odd number of values (" + std::to_string(items.size()) + ")");
            const ValueId dict = top("SETITEMS");
            if (at(dict).kind != Kind::Dict)
                fail("SETITEMS on a " + std::string(kindName(at(dict).kind)) + "; only dicts take SETITEMS");
            at(dict).items.insert(at(dict).items.end(), items.begin(), items.end());
            break;
        }
        case kBinPersId:
            push(persistentLoad(pop("BINPERSID")));
            break;
        case kGlobal: {
            const std::string module = line("module name");
            const std::string name = line("global name");
            push(global(module, name));
            break;
        }
        case kStackGlobal: {
            const ValueId name = pop("STACK_GLOBAL");
            const ValueId module = pop("STACK_GLOBAL");
            const std::string moduleText = expect(module, Kind::String, "the STACK_GLOBAL module").text;
            const std::string nameText = expect(name, Kind::String, "the STACK_GLOBAL name").text;
            push(global(moduleText, nameText));
            break;
        }
        case kReduce: {
            const ValueId args = pop("REDUCE");
            const ValueId callable = pop("REDUCE");
            push(reduce(callable, args));
            break;
        }
        case kBuild: {
            pop("BUILD"); // the state: OrderedDict's _metadata or a tensor's attributes, ignored
            const Value& target = at(top("BUILD"));
            if (target.kind != Kind::Dict && target.kind != Kind::Tensor)
                fail("BUILD on a " + std::string(kindName(target.kind)) + "; only dicts and tensors take BUILD");
            break;
        }
        default: {
            static constexpr char kHex[] = "0123456789abcdef";
            std::string shown = "0x";
            shown += kHex[op >> 4];
            shown += kHex[op & 15];
            if (op >= 0x20 && op < 0x7F)
                shown += std::string(" ('") + static_cast<char>(op) + "')";
            fail("pickle opcode " + shown +
                 " is not one a PyTorch state dict uses; only PyTorch state dicts are read (the file is damaged, or "
                 "holds other Python objects)");
        }
        }
    }

    PickleInput m_in;
    const PickleSource& m_source;
    Unpickled m_out;
    std::vector<ValueId> m_stack;
    std::vector<size_t> m_marks;
    std::vector<ValueId> m_memo;
    uint64_t m_memoCount = 0;
    uint64_t m_memoBound = 0;
};

} // namespace

Unpickled unpickle(std::span<const std::byte> bytes, const PickleSource& source)
{
    return Machine(bytes, source).run();
}

} // namespace novaq::pickle
