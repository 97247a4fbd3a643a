// Chat templates (see chat_template.h). First cut: the interface; rendering follows.

#include "novaq/text/chat_template.h"

#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"

namespace novaq {

struct ChatTemplate::Impl {
    std::string name;
    std::string source;
    std::string bos;
    std::string eos;
    bool builtin = false;
};

ChatTemplate ChatTemplate::fromJinja(std::string source, std::string bosToken, std::string eosToken, std::string label)
{
    auto impl = std::make_shared<Impl>();
    impl->name = std::move(label);
    impl->source = std::move(source);
    impl->bos = std::move(bosToken);
    impl->eos = std::move(eosToken);
    return ChatTemplate(impl);
}

std::vector<std::string> ChatTemplate::builtinNames()
{
    return {"llama2", "llama3", "chatml", "gemma", "phi3", "mistral", "plain"};
}

ChatTemplate ChatTemplate::builtin(std::string_view name)
{
    for (const std::string& n : builtinNames())
        if (n == name) {
            auto impl = std::make_shared<Impl>();
            impl->name = n;
            impl->builtin = true;
            return ChatTemplate(impl);
        }
    std::string names;
    for (const std::string& n : builtinNames())
        names += (names.empty() ? "" : ", ") + n;
    throw Error(ErrorKind::InvalidArgument,
                "--chat-template: unknown template '" + std::string(name) + "'; the built-in ones are " + names);
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool addGenerationPrompt) const
{
    return render(messages, addGenerationPrompt, {});
}

std::string ChatTemplate::render(std::span<const ChatMessage>, bool, const ChatTemplateVariables&) const
{
    throw Error(ErrorKind::Unsupported, m_impl->name + ": chat template rendering is not implemented yet");
}

std::vector<std::string> ChatTemplate::stopStrings() const { return {}; }
const std::string& ChatTemplate::name() const { return m_impl->name; }
const std::string& ChatTemplate::bosToken() const { return m_impl->bos; }
bool ChatTemplate::isBuiltin() const { return m_impl->builtin; }

std::optional<ChatTemplate> findChatTemplate(const ModelReader&, const std::filesystem::path&) { return std::nullopt; }

ChatTemplate chooseChatTemplate(const ModelReader& reader, const std::filesystem::path& modelPath,
                                const std::optional<std::string>& name, std::string* note)
{
    if (name) {
        ChatTemplate t = ChatTemplate::builtin(*name);
        if (note)
            *note = "chat template: " + *name + " (chosen with --chat-template)";
        return t;
    }
    if (auto own = findChatTemplate(reader, modelPath)) {
        if (note)
            *note = "chat template: the model's own (" + own->name() + ")";
        return *own;
    }
    if (note)
        *note = "chat template: plain (the model ships no chat template)";
    return ChatTemplate::builtin("plain");
}

} // namespace novaq
