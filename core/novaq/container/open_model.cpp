#include "novaq/container/open_model.h"

#include "novaq/container/novaq_file.h"
#include "novaq/container/novaq_model_reader.h"
#include "novaq/formats/gguf_reader.h"
#include "novaq/formats/llama2c_reader.h"
#include "novaq/formats/onnx_reader.h"
#include "novaq/formats/pytorch_reader.h"
#include "novaq/formats/safetensors_reader.h"
#include "novaq/io/error.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <system_error>

namespace novaq {

namespace fs = std::filesystem;

std::string_view formatName(ModelFormat format) noexcept
{
    for (const FormatEntry& entry : formatTable())
        if (entry.format == format)
            return entry.name;
    return "unknown";
}

std::span<const FormatEntry> formatTable()
{
    // The llama2.c row is last: that format has no magic number (see llama2c_reader.h).
    static const std::array<FormatEntry, 6> kTable{{
        {ModelFormat::Gguf, "GGUF", sniffGguf, openGguf},
        {ModelFormat::Safetensors, "safetensors", sniffSafetensors, openSafetensors},
        {ModelFormat::PyTorch, "PyTorch", sniffPyTorch, openPyTorch},
        {ModelFormat::Onnx, "ONNX", sniffOnnx, openOnnx},
        {ModelFormat::Novaq, "NOVAQ", [](std::span<const std::byte> head, uint64_t) { return isNovaqHeader(head); },
         openNovaqModel},
        {ModelFormat::Llama2c, "llama2.c", sniffLlama2c, openLlama2c},
    }};
    return kTable;
}

namespace {

constexpr size_t kHeadBytes = 64;

struct Head {
    std::vector<std::byte> bytes;
    uint64_t fileSize = 0;

    std::string_view text() const noexcept { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
};

Head readHead(const fs::path& path)
{
    std::error_code ec;
    Head head;
    head.fileSize = fs::file_size(path, ec);
    if (ec)
        throw Error(ErrorKind::Io, "cannot read the size of " + path.string() + ": " + ec.message());
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw Error(ErrorKind::Io, "cannot open " + path.string() + " for reading; check its permissions");
    head.bytes.resize(static_cast<size_t>(std::min<uint64_t>(kHeadBytes, head.fileSize)));
    in.read(reinterpret_cast<char*>(head.bytes.data()), static_cast<std::streamsize>(head.bytes.size()));
    head.bytes.resize(static_cast<size_t>(in.gcount()));
    return head;
}

const FormatEntry* sniff(const Head& head)
{
    for (const FormatEntry& entry : formatTable())
        if (entry.sniff(head.bytes, head.fileSize))
            return &entry;
    return nullptr;
}

std::string supportedFormats()
{
    std::string names;
    for (const FormatEntry& entry : formatTable()) {
        if (!names.empty())
            names += ", ";
        names += formatName(entry.format);
    }
    return names + " (a folder may hold a sharded checkpoint with its model.safetensors.index.json or "
                   "pytorch_model.bin.index.json)";
}

bool looksLikeText(const std::vector<std::byte>& bytes)
{
    if (bytes.empty())
        return false;
    for (std::byte b : bytes) {
        const auto c = static_cast<unsigned char>(b);
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f')
            return false;
        if (c == 0x7F)
            return false;
    }
    return true;
}

// What the first bytes of a file that is none of ours look like, for the error message.
std::string describe(const Head& head)
{
    if (head.fileSize == 0)
        return "an empty file";
    if (head.bytes.size() >= 2 && head.bytes[0] == std::byte{0x80} && head.bytes[1] >= std::byte{2} &&
        head.bytes[1] <= std::byte{5})
        return "a Python pickle that is not a PyTorch checkpoint (never load it in Python unless you trust it: "
               "pickles can run code)";
    if (head.text().starts_with("\x1f\x8b"))
        return "a gzip archive (unpack it first)";
    if (looksLikeText(head.bytes)) {
        size_t i = 0;
        while (i < head.bytes.size() && std::isspace(static_cast<unsigned char>(head.bytes[i])))
            ++i;
        if (i < head.bytes.size() && (head.bytes[i] == std::byte{'{'} || head.bytes[i] == std::byte{'['}))
            return "text (it looks like JSON)";
        if (head.text().starts_with("version https://git-lfs"))
            return "a Git LFS pointer (the real file was not downloaded; run `git lfs pull`)";
        return "text";
    }
    std::string hex;
    static constexpr char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < std::min<size_t>(8, head.bytes.size()); ++i) {
        const auto c = static_cast<unsigned char>(head.bytes[i]);
        if (!hex.empty())
            hex += ' ';
        hex += kHex[c >> 4];
        hex += kHex[c & 15];
    }
    return "binary data starting with bytes " + hex;
}

[[noreturn]] void throwNotAModel(const fs::path& path, const Head& head)
{
    throw Error(ErrorKind::InvalidInput, path.string() + " is not a model file we can read: it is " + describe(head) +
                                             ". Supported formats: " + supportedFormats() + ".");
}

// A single file: by content.
std::unique_ptr<ModelReader> openFile(const fs::path& path)
{
    const Head head = readHead(path);
    if (const FormatEntry* entry = sniff(head))
        return entry->open(path);
    // Formats without a magic number: a damaged file with their extension goes to their
    // reader, which says precisely what is wrong.
    if (path.filename().string().ends_with(".safetensors"))
        return openSafetensors(path);
    if (path.filename().string().ends_with(".onnx"))
        return openOnnx(path);
    throwNotAModel(path, head);
}

std::unique_ptr<ModelReader> openFolder(const fs::path& folder)
{
    if (const fs::path index = folder / "model.safetensors.index.json"; fs::is_regular_file(index))
        return openSafetensorsIndex(index);

    std::vector<fs::path> files;
    size_t others = 0; // subfolders and the like: not read, but the folder is not empty
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file())
            files.push_back(it->path());
        else
            ++others;
    if (ec)
        throw Error(ErrorKind::Io, "cannot list the folder " + folder.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());

    std::vector<fs::path> indexes;
    std::vector<fs::path> safetensors;
    for (const fs::path& f : files) {
        const std::string name = f.filename().string();
        if (name.ends_with(".safetensors.index.json"))
            indexes.push_back(f);
        else if (name.ends_with(".safetensors"))
            safetensors.push_back(f);
    }
    if (indexes.size() == 1)
        return openSafetensorsIndex(indexes.front());
    if (safetensors.size() == 1)
        return openFile(safetensors.front());
    if (safetensors.size() > 1 || indexes.size() > 1) {
        std::string names;
        for (const fs::path& f : indexes.size() > 1 ? indexes : safetensors)
            names += "\n  " + f.filename().string();
        throw Error(ErrorKind::InvalidInput,
                    "the folder " + folder.string() + " holds several safetensors " +
                        (indexes.size() > 1 ? "indexes" : "files without a model.safetensors.index.json") + ":" +
                        names + "\nName the file to open, or add the checkpoint's index file.");
    }

    // No safetensors: a Hugging Face PyTorch checkpoint by its conventional names.
    if (const fs::path index = folder / "pytorch_model.bin.index.json"; fs::is_regular_file(index))
        return openPyTorchIndex(index);
    if (const fs::path bin = folder / "pytorch_model.bin"; fs::is_regular_file(bin))
        return openFile(bin);

    // No safetensors by name: look inside each file.
    std::vector<std::pair<fs::path, const FormatEntry*>> found;
    for (const fs::path& f : files) {
        Head head;
        try {
            head = readHead(f);
        } catch (const Error&) {
            continue; // unreadable files cannot be the model; the message below lists what was found
        }
        if (const FormatEntry* entry = sniff(head))
            found.emplace_back(f, entry);
    }
    if (found.size() == 1)
        return found.front().second->open(found.front().first);
    if (found.size() > 1) {
        std::string names;
        for (const auto& [f, entry] : found)
            names += "\n  " + f.filename().string() + " (" + std::string(formatName(entry->format)) + ")";
        throw Error(ErrorKind::InvalidInput,
                    "the folder " + folder.string() + " holds several models:" + names + "\nName the file to open.");
    }
    if (files.empty())
        throw Error(ErrorKind::InvalidInput,
                    "the folder " + folder.string() +
                        (others ? " holds only folders; name the folder or the file that holds the model itself"
                                : " is empty; put the model's files in it, or name the folder or file that holds "
                                  "the model"));
    throw Error(ErrorKind::InvalidInput,
                "no model found in the folder " + folder.string() + " (" + std::to_string(files.size()) +
                    " files, none of them a model). Supported formats: " + supportedFormats() + ".");
}

} // namespace

ModelFormat detectFileFormat(const fs::path& path)
{
    const Head head = readHead(path);
    if (const FormatEntry* entry = sniff(head))
        return entry->format;
    return ModelFormat::Unknown;
}

std::unique_ptr<ModelReader> openModel(const fs::path& path)
{
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (status.type() == fs::file_type::not_found)
        throw Error(ErrorKind::Io, "no such file or folder: " + path.string());
    if (ec)
        throw Error(ErrorKind::Io, "cannot access " + path.string() + ": " + ec.message());
    if (fs::is_directory(status))
        return openFolder(path);
    if (!fs::is_regular_file(status))
        throw Error(ErrorKind::InvalidInput, path.string() + " is neither a file nor a folder; name a model file "
                                                             "or the folder that holds one");
    if (path.filename().string().ends_with(".bin.index.json"))
        return openPyTorchIndex(path);
    if (path.filename().string().ends_with(".index.json"))
        return openSafetensorsIndex(path);
    return openFile(path);
}

} // namespace novaq
