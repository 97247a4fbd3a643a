// Finding a model's tokenizer: the GGUF metadata, then the files beside the weights.

#include "novaq/container/novaq_model_reader.h"
#include "novaq/container/open_model.h"
#include "novaq/io/error.h"
#include "novaq/text/tokenizer_detail.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>

namespace novaq {

namespace fs = std::filesystem;

namespace {

// tok*.<extension> in `dir`, sorted by name.
std::vector<fs::path> llama2cCandidates(const fs::path& dir, const std::string& extension)
{
    std::vector<fs::path> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const fs::path& p = it->path();
        const std::string name = p.filename().string();
        if (name.starts_with("tok") && p.extension() == extension && it->is_regular_file(ec))
            out.push_back(p);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The one rule for which tokenizer file in `dir` a model uses, first found: tokenizer.json
// (Hugging Face), tokenizer.model (SentencePiece), tok*.bin (llama2.c), tok*.model.
std::optional<fs::path> tokenizerFileIn(const fs::path& dir)
{
    std::error_code ec;
    if (const fs::path json = dir / "tokenizer.json"; fs::is_regular_file(json, ec))
        return json;
    if (const fs::path model = dir / "tokenizer.model"; fs::is_regular_file(model, ec))
        return model;
    if (const auto bins = llama2cCandidates(dir, ".bin"); !bins.empty())
        return bins.front();
    if (const auto models = llama2cCandidates(dir, ".model"); !models.empty())
        return models.front();
    return std::nullopt;
}

// The tokenizer in `dir` (loaded as openTokenizerFile loads that file); null when none.
std::unique_ptr<Tokenizer> loadTokenizerFromFolder(const fs::path& dir)
{
    if (const auto file = tokenizerFileIn(dir))
        return openTokenizerFile(*file);
    return nullptr;
}

} // namespace

std::unique_ptr<Tokenizer> openTokenizerFile(const fs::path& path)
{
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        throw Error(ErrorKind::Io, path.string() + ": no such tokenizer file");
    const std::string ext = path.extension().string();
    if (ext == ".json")
        return loadHfTokenizerJson(path);
    if (ext == ".bin")
        return loadLlama2cTokenizer(path);
    if (detectFileFormat(path) == ModelFormat::Gguf) {
        const auto reader = openModel(path);
        const auto it = reader->metadata().find("format_metadata");
        return tokenizerFromGguf(it != reader->metadata().end() ? *it : nlohmann::json::object(),
                                 path.string() + ": GGUF metadata");
    }
    return loadSentencePiece(path);
}

std::vector<fs::path> tokenizerFilesBeside(const fs::path& modelPath)
{
    std::error_code ec;
    const fs::path dir = fs::is_directory(modelPath, ec) ? modelPath : modelPath.parent_path();
    const auto main = tokenizerFileIn(dir);
    if (!main)
        return {};
    std::vector<fs::path> files{*main};
    if (main->filename() == "tokenizer.json") {
        if (const fs::path config = dir / "tokenizer_config.json"; fs::is_regular_file(config, ec))
            files.push_back(config);
        // The chat template, when saved apart from tokenizer_config.json (newer transformers).
        if (const fs::path chat = dir / "chat_template.jinja"; fs::is_regular_file(chat, ec))
            files.push_back(chat);
    }
    return files;
}

std::unique_ptr<Tokenizer> findTokenizer(const ModelReader& reader, const fs::path& modelPath)
{
    const nlohmann::json& meta = reader.metadata();
    if (meta.is_object()) {
        const auto it = meta.find("format_metadata");
        if (it != meta.end() && it->is_object() && it->contains("tokenizer.ggml.model")) {
            const std::string label =
                (reader.files().empty() ? modelPath : reader.files().front()).string() + ": GGUF metadata";
            return tokenizerFromGguf(*it, label);
        }
    }

    // A .novaq file carries its source's tokenizer files: load them from a private copy.
    if (const auto attached = novaqAttachments(reader); !attached.empty()) {
        std::string tmpl = (fs::temp_directory_path() / "novaq-tokenizer-XXXXXX").string();
        if (mkdtemp(tmpl.data())) {
            const fs::path tmp = tmpl;
            std::unique_ptr<Tokenizer> found;
            try {
                for (const auto& [name, bytes] : attached) {
                    std::ofstream out(tmp / name, std::ios::binary);
                    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
                    out.close();
                    if (!out)
                        throw Error(ErrorKind::Io,
                                    "cannot unpack the tokenizer carried in " + modelPath.string() + " to " +
                                        tmp.string() +
                                        " (is the temporary folder full?); give it with --tokenizer FILE");
                }
                if (const auto files = tokenizerFilesBeside(tmp / "model"); !files.empty())
                    found = loadTokenizerFromFolder(tmp);
            } catch (...) {
                std::error_code rmEc;
                fs::remove_all(tmp, rmEc);
                throw;
            }
            std::error_code rmEc;
            fs::remove_all(tmp, rmEc);
            if (found)
                return found;
        }
    }

    std::error_code ec;
    const fs::path dir = fs::is_directory(modelPath, ec) ? modelPath : modelPath.parent_path();
    if (!tokenizerFilesBeside(modelPath).empty())
        return loadTokenizerFromFolder(dir);
    // A .novaq file without attachments: the source model it was compressed from, when it is
    // still where the manifest says.
    if (meta.is_object() && meta.contains("novaq") && meta["novaq"].is_object()) {
        const nlohmann::json& source = meta["novaq"].value("source", nlohmann::json::object());
        if (source.is_object() && source.contains("path") && source["path"].is_string()) {
            const fs::path origin = source["path"].get<std::string>();
            if (fs::exists(origin, ec) && !tokenizerFilesBeside(origin).empty())
                return loadTokenizerFromFolder(fs::is_directory(origin, ec) ? origin : origin.parent_path());
        }
    }

    throw Error(ErrorKind::InvalidInput,
                modelPath.string() +
                    ": no tokenizer found. Looked for tokenizer metadata in the model "
                    "(GGUF tokenizer.ggml.*) and, in " +
                    (dir.empty() ? std::string(".") : dir.string()) +
                    ", for tokenizer.json, tokenizer.model, tok*.bin and tok*.model (for a .novaq file also "
                    "inside it and in its source model's folder). Put the model's tokenizer file (as published "
                    "with the weights) in that folder.");
}

} // namespace novaq
