// `novaq search`, `hf`, `ollama` and `url`: name a model the way you know it; NOVAQ fetches
// it (or finds it already on disk) and compresses it exactly as `novaq local` does. This file is
// their table (options, help); what they do is in source_runners.cpp, linked by novaq-net only
// (net_helper.h), so `novaq` itself loads no network library.

#include "source_commands.h"

#include "cli_help.h"
#include "commands.h"

#include <string>
#include <vector>

namespace novaq::cli {

namespace {

const OptionSpec& kHelp = kHelpOption;
const OptionSpec& kJson = kJsonOption;

std::vector<OptionSpec> withCompressOptions(std::vector<OptionSpec> own)
{
    for (OptionSpec& o : compressOptionSpecs())
        own.push_back(std::move(o));
    own.push_back(kHelp);
    return own;
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

} // namespace novaq::cli
