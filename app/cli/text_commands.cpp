// `novaq tokenize`: the ids and pieces a model's tokenizer makes of a text, for when numbers
// disagree with another tool and the first question is whether the tokens do.

#include "cli_help.h"
#include "commands.h"
#include "terminal.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/io/text_file.h"
#include "novaq/text/token_report.h"
#include "novaq/text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <iostream>

namespace novaq::cli {

namespace fs = std::filesystem;

namespace {

// MODEL's own tokenizer (GGUF metadata, the files beside it, a .novaq file's copy), or MODEL
// itself when it is a tokenizer file (tokenizer.json, tokenizer.model) or a folder of them;
// --tokenizer wins.
std::unique_ptr<Tokenizer> tokenizerFor(const ParsedArgs& args)
{
    if (auto t = args.value("--tokenizer")) {
        if (args.positionals.size() > 1)
            throw Error(ErrorKind::InvalidArgument,
                        "too many arguments: expected at most one MODEL, also got '" + args.positionals[1] + "'");
        requireExisting(*t);
        return openTokenizerFile(*t);
    }
    const fs::path model = oneModelArgument(args, "the MODEL whose tokenizer to use (or --tokenizer FILE)");
    const std::string ext = model.extension().string();
    if (fs::is_regular_file(model) && (ext == ".json" || ext == ".model"))
        return openTokenizerFile(model);
    if (fs::is_directory(model)) {
        // A folder of tokenizer files alone (no weights) is enough to tokenize with.
        std::unique_ptr<ModelReader> reader;
        try {
            reader = openModel(model);
        } catch (const Error&) {
            const std::vector<fs::path> files = tokenizerFilesBeside(model);
            if (files.empty())
                throw;
            return openTokenizerFile(files.front());
        }
        return findTokenizer(*reader, model);
    }
    const auto reader = openModel(model);
    return findTokenizer(*reader, model);
}

int runTokenize(const Context&, const ParsedArgs& args)
{
    const auto textPath = args.value("--text");
    if (!textPath)
        throw Error(ErrorKind::InvalidArgument, "missing --text FILE: the text to tokenize");
    requireExisting(*textPath);
    const std::unique_ptr<Tokenizer> tokenizer = tokenizerFor(args);
    const std::string text = readBoundedText(*textPath);
    const std::vector<int32_t> ids = tokenizer->encode(text, args.has("--bos"));

    if (args.has("--json")) {
        // A piece that is not valid UTF-8 (a vocabulary is data from a file) is shown with U+FFFD.
        std::cout << tokensJson(*tokenizer, ids).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        return kExitSuccess;
    }
    std::cout << formatTokens(*tokenizer, ids, shown);
    return kExitSuccess;
}

} // namespace

void addTextCommands(std::vector<Command>& commands)
{
    commands.push_back(Command{
        .name = "tokenize",
        .arguments = "MODEL",
        .summary = "Show the token ids and pieces a model's tokenizer makes of a text",
        .details = "MODEL is any model NOVAQ reads (GGUF, a Hugging Face folder, .novaq, ...) or a tokenizer\n"
                   "file (tokenizer.json, tokenizer.model); its tokenizer is found as `eval` finds it.\n"
                   "Encoded as the reference implementations do without special tokens (HF tokenizers'\n"
                   "add_special_tokens=False, llama.cpp's llama_tokenize without parse_special), so the ids\n"
                   "can be compared with theirs. Prints one line per token, the id and the text the token\n"
                   "stands for (control characters and bytes of a split UTF-8 character escaped: \\n, \\xe4),\n"
                   "then the count; --json gives the ids and the vocabulary pieces as they are.",
        .options =
            {
                {"--text", "FILE", "the text to tokenize (required)", ""},
                {"--tokenizer", "FILE",
                 "tokenizer to use instead of MODEL's (tokenizer.json, tokenizer.model, a GGUF file, a llama2.c "
                 "tok*.bin)",
                 ""},
                {"--bos", "", "put the tokenizer's BOS first", ""},
                kJsonOption,
                kHelpOption,
            },
        .examples = {"novaq tokenize ./Qwen3-0.6B --text prompt.txt",
                     "novaq tokenize model.gguf --text prompt.txt --json"},
        .run = runTokenize,
    });
}

} // namespace novaq::cli
