#include "commands.h"

#include "cli_help.h"
#include "progress_printer.h"
#include "terminal.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/container/novaq_file.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/calibration_estimate.h"
#include "novaq/pipeline/cluster.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/compress_report.h"
#include "novaq/pipeline/export.h"
#include "novaq/pipeline/fit_memory.h"
#include "novaq/pipeline/inspect.h"
#include "novaq/pipeline/report.h"
#include "novaq/pipeline/validate.h"
#include "novaq/pipeline/validate_report.h"
#include "novaq/tensor/dtype.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>

namespace novaq::cli {

namespace fs = std::filesystem;

namespace {

Error usageError(const std::string& message) { return Error(ErrorKind::InvalidArgument, message); }

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// Exactly `count` positional arguments (or at most, when `atMost`), named in the message.
void expectPositionals(const ParsedArgs& args, size_t count, const std::string& what, bool atMost = false)
{
    const size_t n = args.positionals.size();
    if (n > count)
        throw usageError("too many arguments: expected " + std::string(atMost ? "at most " : "") + what +
                         ", also got '" + args.positionals[count] + "'");
    if (!atMost && n < count)
        throw usageError("missing " + what + "; run with --help for the usage");
}

// Fails early, before any work, when the output cannot be created where it was asked for.
void requireOutputFolder(const fs::path& output, const std::string& option)
{
    const fs::path folder = output.parent_path().empty() ? fs::path(".") : output.parent_path();
    std::error_code ec;
    if (!fs::is_directory(folder, ec))
        throw Error(ErrorKind::Io, "cannot write " + quoted(output) + ": folder " + quoted(folder) +
                                       " does not exist; create it or choose another " + option);
    if (fs::is_directory(output, ec))
        throw Error(ErrorKind::Io,
                    "cannot write " + quoted(output) + ": it is a folder; give a file name with " + option);
}

std::string defaultSeedText() { return std::to_string(CompressOptions{}.seed); }

std::string presetList() { return presetListText(); }

} // namespace

ModelReport printableReport(ModelReport report)
{
    report.output = printable(report.output.string());
    report.source = printable(report.source);
    report.sourceFormat = printable(report.sourceFormat);
    report.architecture = printable(report.architecture);
    if (report.settings.is_object()) {
        nlohmann::json settings = nlohmann::json::object();
        for (const auto& [key, value] : report.settings.items())
            settings[printable(key)] = value.is_string() ? nlohmann::json(printable(value.get<std::string>())) : value;
        report.settings = std::move(settings);
    }
    for (TensorResult& t : report.tensors) {
        t.name = printable(t.name);
        t.sourceDtype = printable(t.sourceDtype);
        t.storedAs = printable(t.storedAs);
    }
    return report;
}

ModelInspection printableInspection(ModelInspection inspection)
{
    inspection.path = printable(inspection.path.string());
    inspection.format = printable(inspection.format);
    inspection.architecture = printable(inspection.architecture);
    for (fs::path& file : inspection.files)
        file = printable(file.string());
    for (TensorInspection& t : inspection.tensors) {
        t.info.name = printable(t.info.name);
        t.info.storage = printable(t.info.storage);
        t.reason = printable(t.reason);
        t.plannedAs = printable(t.plannedAs);
    }
    return inspection;
}

void requireExisting(const fs::path& path)
{
    std::error_code ec;
    if (!fs::exists(path, ec))
        throw Error(ErrorKind::Io, quoted(path) + ": no such file or folder; check the path");
}

fs::path oneModelArgument(const ParsedArgs& args, const std::string& what)
{
    expectPositionals(args, 1, what);
    const fs::path path = args.positionals.front();
    requireExisting(path);
    return path;
}

// --bits, --subspaces and the expert override --d/--b1/--b2, shared by `local`, `inspect` and
// the download commands.
void parseCodecOptions(const ParsedArgs& args, CompressOptions& options)
{
    const bool expert = args.has("--d") || args.has("--b1") || args.has("--b2");
    if (expert && !(args.has("--d") && args.has("--b1") && args.has("--b2")))
        throw usageError("the expert override needs --d, --b1 and --b2 together (e.g. --d 8 --b1 8 --b2 4)");
    if (expert && args.has("--bits"))
        throw usageError("give either --bits or the expert override --d/--b1/--b2, not both");
    if (args.has("--target-size") && args.has("--target-bits"))
        throw usageError("give either --target-size or --target-bits, not both");
    for (const char* target : {"--target-size", "--target-bits"})
        if (args.has(target) && (expert || args.has("--bits")))
            throw usageError(std::string(target) +
                             " chooses the preset of every tensor itself; leave out --bits and --d/--b1/--b2");
    for (const char* other : {"--target-size", "--target-bits", "--bits"})
        if (args.has("--fit-memory") && args.has(other))
            throw usageError(std::string("--fit-memory chooses the preset of every tensor itself; leave out ") + other);
    if (args.has("--fit-memory") && expert)
        throw usageError("--fit-memory chooses the preset of every tensor itself; leave out --d/--b1/--b2");
    if (args.has("--context") && !args.has("--fit-memory"))
        throw usageError(
            "--context is the context --fit-memory counts the KV cache at; give it with --fit-memory SIZE");
    if (auto size = args.value("--fit-memory"))
        parseSize("--fit-memory", *size); // checked here, applied once the model is known (applyFitMemory)
    if (auto n = args.value("--context"))
        parseInteger("--context", *n, 1, int64_t(1) << 24);
    if (auto size = args.value("--target-size")) {
        options.targetBytes = parseSize("--target-size", *size);
        options.targetText = "--target-size " + *size;
    }
    if (auto bits = args.value("--target-bits")) {
        const double b = parseNumber("--target-bits", *bits);
        if (!(b > 0) || b > 64)
            throw usageError("--target-bits expects effective bits per weight above 0 (e.g. 2.3), got '" + *bits + "'");
        options.targetBits = b;
        options.targetText = "--target-bits " + *bits;
    }
    double bits = options.codec.bits();
    if (auto text = args.value("--bits")) {
        bits = parseNumber("--bits", *text);
        if (!presetForBits(bits))
            throw usageError("--bits " + *text + " is not a preset; choose one of " + presetList() +
                             " (see `novaq local --help`), or the expert override --d/--b1/--b2");
    }
    // Each field inside kCodecLimits: "--d must be 1..32, got '40'".
    const auto field = [&](const char* option, const CodecLimit& limit) {
        return int(parseInteger(option, *args.value(option), limit.min, limit.max));
    };
    const CodecLimits& limits = kCodecLimits;
    const int subspaces =
        args.value("--subspaces") ? field("--subspaces", limits.subspaces) : options.codec.subspaces();
    options.codec =
        expert
            ? CodecSpec::expert({field("--d", limits.d), field("--b1", limits.b1), field("--b2", limits.b2), subspaces})
            : CodecSpec::preset(bits, subspaces);
}

std::vector<OptionSpec> compressOptionSpecs()
{
    const CompressOptions defaults;
    return {
        {"--bits", "B", "code bits per weight: " + presetList() + "; see the table below",
         formatNumber(defaults.codec.bits())},
        {"--subspaces", "K", "column subspaces, each with its own codebooks, " + kCodecLimits.subspaces.rangeText(),
         std::to_string(defaults.codec.subspaces())},
        {"--target-size", "SIZE",
         "make it fit: choose every tensor's preset so the file lands just under SIZE (bytes, or 2.2MB, 4GB, 2MiB, "
         "4GiB), with the least predicted error; instead of --bits",
         ""},
        {"--target-bits", "B",
         "make it fit: the same for effective bits per weight, everything counted (e.g. 2.3); instead of --bits", ""},
        {"--fit-memory", "SIZE",
         "make it fit: the best file that runs in SIZE of memory (weights as the runtime holds them, KV cache at "
         "--context, buffers); instead of --bits",
         ""},
        {"--context", "N",
         "with --fit-memory: the tokens the KV cache is counted at (default: the model's context length, at most "
         "4096)",
         ""},
        {"--output", "FILE", "the .novaq file to write", kDefaultOutput},
        kThreadsOption,
        {"--seed", "S", "seed of codebook training", defaultSeedText()},
        kJsonOption,
        {"--d", "D", "expert: vector length (give --d, --b1 and --b2 together, instead of --bits)", ""},
        {"--b1", "X", "expert: stage-1 codebook bits (2^X entries)", ""},
        {"--b2", "Y", "expert: stage-2 codebook bits (2^Y entries; 0 = one stage)", ""},
        {"--calibration", "FILE",
         "plain text in the model's language: run the original model on it and fit every layer to what it "
         "computes (the families `novaq inspect` says it runs; never evaluate on this text; a regular file of at most "
         "1 GiB); with --target-size, --target-bits or --fit-memory the fit also spends the bytes by the model's "
         "measured sensitivity to each tensor (1,024 tokens of the text)",
         ""},
        {"--calibration-tokens", "N",
         "use at most N tokens of the calibration text (at least the widest layer input of the model, or "
         "the refit has directions it never sees)",
         "4x the widest layer input, 32768-65536"},
        {"--with-tokenizer", "",
         "carry the model's tokenizer files inside the .novaq file (their size counts), so that eval and "
         "generate need nothing else",
         ""},
    };
}

OptionSpec compressOptionSpec(std::string_view name)
{
    for (OptionSpec& o : compressOptionSpecs())
        if (o.name == name)
            return o;
    throw Error(ErrorKind::Internal, "no option " + std::string(name) + " among the compress options");
}

CompressOptions compressOptionsFrom(const ParsedArgs& args)
{
    CompressOptions options;
    parseCodecOptions(args, options);
    if (auto t = args.value("--threads"))
        options.threads = int(parseInteger("--threads", *t, 0, kMaxThreads));
    if (auto s = args.value("--seed"))
        options.seed = parseUnsigned("--seed", *s);
    options.output = args.value("--output").value_or(kDefaultOutput);
    if (auto c = args.value("--calibration")) {
        options.calibration = *c;
        requireExisting(options.calibration);
    }
    options.attachTokenizer = args.has("--with-tokenizer");
    if (auto n = args.value("--calibration-tokens")) {
        if (options.calibration.empty())
            throw usageError("--calibration-tokens needs --calibration FILE");
        options.calibrationTokens = parseInteger("--calibration-tokens", *n, 16, int64_t(1) << 32);
    }
    return options;
}

void requireOutputFolderOf(const CompressOptions& options)
{
    if (cluster().rank() == 0) // only rank 0 writes
        requireOutputFolder(options.output, "--output");
}

void shareSourceFromRankZero(CompressOptions& options, const CancelToken* cancel)
{
    Cluster& ranks = cluster();
    if (ranks.single())
        return;
    std::string input = options.input.string();
    ranks.broadcastString(input, 0, cancel);
    options.input = input;
    ranks.broadcastString(options.sourceLabel, 0, cancel);
}

namespace {

MemoryTarget memoryTargetOf(const ParsedArgs& args, const fs::path& model, int subspaces)
{
    const std::string size = *args.value("--fit-memory");
    const int64_t tokens =
        args.value("--context") ? parseInteger("--context", *args.value("--context"), 1, int64_t(1) << 24) : 0;
    const fs::path calibration = args.value("--calibration") ? fs::path(*args.value("--calibration")) : fs::path();
    return fitToMemory(model, parseSize("--fit-memory", size), tokens, subspaces, "--fit-memory " + size, 0,
                       calibration);
}

void applyFitMemory(const ParsedArgs& args, CompressOptions& options)
{
    if (!args.has("--fit-memory"))
        return;
    const MemoryTarget target = memoryTargetOf(args, options.input, options.codec.subspaces());
    options.targetBytes = target.fit.targetBytes;
    options.targetText = target.memory.text;
    if (cluster().rank() == 0)
        std::fputs(fitMemoryNote(target, shown).c_str(), stderr);
}

} // namespace

int compressAndReport(const Context& context, const ParsedArgs& args, const CompressOptions& given)
{
    CompressOptions options = given;
    if (cluster().rank() == 0)
        requireExisting(options.input);
    applyFitMemory(args, options);
    // A cluster run (`mpirun -n N novaq local`): every rank compresses a share, rank 0 alone
    // shows progress and the report; each rank checks that it sees the model (compress.cpp).
    const bool rankZero = cluster().rank() == 0;
    if (rankZero)
        requireExisting(options.input);
    requireOutputFolderOf(options);
    // Said before any work, not refused: the file is still a good .novaq (kept tensors stay
    // exact), a script may want it anyway, and Ctrl+C stops the run with nothing left behind.
    if (rankZero && options.targetBytes == 0 && options.targetBits == 0) {
        std::string warning;
        try {
            warning = notSmallerWarning(inspectModel(options.input, options.codec));
        } catch (const Error&) {
            // compressModel below says what is wrong with the input, as it always has
        }
        if (!warning.empty())
            std::fprintf(stderr, "novaq: warning: %s\n", printable(warning).c_str());
    }
    ModelReport report;
    std::vector<RankShare> shares;
    CompressOptions run = options;
    run.shares = &shares;
    {
        std::optional<ProgressPrinter> progress;
        if (rankZero)
            progress.emplace(stderr, "compressed", ProgressPrinter::PlainLines::PerTensor, context.cancel);
        if (rankZero && !cluster().single())
            std::fprintf(stderr, "Compressing on %d ranks; rank 0 writes %s\n", cluster().size(),
                         printable(options.output.string()).c_str());
        report = compressModel(run, progress ? &*progress : nullptr, context.cancel);
    }
    if (!rankZero)
        return kExitSuccess;
    if (args.has("--json")) {
        std::cout << compressReportJson(report, shares).dump(2) << '\n';
    } else {
        if (const std::string warning = calibrationWarning(report); !warning.empty())
            std::fprintf(stderr, "novaq: warning: %s\n", warning.c_str());
        std::cout << formatCompressReport(printableReport(report), shares, shown);
    }
    std::cout.flush();
    return kExitSuccess;
}

const std::vector<Command>& commandTable()
{
    static const std::vector<Command> kCommands = [] {
        const OptionSpec& help = kHelpOption;
        const OptionSpec& json = kJsonOption;
        std::vector<Command> commands;

        commands.push_back(Command{
            .name = "local",
            .arguments = "[PATH]",
            .summary = "Compress a local model (the embedded demo model when PATH is omitted)",
            .details = "PATH is a model file or a folder holding one: safetensors, GGUF, PyTorch (.bin/.pt/.pth),\n"
                       "ONNX or llama2.c, sharded checkpoints by their index files, recognized by content;\n"
                       "config.json is read when present. The result is a .novaq\n"
                       "file; a cancelled or failed run leaves no file behind. The same input, settings and\n"
                       "seed give a byte-identical file at any thread count.",
            .options =
                [&] {
                    std::vector<OptionSpec> options = compressOptionSpecs();
                    options.push_back(help);
                    return options;
                }(),
            .examples =
                {
                    "novaq local",
                    "novaq local ./my-model --bits 2 --output my-model.novaq",
                    "novaq local model.safetensors --threads 2 --json > report.json",
                    "novaq local ./kjv-llama-7m --bits 2 --calibration kjv_calibration.txt",
                    "novaq local ./my-model --target-size 4GB",
                    "novaq local ./my-model --fit-memory 8GB --context 4096",
                },
            .showsBitsTable = true,
            .run = runLocal,
        });
        commands.push_back(Command{
            .name = "inspect",
            .arguments = "PATH",
            .summary = "List what a model holds and what `novaq local` would do with each tensor",
            .details = "Format, architecture, every tensor (name, shape, type, bytes), totals, and for the\n"
                       "chosen settings which tensors would be quantized or kept and the estimated output size.\n"
                       "Nothing is decoded or written.",
            .options =
                {
                    compressOptionSpec("--bits"),
                    compressOptionSpec("--subspaces"),
                    {"--target-size", "SIZE",
                     "show the per-tensor plan that fits the file just under SIZE (bytes, or 2.2MB, 4GB, 2MiB, 4GiB)",
                     ""},
                    {"--target-bits", "B", "the same for effective bits per weight, everything counted (e.g. 2.3)", ""},
                    {"--fit-memory", "SIZE",
                     "show the plan of the best file that runs in SIZE of memory, and what it holds (weights, KV "
                     "cache, "
                     "buffers)",
                     ""},
                    compressOptionSpec("--context"),
                    {"--calibration", "FILE",
                     "also estimate the time and peak memory of `novaq local --calibration FILE` on this computer (a "
                     "short measured probe); with a target, plan it by measured sensitivity as `local` does",
                     ""},
                    {"--calibration-tokens", "N", "the estimate for N calibration tokens",
                     "4x the widest layer input, 32768-65536"},
                    json,
                    compressOptionSpec("--d"),
                    compressOptionSpec("--b1"),
                    compressOptionSpec("--b2"),
                    help,
                },
            .examples = {"novaq inspect ./my-model", "novaq inspect model.gguf --bits 2 --json",
                         "novaq inspect ./my-model --target-size 2.5MB",
                         "novaq inspect ./my-model --fit-memory 8GB --context 4096",
                         "novaq inspect ./my-model --bits 2 --calibration kjv_calibration.txt"},
            .showsBitsTable = true,
            .run = runInspect,
        });
        commands.push_back(Command{
            .name = "validate",
            .arguments = "FILE",
            .summary = "Check a .novaq file: structure, checksums, and a decode of every tensor",
            .details = "With --against SOURCE (the model that was compressed), each tensor's relative error\n"
                       "is recomputed from the source and compared with the one recorded in the file.",
            .options =
                {
                    {"--against", "SOURCE", "the source model, to recompute every tensor's error", ""},
                    json,
                    help,
                },
            .examples = {"novaq validate model.novaq", "novaq validate model.novaq --against ./my-model"},
            .run = runValidate,
        });
        commands.push_back(Command{
            .name = "stats",
            .arguments = "FILE",
            .summary = "Show the per-tensor table and totals of a .novaq file",
            .details = "Totals: parameters, source and output size, ratio against the source and against\n"
                       "16-bit, effective bits per weight (everything in the file counted), mean and worst\n"
                       "relative error, and the settings used.",
            .options = {json, help},
            .examples = {"novaq stats model.novaq", "novaq stats model.novaq --json"},
            .run = runStats,
        });
        commands.push_back(Command{
            .name = "export",
            .arguments = "FILE",
            .summary = "Write the decoded model as safetensors, tensors under their original names",
            .details = "FILE is a .novaq file or any model NOVAQ reads (GGUF, PyTorch, ONNX, ...): the way to\n"
                       "convert it for other tools (PyTorch, transformers, llama.cpp's converters) and to see\n"
                       "exactly what our decoding or dequantization produced.",
            .options =
                {
                    {"--output", "FILE", "the safetensors file to write (required)", ""},
                    {"--dtype", "TYPE", "element type of the output: f16 or f32", "f16"},
                    help,
                },
            .examples = {"novaq export model.novaq --output model.safetensors",
                         "novaq export model.novaq --output model-f32.safetensors --dtype f32"},
            .run = runExport,
        });
        addSourceCommands(commands);
        addRuntimeCommands(commands);
        addTextCommands(commands);
        addChatCommands(commands);
        addChatReplCommand(commands);
        addServeCommands(commands);
        return commands;
    }();
    return kCommands;
}

const Command* findCommand(std::string_view name)
{
    for (const Command& c : commandTable())
        if (c.name == name)
            return &c;
    return nullptr;
}

int runLocal(const Context& context, const ParsedArgs& args)
{
    expectPositionals(args, 1, "one model PATH", true);
    CompressOptions options = compressOptionsFrom(args);
    if (args.positionals.empty()) {
        options.input = demoModelPath(context.executable);
        options.sourceLabel = "kjv-llama-7m (embedded demo model)";
        std::fprintf(stderr, "No model given: compressing the embedded demo model kjv-llama-7m (%s)\n",
                     printable(options.input.string()).c_str());
    } else {
        options.input = args.positionals.front();
        options.sourceLabel = args.positionals.front();
    }
    return compressAndReport(context, args, options);
}

int runInspect(const Context&, const ParsedArgs& args)
{
    expectPositionals(args, 1, "the model PATH to inspect");
    CompressOptions options;
    parseCodecOptions(args, options);
    const fs::path path = args.positionals.front();
    requireExisting(path);
    if (auto text = args.value("--calibration"))
        requireExisting(*text); // before a fit measures sensitivity on it
    const int subspaces = options.codec.subspaces();
    const ModelInspection inspection =
        args.has("--fit-memory") ? memoryTargetOf(args, path, subspaces).fit.inspection
        : options.targetBytes > 0 || options.targetBits > 0
            ? fitToTarget(path, options.targetBytes, options.targetBits, subspaces, options.targetText,
                          args.value("--calibration") ? fs::path(*args.value("--calibration")) : fs::path())
                  .inspection
            : inspectModel(path, options.codec);
    std::optional<CalibrationEstimate> calibrated;
    if (auto text = args.value("--calibration")) {
        requireExisting(*text);
        int64_t tokens = 0;
        if (auto n = args.value("--calibration-tokens"))
            tokens = parseInteger("--calibration-tokens", *n, 16, int64_t(1) << 32);
        calibrated = estimateCalibratedRun(*openModel(path), path, inspection, *text, tokens, 0);
    } else if (args.has("--calibration-tokens")) {
        throw usageError("--calibration-tokens needs --calibration FILE");
    }
    if (args.has("--json")) {
        nlohmann::json j = inspection.toJson();
        if (calibrated)
            j["calibration_estimate"] = calibrated->toJson();
        std::cout << j.dump(2) << '\n';
    } else {
        std::cout << formatInspection(printableInspection(inspection));
        if (calibrated)
            std::cout << calibrated->text();
    }
    std::cout.flush();
    return kExitSuccess;
}

int runValidate(const Context& context, const ParsedArgs& args)
{
    expectPositionals(args, 1, "the .novaq FILE to check");
    const fs::path file = args.positionals.front();
    requireExisting(file);
    std::optional<fs::path> against;
    if (auto a = args.value("--against")) {
        against = fs::path(*a);
        requireExisting(*against);
    }

    ValidateReport report;
    {
        ProgressPrinter progress(stderr, "checked", ProgressPrinter::PlainLines::None, context.cancel);
        report = validateNovaq(file, against, &progress, context.cancel);
    }

    if (args.has("--json"))
        std::cout << validateReportJson(file, report).dump(2) << '\n';
    else
        std::cout << formatValidateReport(file, report, against.has_value(), shown);
    std::cout.flush();
    if (report.ok)
        return kExitSuccess;
    std::cerr << "novaq validate: " << printable(file.string()) << " failed validation ("
              << validateProblemsText(report) << "); recompress the model or restore the file from a copy\n";
    return exitCodeFor(ErrorKind::Corrupt);
}

int runStats(const Context&, const ParsedArgs& args)
{
    expectPositionals(args, 1, "the .novaq FILE to describe");
    const fs::path file = args.positionals.front();
    requireExisting(file);
    const NovaqFile novaq(file);
    const ModelReport report = reportFromManifest(novaq.manifest(), file, novaq.fileSize());
    if (args.has("--json")) {
        std::cout << report.toJson().dump(2) << '\n';
    } else {
        std::cout << formatStats(file, novaq.major(), novaq.minor(), printableReport(report), shown);
    }
    std::cout.flush();
    return kExitSuccess;
}

int runExport(const Context& context, const ParsedArgs& args)
{
    expectPositionals(args, 1, "the model FILE to export");
    const fs::path model = args.positionals.front();
    const auto output = args.value("--output");
    if (!output)
        throw usageError("--output FILE is required: where to write the safetensors file");
    const std::string dtypeName = args.value("--dtype").value_or("f16");
    DType dtype = DType::F16;
    if (dtypeName == "f16" || dtypeName == "F16")
        dtype = DType::F16;
    else if (dtypeName == "f32" || dtypeName == "F32")
        dtype = DType::F32;
    else
        throw usageError("--dtype must be f16 or f32, got '" + dtypeName + "'");
    requireExisting(model);
    requireOutputFolder(*output, "--output");
    {
        ProgressPrinter progress(stderr, "exported", ProgressPrinter::PlainLines::None, context.cancel);
        exportSafetensors(model, *output, dtype, &progress, context.cancel);
    }
    std::error_code ec;
    const uintmax_t size = fs::file_size(*output, ec);
    std::cout << "Wrote " << printable(*output) << " (" << (ec ? std::string("size unknown") : humanBytes(size)) << ", "
              << dtypeInfo(dtype).name << ")\n";
    return kExitSuccess;
}

} // namespace novaq::cli
