#pragma once
// Opening any model file: the format table (one row per format: name, magic-byte sniffer,
// opener), format detection by content and openModel(). It lives in the container layer, above
// formats, because one of its rows is the .novaq file itself; the readers below know nothing
// of it.

#include "novaq/formats/model_reader.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

namespace novaq {

// The format's name from its row of the format table ("unknown" for Unknown).
std::string_view formatName(ModelFormat format) noexcept;

struct FormatEntry {
    ModelFormat format;
    std::string_view name; // what messages and reports call it: "safetensors", "GGUF", ...
    // True when the first bytes of a file (up to 64, fewer if the file is short) are this format's.
    std::function<bool(std::span<const std::byte> head, uint64_t fileSize)> sniff;
    std::function<std::unique_ptr<ModelReader>(const std::filesystem::path& path)> open;
};

// The format table. Readers of later formats register here.
std::span<const FormatEntry> formatTable();

// Detects a single file's format from its content.
ModelFormat detectFileFormat(const std::filesystem::path& path);

// Opens a model: a file of any known format, or a folder holding one (a sharded
// checkpoint's index, a single weights file). Throws Error naming the path and what was
// found when nothing readable is there.
std::unique_ptr<ModelReader> openModel(const std::filesystem::path& path);

} // namespace novaq
