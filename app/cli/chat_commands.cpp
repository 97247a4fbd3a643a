// `novaq prompt`: the text a chat model sees for a conversation, rendered with the model's own
// chat template (or a built-in one), printed exactly.

#include "cli_help.h"
#include "commands.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/text/chat_template.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace novaq::cli {

namespace fs = std::filesystem;

namespace {

constexpr std::streamsize kMaxMessagesBytes = std::streamsize(64) << 20;

std::string readMessagesText(const std::string& file)
{
    std::string text;
    if (file == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
        requireExisting(file);
        std::error_code ec;
        if (fs::is_directory(file, ec))
            throw Error(ErrorKind::InvalidArgument, "--messages: '" + file + "' is a folder; give a JSON file");
        std::ifstream in(file, std::ios::binary);
        if (!in)
            throw Error(ErrorKind::Io, "cannot read '" + file + "' (--messages): check its permissions");
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (std::streamsize(text.size()) > kMaxMessagesBytes)
        throw Error(ErrorKind::InvalidInput, (file == "-" ? std::string("standard input") : file) +
                                                 ": larger than 64 MiB; that is not a conversation");
    return text;
}

// The messages of an OpenAI-style array (or a chat-completions body with "messages"): each
// {"role", "content"}; content a string, null, or a list of {"type": "text", "text"} parts.
std::vector<ChatMessage> parseMessages(const std::string& file, const std::string& text)
{
    const std::string label = file == "-" ? std::string("standard input (--messages -)") : file;
    nlohmann::json root;
    try {
        root = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(ErrorKind::InvalidInput, label + ": not valid JSON (byte " + std::to_string(e.byte) +
                                                 "); expected an array of {\"role\", \"content\"} messages");
    }
    const nlohmann::json* list = &root;
    std::string where = "";
    if (root.is_object() && root.contains("messages")) {
        list = &root["messages"];
        where = "messages";
    }
    if (!list->is_array())
        throw Error(ErrorKind::InvalidInput, label + ": expected an array of {\"role\", \"content\"} messages, found " +
                                                 (where.empty() ? "" : where + " = ") + "a " + list->type_name());
    if (list->empty())
        throw Error(ErrorKind::InvalidInput, label + ": the conversation has no messages");
    std::vector<ChatMessage> messages;
    for (size_t k = 0; k < list->size(); ++k) {
        const nlohmann::json& m = (*list)[k];
        const std::string at = label + ": message " + std::to_string(k);
        if (!m.is_object())
            throw Error(ErrorKind::InvalidInput,
                        at + ": expected an object {\"role\", \"content\"}, found a " + std::string(m.type_name()));
        const auto role = m.find("role");
        if (role == m.end())
            throw Error(ErrorKind::InvalidInput, at + ": missing field \"role\" (system, user or assistant)");
        if (!role->is_string() || role->get<std::string>().empty())
            throw Error(ErrorKind::InvalidInput,
                        at + ", field \"role\": expected a non-empty string (system, user or assistant)");
        const auto content = m.find("content");
        if (content == m.end())
            throw Error(ErrorKind::InvalidInput, at + ": missing field \"content\"");
        ChatMessage message{role->get<std::string>(), {}};
        if (content->is_string()) {
            message.content = content->get<std::string>();
        } else if (content->is_array()) {
            for (size_t p = 0; p < content->size(); ++p) {
                const nlohmann::json& part = (*content)[p];
                const std::string partAt = at + ", content part " + std::to_string(p);
                if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
                    !part["text"].is_string())
                    throw Error(ErrorKind::InvalidInput,
                                partAt + ": only text parts {\"type\": \"text\", \"text\": \"...\"} are supported");
                message.content += part["text"].get<std::string>();
            }
        } else if (!content->is_null()) {
            throw Error(ErrorKind::InvalidInput,
                        at + ", field \"content\": expected a string, found a " + std::string(content->type_name()));
        }
        messages.push_back(std::move(message));
    }
    return messages;
}

int runPrompt(const Context&, const ParsedArgs& args)
{
    const fs::path modelPath = oneModelArgument(args, "the MODEL whose chat template to use");
    const auto file = args.value("--messages");
    if (!file || file->empty())
        throw Error(ErrorKind::InvalidArgument,
                    "missing --messages FILE.json: the conversation, a JSON array of {\"role\", \"content\"}");
    std::optional<std::string> name = args.value("--chat-template");
    if (name) {
        const auto names = ChatTemplate::builtinNames();
        if (std::find(names.begin(), names.end(), *name) == names.end())
            throw Error(ErrorKind::InvalidArgument, "--chat-template: unknown template '" + *name +
                                                        "'; the built-in ones are " + builtinTemplateNames());
    }
    ChatTemplateVariables variables;
    if (auto vars = args.value("--template-vars")) {
        const nlohmann::json object = nlohmann::json::parse(*vars, nullptr, false);
        if (object.is_discarded() || !object.is_object())
            throw Error(ErrorKind::InvalidArgument, "--template-vars: expected a JSON object such as "
                                                    "'{\"enable_thinking\": false}', got '" +
                                                        *vars + "'");
        for (auto it = object.begin(); it != object.end(); ++it)
            variables[it.key()] = it.value().dump();
    }
    const std::vector<ChatMessage> messages = parseMessages(*file, readMessagesText(*file));
    const auto reader = openModel(modelPath);
    std::string note;
    const ChatTemplate chat = chooseChatTemplate(*reader, modelPath, name, &note);
    const std::string text = chat.render(messages, !args.has("--no-generation-prompt"), variables);
    std::cerr << note << '\n';
    std::cout << text << std::flush;
    if (!std::cout)
        throw Error(ErrorKind::Io, "cannot write the prompt to standard output");
    return kExitSuccess;
}

} // namespace

void addChatCommands(std::vector<Command>& commands)
{
    commands.push_back(Command{
        .name = "prompt",
        .arguments = "MODEL",
        .summary = "Show the exact text a chat model sees for a conversation",
        .details = "Renders the conversation in --messages with the model's chat template: its own\n"
                   "(tokenizer_config.json or chat_template.jinja beside it, GGUF tokenizer.chat_template, or\n"
                   "the tokenizer_config.json a .novaq file carries), else the plain transcript a base model\n"
                   "can continue (\"User: ...\" / \"Assistant:\"). Prints exactly that text on stdout (no\n"
                   "newline added) and which template was used on stderr.",
        .options =
            {
                {"--messages", "FILE",
                 "the conversation: a JSON array of {\"role\", \"content\"} (OpenAI style); - reads stdin (required)",
                 ""},
                chatTemplateOption(),
                {"--no-generation-prompt", "", "do not open the assistant's turn at the end", ""},
                {"--template-vars", "JSON",
                 "extra template variables as a JSON object, e.g. '{\"enable_thinking\": false}' for Qwen3", ""},
                kHelpOption,
            },
        .examples = {"novaq prompt Qwen3-0.6B --messages chat.json",
                     "novaq prompt model.novaq --messages chat.json --chat-template chatml"},
        .run = runPrompt,
    });
}

} // namespace novaq::cli
