// `novaq eval` and `novaq generate`: run a model (original or compressed) with the engine's
// Llama runtime and say how good it is.

#include "cli_help.h"
#include "commands.h"
#include "terminal.h"

#include "novaq/io/error.h"
#include "novaq/pipeline/report.h"
#include "novaq/runtime/generator.h"
#include "novaq/runtime/run_report.h"
#include "novaq/runtime/session.h"
#include "novaq/text/chat_template.h"

#include <nlohmann/json.hpp>
#include <tbb/global_control.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>

namespace novaq::cli {

namespace fs = std::filesystem;

namespace {

const OptionSpec& kHelp = kHelpOption;
const OptionSpec& kJson = kJsonOption;
// A command's own options, then the ones eval and generate share.
std::vector<OptionSpec> withRuntimeOptions(std::vector<OptionSpec> own)
{
    OptionSpec tokenizer = kTokenizerOption;
    tokenizer.help += ", else the --against model's";
    own.push_back(tokenizer);
    for (const OptionSpec* o : {&kDecodeOption, &kTablesOption, &kThreadsOption, &kJson, &kHelp})
        own.push_back(*o);
    return own;
}

int runEval(const Context& context, const ParsedArgs& args)
{
    EvalRequest request;
    request.model = oneModelArgument(args, "the MODEL to evaluate");
    request.against = optionalPath(args, "--against");
    const auto text = optionalPath(args, "--text");
    if (!text)
        throw Error(ErrorKind::InvalidArgument, "missing --text FILE: the plain-text file to measure on");
    request.text = *text;
    request.tokenizer = optionalPath(args, "--tokenizer");
    if (auto v = args.value("--ctx"))
        request.options.ctx = static_cast<int>(parseInteger("--ctx", *v, 2, 1 << 20));
    if (auto v = args.value("--max-tokens"))
        request.maxTokens = parseInteger("--max-tokens", *v, 2, int64_t(1) << 40);
    if (auto v = args.value("--split")) {
        if (*v == "lines")
            request.split = DocumentSplit::Lines;
        else if (*v == "paragraphs")
            request.split = DocumentSplit::Paragraphs;
        else
            throw Error(ErrorKind::InvalidArgument, "--split must be 'lines' or 'paragraphs', got '" + *v + "'");
    }
    if (auto v = args.value("--protocol")) {
        if (*v == "novaq")
            request.options.protocol = EvalProtocol::Novaq;
        else if (*v == "llama.cpp")
            request.options.protocol = EvalProtocol::LlamaCpp;
        else
            throw Error(ErrorKind::InvalidArgument, "--protocol must be 'novaq' or 'llama.cpp', got '" + *v + "'");
    }
    const bool llamaCpp = request.options.protocol == EvalProtocol::LlamaCpp;
    if (llamaCpp && args.has("--split"))
        throw Error(ErrorKind::InvalidArgument,
                    "--split does not apply to --protocol llama.cpp, which reads the text as one document");
    request.decodeQuantized = args.has("--decode");
    request.tables = tablesOption(args);
    const auto limit = threadLimit(args);
    const bool json = args.has("--json");

    const bool live = !json && isatty(fileno(stderr));
    const EvalReport report = evaluateFiles(request, context.cancel, [&](const ProgressStep& step) {
        if (live)
            std::fprintf(stderr, "\r%s%lld/%lld windows", textBar(step.fraction()).c_str(),
                         static_cast<long long>(step.done), static_cast<long long>(step.total));
    });
    if (live)
        std::fprintf(stderr, "\r%*s\r", static_cast<int>(terminalColumns(stderr)) - 1, "");
    if (json)
        std::cout << evalReportJson(request, report).dump(2) << '\n';
    else
        std::cout << formatEvalReport(request, report, shown);
    return kExitSuccess;
}

int runGenerate(const Context& context, const ParsedArgs& args)
{
    const fs::path modelPath = oneModelArgument(args, "the MODEL to run");
    const auto againstPath = optionalPath(args, "--against");
    const auto tokenizerPath = optionalPath(args, "--tokenizer");
    const auto prompt = args.value("--prompt");
    if (!prompt || prompt->empty())
        throw Error(ErrorKind::InvalidArgument, "missing --prompt TEXT: the text to continue");
    GenerateOptions options;
    if (auto v = args.value("--max-tokens"))
        options.maxTokens = static_cast<int>(parseInteger("--max-tokens", *v, 1, 1 << 20));
    if (auto v = args.value("--temperature")) {
        options.temperature = static_cast<float>(parseNumber("--temperature", *v));
        if (options.temperature < 0)
            throw Error(ErrorKind::InvalidArgument, "--temperature must be >= 0 (0 is greedy), got '" + *v + "'");
    }
    if (auto v = args.value("--seed"))
        options.seed = parseUnsigned("--seed", *v);
    const LoadOptions load = loadOptionsFrom(args);
    const auto limit = threadLimit(args);
    const bool json = args.has("--json");

    const RunnableModel model = openRunnable(modelPath, tokenizerPath, load);
    std::optional<RunnableModel> against;
    if (againstPath)
        against = openRunnable(*againstPath, tokenizerPath, load);
    const Tokenizer& tokenizer = tokenizerOf(model, against ? &*against : nullptr);
    std::vector<int32_t> ids = tokenizer.encode(*prompt, false);
    const int bos = bosOf(model.model.config, tokenizer);
    if (bos >= 0)
        ids.insert(ids.begin(), bos);

    // Printed text grows as decode(prompt + produced) grows past decode(prompt), so spaces
    // and characters made of several byte tokens come out right.
    const std::vector<int32_t> promptIds(ids.begin() + (bos >= 0 ? 1 : 0), ids.end());
    const std::string promptText = tokenizer.decode(promptIds);
    auto continuation = [&](const std::vector<int32_t>& produced) {
        std::vector<int32_t> all = promptIds;
        all.insert(all.end(), produced.begin(), produced.end());
        const std::string full = tokenizer.decode(all);
        return full.starts_with(promptText) ? full.substr(promptText.size()) : full;
    };
    std::vector<Generation> generations;
    auto runOne = [&](const RunnableModel& m, const char* label) {
        if (!json)
            std::cout << label << " (" << printable(m.path.string()) << "):\n"
                      << printable(*prompt, true) << std::flush;
        std::vector<int32_t> produced;
        // Text as decode(prompt + produced) grows past decode(prompt), whole UTF-8 characters
        // only: a character still waiting for byte tokens (which decoders show as U+FFFD) is
        // held back until it is complete. Tokens come from the tokenizer's file: printable().
        IncrementalDecoder decoder(tokenizer, promptIds);
        const auto started = std::chrono::steady_clock::now();
        generate(
            m.model, ids, options,
            [&](int32_t id) {
                produced.push_back(id);
                if (!json)
                    std::cout << printable(decoder.push(id), true) << std::flush;
                return true;
            },
            context.cancel);
        if (!json)
            std::cout << printable(decoder.flush(), true) << std::flush;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const double rate = produced.empty() ? 0.0 : double(produced.size()) / seconds;
        if (json) {
            generations.push_back({m.path, continuation(produced), produced, rate});
        } else {
            std::cout << "\n" << generationSummary(produced.size(), rate) << "\n";
        }
    };
    runOne(model, againstPath ? "compressed" : "model");
    if (against) {
        if (!json)
            std::cout << '\n';
        runOne(*against, "original");
    }
    if (json)
        std::cout << generationsJson(*prompt, generations).dump(2) << '\n';
    return kExitSuccess;
}

} // namespace

const OptionSpec kTablesOption{
    "--tables", "KIND",
    "arithmetic of the products in the code domain: int8 (look-up tables 2-4x faster with AVX-512 VBMI, and "
    "prompts through an int8 product about 2x faster with AVX-512 VNNI; about 1% rounding per product, as "
    "llama.cpp's 8-bit activations) or f32 (exact)",
    fastestTables() == Tables::Int8 ? "int8 (this CPU has AVX-512 VBMI)" : "f32 (this CPU lacks AVX-512 VBMI)"};

const OptionSpec kThreadsOption{"--threads", "N", "worker threads, 0 = all cores", "0"};
const OptionSpec kDecodeOption{"--decode", "",
                               "decode quantized matrices to F32 once at load instead of multiplying in the code "
                               "domain (faster for long texts, more memory)",
                               ""};
const OptionSpec kTokenizerOption{
    "--tokenizer", "FILE",
    "tokenizer to use (tokenizer.model, tokenizer.json, a GGUF file, a llama2.c tok*.bin); default: the model's own",
    ""};

const OptionSpec& chatTemplateOption()
{
    static const OptionSpec kOption{
        "--chat-template", "NAME",
        "built-in chat template to use instead of the model's own: " + builtinTemplateNames(), ""};
    return kOption;
}

std::string builtinTemplateNames()
{
    std::string names;
    for (const std::string& n : ChatTemplate::builtinNames())
        names += (names.empty() ? "" : ", ") + n;
    return names;
}

Tables tablesOption(const ParsedArgs& args)
{
    const auto v = args.value("--tables");
    if (!v)
        return fastestTables();
    if (*v == "int8")
        return Tables::Int8;
    if (*v == "f32")
        return Tables::F32;
    throw Error(ErrorKind::InvalidArgument, "--tables must be int8 or f32, got '" + *v + "'");
}

LoadOptions loadOptionsFrom(const ParsedArgs& args)
{
    LoadOptions load;
    load.decodeQuantized = args.has("--decode");
    load.tables = tablesOption(args);
    return load;
}

RunnableModel openToRun(const fs::path& path, const ParsedArgs& args)
{
    return openRunnable(path, optionalPath(args, "--tokenizer"), loadOptionsFrom(args));
}

std::optional<tbb::global_control> threadLimit(const ParsedArgs& args)
{
    std::optional<tbb::global_control> limit;
    if (auto t = args.value("--threads")) {
        const int64_t n = parseInteger("--threads", *t, 0, kMaxThreads);
        if (n > 0)
            limit.emplace(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(n));
    }
    return limit;
}

std::optional<fs::path> optionalPath(const ParsedArgs& args, const char* option)
{
    if (auto v = args.value(option)) {
        requireExisting(*v);
        return fs::path(*v);
    }
    return std::nullopt;
}

void addRuntimeCommands(std::vector<Command>& commands)
{
    commands.push_back(Command{
        .name = "eval",
        .arguments = "MODEL",
        .summary = "Perplexity of a model on a text; with --against, KL divergence and top-1 agreement",
        .details = "MODEL is a .novaq file or an original model (safetensors folder, GGUF, llama2.c, ...) of\n"
                   "the Llama family. Protocol: the tokens are, over the documents of the text (non-empty\n"
                   "lines, or blank-line-separated paragraphs with --split paragraphs), [BOS] followed by the\n"
                   "document's token ids; window j of N = --ctx tokens has inputs t[jN..jN+N-1] and targets\n"
                   "t[jN+1..jN+N]; windows run while jN+N+1 <= len(t), the last partial one is dropped; no BOS\n"
                   "is added at window starts and nothing carries over; every target is scored.\n"
                   "Perplexity = exp(mean negative log-likelihood). KL = mean over the scored positions of\n"
                   "KL(original || model) of the next-token distributions, in nats; top-1 = how often both\n"
                   "models' most likely next token agree. Quantized matrices are multiplied in the code\n"
                   "domain unless --decode is given.\n"
                   "With --protocol llama.cpp, llama-perplexity's protocol instead, to compare with figures\n"
                   "published with it: tokens = [BOS] + the whole text's ids; chunk j of N = --ctx tokens is\n"
                   "t[jN..jN+N-1] with its first token replaced by BOS; only the second half is scored\n"
                   "(positions N/2..N-2, each predicting the next token of the chunk); at least two chunks.\n"
                   "llama-perplexity's --chunks C corresponds to --max-tokens C*N.",
        .options = withRuntimeOptions({
            {"--text", "FILE", "the plain-text file to measure on (required; a regular file of at most 1 GiB)", ""},
            {"--against", "ORIGINAL", "the original model, for KL divergence and top-1 agreement", ""},
            {"--ctx", "N", "window length in tokens", "256"},
            {"--split", "S", "documents of the text: lines or paragraphs", "lines"},
            {"--protocol", "P", "novaq, or llama.cpp (llama-perplexity's chunks, second half scored)", "novaq"},
            {"--max-tokens", "N", "use only the first N tokens of the text", ""},
        }),
        .examples = {"novaq eval model.novaq --against kjv-llama-7m --text kjv_john.txt",
                     "novaq eval stories260K.gguf --text tinystories_valid.txt --split paragraphs --max-tokens 8192",
                     "novaq eval model.gguf --text wiki.test.raw --protocol llama.cpp --ctx 512"},
        .run = runEval,
    });
    commands.push_back(Command{
        .name = "generate",
        .arguments = "MODEL",
        .summary = "Continue a prompt with a model (and with the original beside it)",
        .details = "Greedy by default (--temperature 0). With --against ORIGINAL both continue the same\n"
                   "prompt, one after the other, so the two texts can be compared.",
        .options = withRuntimeOptions({
            {"--prompt", "TEXT", "the text to continue (required)", ""},
            {"--max-tokens", "N", "new tokens at most", "64"},
            {"--against", "ORIGINAL", "also continue with this model", ""},
            {"--temperature", "T", "sampling temperature; 0 picks the most likely token", "0"},
            {"--seed", "S", "random seed for sampling", "1"},
        }),
        .examples = {"novaq generate model.novaq --prompt \"In the beginning\" --against kjv-llama-7m"},
        .run = runGenerate,
    });
}

} // namespace novaq::cli
