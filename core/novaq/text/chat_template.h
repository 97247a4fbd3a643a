#pragma once
// Chat templates: a conversation rendered into the text a chat model was trained on.
//
// The template comes from the model itself (tokenizer_config.json's "chat_template" or
// chat_template.jinja beside it, GGUF metadata tokenizer.chat_template, or the files a .novaq
// file carries), rendered by our Jinja subset (jinja.h), or from a small built-in list of the
// common families (llama2, llama3, chatml, gemma, phi3, mistral, plain) chosen by name.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace novaq {

class ModelReader;

struct ChatMessage {
    std::string role; // "system", "user", "assistant" (templates may accept others)
    std::string content;
};

// Extra template variables besides messages/add_generation_prompt/bos_token/eos_token,
// e.g. {"enable_thinking", "false"} for Qwen3; values are JSON text (true, false, 3, "x").
// Variables not given stay undefined, as in the reference renderer.
using ChatTemplateVariables = std::map<std::string, std::string>;

// Immutable once made: copies share the parsed template, and render() may run on many
// threads at once (each call has its own evaluation state).
class ChatTemplate {
public:
    // Parses Jinja source; throws Error(InvalidInput) naming `label` and the line on a syntax
    // error. `bosToken`/`eosToken` are the strings the template sees as bos_token/eos_token.
    static ChatTemplate fromJinja(std::string source, std::string bosToken, std::string eosToken, std::string label);

    // A built-in family by name; throws Error(InvalidArgument) listing the names.
    static ChatTemplate builtin(std::string_view name);
    static std::vector<std::string> builtinNames();

    // The prompt text for `messages` (with the assistant's turn opened when
    // addGenerationPrompt). Throws Error(InvalidInput) when the template raises
    // (raise_exception) or the messages are unusable, naming the template.
    std::string render(std::span<const ChatMessage> messages, bool addGenerationPrompt) const;
    std::string render(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                       const ChatTemplateVariables& variables) const;
    // `now` (seconds since the epoch, rendered in UTC) fixes strftime_now() for reproducible
    // output; the local clock when nullopt.
    std::string render(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                       const ChatTemplateVariables& variables, std::optional<int64_t> now) const;

    // End-of-turn markers to stop generation on (e.g. "<|eot_id|>", "<|im_end|>").
    std::vector<std::string> stopStrings() const;

    // "llama3", "chatml", ... for built-ins; for a model's own, where it came from (the label:
    // "/m/tokenizer_config.json chat_template", "m.gguf: GGUF tokenizer.chat_template", ...).
    const std::string& name() const;

    // The BOS string the template was given (empty when none). When a rendered prompt
    // starts with it, the caller must not add another BOS token when tokenizing.
    const std::string& bosToken() const;

    // True for a built-in, false for the model's own template.
    bool isBuiltin() const;

    struct Impl;

private:
    explicit ChatTemplate(std::shared_ptr<const Impl> impl) : m_impl(std::move(impl)) {}
    std::shared_ptr<const Impl> m_impl;
};

// The model's own template (tokenizer_config.json beside it, GGUF tokenizer.chat_template,
// a .novaq attachment), or nullopt when it ships none. Throws Error(InvalidInput) when the
// template it ships does not parse.
std::optional<ChatTemplate> findChatTemplate(const ModelReader& reader, const std::filesystem::path& modelPath);

// What `novaq chat/serve/prompt` use: the built-in `name` when given, else the model's own
// (or, when it uses Jinja we cannot run, the built-in family recognized in its text, as
// llama.cpp does), else the "plain" transcript (a base model has no chat format to follow).
// `note`, when not null, receives one sentence saying which template was chosen and why.
ChatTemplate chooseChatTemplate(const ModelReader& reader, const std::filesystem::path& modelPath,
                                const std::optional<std::string>& name, std::string* note);

} // namespace novaq
