// `novaq search`, `hf`, `ollama` and `url`: name a model the way you know it; NOVAQ fetches
// it (or finds it already on disk) and compresses it exactly as `novaq local` does.

#include "cli_help.h"
#include "commands.h"
#include "download_printer.h"
#include "terminal.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/net/downloader.h"
#include "novaq/pipeline/cluster.h"
#include "novaq/pipeline/report.h"
#include "novaq/sources/huggingface.h"
#include "novaq/sources/ollama.h"
#include "novaq/sources/url_source.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace novaq::cli {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxSearchResults = 1000;

const OptionSpec& kHelp = kHelpOption;
const OptionSpec& kJson = kJsonOption;

// The sort keys `novaq search` offers, and what the Hub calls them.
struct SortRow {
    const char* name;
    const char* hubKey;
};
constexpr SortRow kSorts[] = {
    {"downloads", "downloads"},
    {"likes", "likes"},
    {"updated", "lastModified"},
    {"trending", "trendingScore"},
};

std::string sortNames()
{
    std::string names;
    for (const SortRow& s : kSorts)
        names += (names.empty() ? "" : ", ") + std::string(s.name);
    return names;
}

std::vector<OptionSpec> withCompressOptions(std::vector<OptionSpec> own)
{
    for (OptionSpec& o : compressOptionSpecs())
        own.push_back(std::move(o));
    own.push_back(kHelp);
    return own;
}

void expectOne(const ParsedArgs& args, const std::string& what)
{
    if (args.positionals.size() > 1)
        throw Error(ErrorKind::InvalidArgument,
                    "too many arguments: expected " + what + ", also got '" + args.positionals[1] + "'");
    if (args.positionals.empty())
        throw Error(ErrorKind::InvalidArgument, "missing " + what + "; run with --help for the usage");
}

// "https://huggingface.co/org/name", "hf.co/org/name", "org/name" -> "org/name".
std::string repoIdFrom(std::string text, const std::string& endpoint)
{
    for (const std::string& prefix :
         {endpoint + "/", std::string("https://huggingface.co/"), std::string("http://huggingface.co/"),
          std::string("https://hf.co/"), std::string("huggingface.co/"), std::string("hf.co/")})
        if (text.starts_with(prefix)) {
            text = text.substr(prefix.size());
            break;
        }
    while (!text.empty() && text.back() == '/')
        text.pop_back();
    return text;
}

std::string shortCommit(const std::string& commit) { return commit.substr(0, 12); }

std::string countText(uint64_t n)
{
    char buf[32];
    if (n >= 1000000)
        std::snprintf(buf, sizeof buf, "%.1fM", double(n) / 1e6);
    else if (n >= 10000)
        std::snprintf(buf, sizeof buf, "%.1fk", double(n) / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
    return buf;
}

std::string pad(const std::string& s, size_t width)
{
    return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

std::string padLeft(const std::string& s, size_t width)
{
    return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

nlohmann::json infoJson(const hf::ModelInfo& info, const hf::FileChoice* choice)
{
    nlohmann::json files = nlohmann::json::array();
    for (const hf::RepoFile& f : info.files) {
        const bool chosen =
            choice && std::find(choice->files.begin(), choice->files.end(), f.path) != choice->files.end();
        files.push_back(
            {{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}, {"git_oid", f.gitOid}, {"selected", chosen}});
    }
    return {{"id", info.id},
            {"revision", info.revision},
            {"commit", info.commit},
            {"gated", info.gated},
            {"private", info.isPrivate},
            {"architecture", info.architecture},
            {"parameters", info.parameters},
            {"pipeline_tag", info.pipelineTag},
            {"library_name", info.libraryName},
            {"downloads", info.downloads},
            {"likes", info.likes},
            {"last_modified", info.lastModified},
            {"selection", choice ? choice->description : ""},
            {"files", files}};
}

int listHf(const hf::HubClient& hub, const std::string& repo, const std::string& revision, const std::string& file,
           bool json)
{
    const hf::ModelInfo info = hub.modelInfo(repo, revision);
    std::optional<hf::FileChoice> choice;
    std::string choiceProblem;
    try {
        choice = hf::chooseFiles(info.files, file, repo);
    } catch (const Error& e) {
        choiceProblem = e.what();
    }
    if (json) {
        std::cout << infoJson(info, choice ? &*choice : nullptr).dump(2) << '\n';
        return kExitSuccess;
    }
    std::cout << printable(info.id) << " at " << printable(revision) << " (commit " << shortCommit(info.commit)
              << ")\n";
    std::cout << "  architecture: " << (info.architecture.empty() ? "unknown" : printable(info.architecture))
              << "   parameters: " << (info.parameters ? countText(info.parameters) : std::string("unknown"))
              << "   gated: " << (info.gated == "false" ? "no" : printable(info.gated) + " (needs a token with access)")
              << (info.isPrivate ? "   private" : "") << '\n';
    size_t width = 0;
    uint64_t total = 0;
    for (const hf::RepoFile& f : info.files)
        width = std::max(width, printable(f.path).size());
    std::cout << "  files (* = what `novaq hf` downloads):\n";
    for (const hf::RepoFile& f : info.files) {
        const bool chosen =
            choice && std::find(choice->files.begin(), choice->files.end(), f.path) != choice->files.end();
        total += f.size;
        std::cout << "  " << (chosen ? "* " : "  ") << pad(printable(f.path), width + 2)
                  << padLeft(humanBytes(f.size), 10)
                  << (f.sha256.empty() ? "" : "  sha256 " + f.sha256.substr(0, 16) + "...") << '\n';
    }
    std::cout << "  " << info.files.size() << " files, " << humanBytes(total) << " in all\n";
    if (choice)
        std::cout << "  selected: " << printable(choice->description)
                  << (choice->indexPath.empty() ? "" : " (shards listed in the index)") << '\n';
    else
        std::cout << "  selected: nothing yet; " << printable(choiceProblem) << '\n';
    return kExitSuccess;
}

} // namespace

void addSourceCommands(std::vector<Command>& commands)
{
    commands.push_back(Command{
        "search",
        "QUERY",
        "Search the Hugging Face Hub for models",
        "Models whose id contains QUERY, most downloaded first by default. HF_ENDPOINT selects a\n"
        "mirror; a token (HF_TOKEN) raises the Hub's rate limit.",
        {
            {"--format", "F", "only models tagged with this format or library: gguf, safetensors, onnx, ...", ""},
            {"--sort", "S", "order: " + sortNames(), "downloads"},
            {"--limit", "N", "how many results, 1.." + std::to_string(kMaxSearchResults), "20"},
            kJson,
            kHelp,
        },
        {"novaq search llama --format gguf", "novaq search qwen2.5 --sort likes --limit 5 --json"},
        false,
        runSearch,
        "",
    });
    commands.push_back(Command{
        "hf",
        "REPO_ID",
        "Download a Hugging Face model (or use the cached copy) and compress it",
        "REPO_ID is org/name (or its huggingface.co URL). Picks safetensors (with their index), else\n"
        "PyTorch shards, else the GGUF file named with --file; verifies every file's size and\n"
        "SHA-256; resumes interrupted downloads. Files go into the huggingface_hub cache\n"
        "(HF_HUB_CACHE, HF_HOME) and files already there are used without downloading.\n"
        "Token: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HUGGINGFACE_HUB_TOKEN or $HF_HOME/token, sent only\n"
        "to the Hub. HF_ENDPOINT selects a mirror; HF_HUB_OFFLINE=1 uses the cache only.",
        withCompressOptions({
            {"--list", "", "show the model's details and files (sizes, SHA-256) and exit", ""},
            {"--revision", "R", "branch, tag or commit", "main"},
            {"--file", "F", "the file to use: a path in the repo, or part of a GGUF name such as Q8_0", ""},
        }),
        {"novaq hf TinyLlama/TinyLlama-1.1B-Chat-v1.0 --bits 2", "novaq hf bartowski/Llama-3.2-1B-Instruct-GGUF --list",
         "novaq hf bartowski/Llama-3.2-1B-Instruct-GGUF --file Q8_0 --output llama.novaq"},
        true,
        runHf,
        "",
    });
    commands.push_back(Command{
        "ollama",
        "[NAME]",
        "Compress a model from the Ollama store (or pull it from a registry)",
        "NAME is model, model:tag, namespace/model:tag or host[:port]/namespace/model:tag (tag\n"
        "latest, namespace library by default). A model already pulled is read in place from the\n"
        "store (OLLAMA_MODELS, ~/.ollama/models, /usr/share/ollama/.ollama/models); otherwise its\n"
        "GGUF weights are pulled from the registry into NOVAQ's own store, verified by SHA-256.\n"
        "--list shows the models of a running Ollama server (OLLAMA_HOST), else of the stores.",
        withCompressOptions({
            {"--list", "", "list the models Ollama has and exit", ""},
            {"--insecure", "", "allow a plain-http registry", ""},
        }),
        {"novaq ollama --list", "novaq ollama llama3.2:1b --bits 2",
         "novaq ollama localhost:5000/team/model:v1 --insecure"},
        true,
        runOllama,
        "",
    });
    commands.push_back(Command{
        "url",
        "URL",
        "Download a model from an http(s) URL and compress it",
        "The file is named from Content-Disposition or the URL (never outside the download folder),\n"
        "resumes when interrupted, and is recognized by its content, whatever its name.",
        withCompressOptions({
            {"--download-dir", "DIR", "where the downloaded file goes", "~/.cache/novaq/downloads"},
        }),
        {"novaq url https://example.org/models/tiny.gguf --bits 2"},
        true,
        runUrl,
        "",
    });
}

int runSearch(const Context& context, const ParsedArgs& args)
{
    expectOne(args, "a search QUERY (part of a model id, e.g. llama)");
    hf::SearchQuery query;
    query.text = args.positionals.front();
    query.format = args.value("--format").value_or("");
    const std::string sort = args.value("--sort").value_or("downloads");
    const auto row =
        std::find_if(std::begin(kSorts), std::end(kSorts), [&](const SortRow& s) { return sort == s.name; });
    if (row == std::end(kSorts))
        throw Error(ErrorKind::InvalidArgument, "--sort " + sort + " is not an order; choose one of " + sortNames());
    query.sort = row->hubKey;
    if (auto limit = args.value("--limit"))
        query.limit = int(parseInteger("--limit", *limit, 1, kMaxSearchResults));

    const hf::HubClient hub(hf::HubSettings::fromEnvironment(), {}, nullptr, context.cancel);
    const std::vector<hf::ModelSummary> models = hub.search(query);
    if (args.has("--json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const hf::ModelSummary& m : models)
            out.push_back({{"id", m.id},
                           {"downloads", m.downloads},
                           {"likes", m.likes},
                           {"last_modified", m.lastModified},
                           {"pipeline_tag", m.pipelineTag},
                           {"library_name", m.libraryName},
                           {"gated", m.gated},
                           {"tags", m.tags}});
        std::cout << out.dump(2) << '\n';
        return kExitSuccess;
    }
    if (models.empty()) {
        std::cout << "No models match '" << query.text << "'"
                  << (query.format.empty() ? "" : " with format " + query.format) << ".\n";
        return kExitSuccess;
    }
    size_t width = 5;
    for (const hf::ModelSummary& m : models)
        width = std::max(width, printable(m.id).size());
    std::cout << pad("MODEL", width + 2) << padLeft("DOWNLOADS", 10) << padLeft("LIKES", 8) << "  UPDATED     NOTE\n";
    for (const hf::ModelSummary& m : models)
        std::cout << pad(printable(m.id), width + 2) << padLeft(countText(m.downloads), 10)
                  << padLeft(countText(m.likes), 8) << "  " << pad(printable(m.lastModified.substr(0, 10)), 12)
                  << (m.gated == "false" ? "" : "gated") << '\n';
    std::cout << models.size() << " models; `novaq hf ID --list` shows one's files\n";
    return kExitSuccess;
}

int runHf(const Context& context, const ParsedArgs& args)
{
    expectOne(args, "the Hugging Face model id (org/name)");
    const hf::HubSettings settings = hf::HubSettings::fromEnvironment();
    const std::string repo = repoIdFrom(args.positionals.front(), settings.endpoint);
    const std::string revision = args.value("--revision").value_or("main");
    const std::string file = args.value("--file").value_or("");
    DownloadPrinter printer(stderr, context.cancel);
    const hf::HubClient hub(settings, {}, &printer, context.cancel);
    if (args.has("--list"))
        return listHf(hub, repo, revision, file, args.has("--json"));

    CompressOptions options = compressOptionsFrom(args);
    requireOutputFolderOf(options);
    if (cluster().rank() == 0) { // on a cluster, rank 0 downloads once into the shared cache
        const hf::Snapshot snapshot = hub.download(repo, revision, file);
        printer.clear();
        std::fprintf(stderr, "%s at commit %s: %s; %d file(s) from the cache, %d downloaded (%s)%s\n", repo.c_str(),
                     shortCommit(snapshot.commit).c_str(), printable(snapshot.description).c_str(),
                     snapshot.filesCached, snapshot.filesDownloaded, humanBytes(snapshot.downloadedBytes).c_str(),
                     snapshot.offline ? ", offline" : "");
        options.input = snapshot.modelPath;
        options.sourceLabel = "hf:" + repo + "@" + snapshot.commit;
    }
    shareSourceFromRankZero(options, context.cancel);
    return compressAndReport(context, args, options);
}

int runOllama(const Context& context, const ParsedArgs& args)
{
    if (args.has("--list")) {
        if (!args.positionals.empty())
            throw Error(ErrorKind::InvalidArgument, "--list takes no NAME; run `novaq ollama --list` alone");
        const std::string server = ollama::serverUrl();
        const auto fromServer = ollama::listFromServer(server, context.cancel);
        const std::vector<fs::path> stores = ollama::storeFolders();
        const std::vector<ollama::ListedModel> rows = fromServer ? *fromServer : ollama::listStores(stores);
        if (args.has("--json")) {
            nlohmann::json out = nlohmann::json::array();
            for (const ollama::ListedModel& m : rows)
                out.push_back({{"name", m.name},
                               {"size", m.size},
                               {"family", m.family},
                               {"parameter_size", m.parameterSize},
                               {"quantization", m.quantization},
                               {"modified", m.modified},
                               {"where", m.where}});
            std::cout << out.dump(2) << '\n';
            return kExitSuccess;
        }
        if (fromServer) {
            std::cout << "Models of the Ollama server at " << server << ":\n";
        } else {
            std::cout << "No Ollama server answers at " << server << "; models in the stores";
            for (const fs::path& s : stores)
                std::cout << " " << s.string();
            std::cout << ":\n";
        }
        size_t width = 4;
        for (const ollama::ListedModel& m : rows)
            width = std::max(width, printable(m.name).size());
        for (const ollama::ListedModel& m : rows) {
            std::cout << "  " << pad(printable(m.name), width + 2) << padLeft(humanBytes(m.size), 10);
            if (!m.parameterSize.empty() || !m.quantization.empty())
                std::cout << "  " << printable(m.parameterSize) << " " << printable(m.quantization);
            if (!fromServer)
                std::cout << "  " << printable(m.where);
            std::cout << '\n';
        }
        std::cout << rows.size() << " models" << (rows.empty() ? "; pull one with `ollama pull NAME`" : "") << '\n';
        return kExitSuccess;
    }
    expectOne(args, "an Ollama model NAME (e.g. llama3.2:1b), or --list");
    const ollama::ModelName name = ollama::ModelName::parse(args.positionals.front());
    CompressOptions options = compressOptionsFrom(args);
    requireOutputFolderOf(options);
    if (cluster().rank() == 0) { // on a cluster, rank 0 pulls once into the shared store
        const std::vector<fs::path> stores = ollama::storeFolders();
        std::optional<ollama::LocalModel> local = ollama::findLocal(name, stores);
        if (local) {
            std::fprintf(stderr, "%s: reading %s in place from the store %s\n", name.shortest().c_str(),
                         local->blob.filename().string().c_str(), local->store.string().c_str());
        } else {
            std::fprintf(stderr, "%s is not in the Ollama store; pulling it from %s into %s\n", name.shortest().c_str(),
                         name.host.c_str(), ollama::novaqStore().string().c_str());
            DownloadPrinter printer(stderr, context.cancel);
            local = ollama::pull(name, args.has("--insecure"), ollama::novaqStore(), {}, &printer, context.cancel);
        }
        options.input = local->blob;
        options.sourceLabel = "ollama:" + name.shortest();
    }
    shareSourceFromRankZero(options, context.cancel);
    return compressAndReport(context, args, options);
}

int runUrl(const Context& context, const ParsedArgs& args)
{
    expectOne(args, "the http(s) URL of a model file");
    const std::string url = args.positionals.front();
    CompressOptions options = compressOptionsFrom(args);
    requireOutputFolderOf(options);
    const fs::path folder =
        args.has("--download-dir") ? fs::path(*args.value("--download-dir")) : sources::defaultDownloadFolder();
    if (cluster().rank() == 0) { // on a cluster, rank 0 downloads once into the shared folder
        sources::UrlDownload download;
        {
            DownloadPrinter printer(stderr, context.cancel);
            download = sources::downloadUrl(url, folder, {}, &printer, context.cancel);
        }
        const ModelFormat format = detectFileFormat(download.file);
        std::fprintf(stderr, "%s %s (%s, %s)\n", download.reused ? "Using the earlier download" : "Downloaded",
                     printable(download.file.string()).c_str(), humanBytes(download.size).c_str(),
                     format == ModelFormat::Unknown ? "format not recognized by content"
                                                    : std::string(formatName(format)).c_str());
        options.input = download.file;
        options.sourceLabel = net::redactUrl(url);
    }
    shareSourceFromRankZero(options, context.cancel);
    return compressAndReport(context, args, options);
}

} // namespace novaq::cli
