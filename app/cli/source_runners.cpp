// What `novaq search`, `hf`, `ollama` and `url` do (their table is source_commands.cpp). Linked
// by novaq-net only: `novaq` hands these commands to it (net_helper.h).

#include "cli_help.h"
#include "commands.h"
#include "download_printer.h"
#include "source_commands.h"
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
