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
#include "novaq/sources/listing.h"
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
    if (json)
        std::cout << sources::modelInfoJson(info, choice ? &*choice : nullptr).dump(2) << '\n';
    else
        std::cout << sources::formatModelInfo(info, revision, choice ? &*choice : nullptr, choiceProblem, shown);
    return kExitSuccess;
}

} // namespace

void addSourceCommands(std::vector<Command>& commands)
{
    commands.push_back(Command{
        .name = "search",
        .arguments = "QUERY",
        .summary = "Search the Hugging Face Hub for models",
        .details = "Models whose id contains QUERY, most downloaded first by default. HF_ENDPOINT selects a\n"
                   "mirror; a token (HF_TOKEN) raises the Hub's rate limit.",
        .options =
            {
                {"--format", "F", "only models tagged with this format or library: gguf, safetensors, onnx, ...", ""},
                {"--sort", "S", "order: " + sortNames(), "downloads"},
                {"--limit", "N", "how many results, 1.." + std::to_string(kMaxSearchResults), "20"},
                kJson,
                kHelp,
            },
        .examples = {"novaq search llama --format gguf", "novaq search qwen2.5 --sort likes --limit 5 --json"},
        .run = runSearch,
    });
    commands.push_back(Command{
        .name = "hf",
        .arguments = "REPO_ID",
        .summary = "Download a Hugging Face model (or use the cached copy) and compress it",
        .details = "REPO_ID is org/name (or its huggingface.co URL). Picks safetensors (with their index), else\n"
                   "PyTorch shards, else the GGUF file named with --file; verifies every file's size and\n"
                   "SHA-256; resumes interrupted downloads. Files go into the huggingface_hub cache\n"
                   "(HF_HUB_CACHE, HF_HOME) and files already there are used without downloading.\n"
                   "Token: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HUGGINGFACE_HUB_TOKEN or $HF_HOME/token, sent only\n"
                   "to the Hub. HF_ENDPOINT selects a mirror; HF_HUB_OFFLINE=1 uses the cache only.",
        .options = withCompressOptions({
            {"--list", "", "show the model's details and files (sizes, SHA-256) and exit", ""},
            {"--revision", "R", "branch, tag or commit", "main"},
            {"--file", "F", "the file to use: a path in the repo, or part of a GGUF name such as Q8_0", ""},
        }),
        .examples = {"novaq hf TinyLlama/TinyLlama-1.1B-Chat-v1.0 --bits 2",
                     "novaq hf bartowski/Llama-3.2-1B-Instruct-GGUF --list",
                     "novaq hf bartowski/Llama-3.2-1B-Instruct-GGUF --file Q8_0 --output llama.novaq"},
        .showsBitsTable = true,
        .run = runHf,
    });
    commands.push_back(Command{
        .name = "ollama",
        .arguments = "[NAME]",
        .summary = "Compress a model from the Ollama store (or pull it from a registry)",
        .details = "NAME is model, model:tag, namespace/model:tag or host[:port]/namespace/model:tag (tag\n"
                   "latest, namespace library by default). A model already pulled is read in place from the\n"
                   "store (OLLAMA_MODELS, ~/.ollama/models, /usr/share/ollama/.ollama/models); otherwise its\n"
                   "GGUF weights are pulled from the registry into NOVAQ's own store, verified by SHA-256.\n"
                   "--list shows the models of a running Ollama server (OLLAMA_HOST), else of the stores.",
        .options = withCompressOptions({
            {"--list", "", "list the models Ollama has and exit", ""},
            {"--insecure", "", "allow a plain-http registry", ""},
        }),
        .examples = {"novaq ollama --list", "novaq ollama llama3.2:1b --bits 2",
                     "novaq ollama localhost:5000/team/model:v1 --insecure"},
        .showsBitsTable = true,
        .run = runOllama,
    });
    commands.push_back(Command{
        .name = "url",
        .arguments = "URL",
        .summary = "Download a model from an http(s) URL and compress it",
        .details = "The file is named from Content-Disposition or the URL (never outside the download folder),\n"
                   "resumes when interrupted, and is recognized by its content, whatever its name.",
        .options = withCompressOptions({
            {"--download-dir", "DIR", "where the downloaded file goes", "~/.cache/novaq/downloads"},
        }),
        .examples = {"novaq url https://example.org/models/tiny.gguf --bits 2"},
        .showsBitsTable = true,
        .run = runUrl,
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
    if (args.has("--json"))
        std::cout << sources::searchResultsJson(models).dump(2) << '\n';
    else
        std::cout << sources::formatSearchResults(models, query, shown);
    return kExitSuccess;
}

int runHf(const Context& context, const ParsedArgs& args)
{
    expectOne(args, "the Hugging Face model id (org/name)");
    const hf::HubSettings settings = hf::HubSettings::fromEnvironment();
    const std::string repo = hf::repoIdFrom(args.positionals.front(), settings.endpoint);
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
        std::fprintf(stderr, "%s\n", sources::snapshotSummary(repo, snapshot, shown).c_str());
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
        if (args.has("--json"))
            std::cout << sources::ollamaListJson(rows).dump(2) << '\n';
        else
            std::cout << sources::formatOllamaList(rows, fromServer.has_value(), server, stores, shown);
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
        std::fprintf(stderr, "%s\n", sources::urlDownloadSummary(download, format, shown).c_str());
        options.input = download.file;
        options.sourceLabel = net::redactUrl(url);
    }
    shareSourceFromRankZero(options, context.cancel);
    return compressAndReport(context, args, options);
}

} // namespace novaq::cli
