// Chat templates (see chat_template.h): the model's own Jinja template rendered by jinja.h,
// or one of the built-in families, written here as Jinja too so both paths share one
// renderer. The built-ins produce the published prompt formats of each family.

#include "novaq/text/chat_template.h"

#include "novaq/container/novaq_model_reader.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/text/jinja.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace novaq {

namespace fs = std::filesystem;

struct ChatTemplate::Impl {
    std::string name;
    jinja::Template program;
    std::string bos;
    std::string eos;
    bool builtin = false;
    std::vector<std::string> stops;
};

namespace {

struct Builtin {
    const char* name;
    const char* bos;
    const char* eos;
    std::vector<std::string> stops;
    const char* source;
};

// The families of llama.cpp's built-in list that the models we run use, in our own Jinja.
// shape: long on purpose (a table: one row per built-in chat template)
const std::vector<Builtin>& builtins()
{
    static const std::vector<Builtin> table = {
        {"llama2",
         "<s>",
         "</s>",
         {"</s>"},
         R"({%- if messages and messages[0].role == 'system' -%}
    {%- set system = messages[0].content | trim -%}
    {%- set turns = messages[1:] -%}
{%- else -%}
    {%- set system = '' -%}
    {%- set turns = messages -%}
{%- endif -%}
{%- for message in turns -%}
    {%- if (message.role == 'user') != (loop.index0 % 2 == 0) -%}
        {{- raise_exception('the llama2 template needs user and assistant turns taking turns, user first (after an optional system message)') -}}
    {%- endif -%}
    {%- if message.role == 'user' -%}
        {%- if loop.first and system -%}
            {{- bos_token + '[INST] <<SYS>>\n' + system + '\n<</SYS>>\n\n' + message.content | trim + ' [/INST]' -}}
        {%- else -%}
            {{- bos_token + '[INST] ' + message.content | trim + ' [/INST]' -}}
        {%- endif -%}
    {%- else -%}
        {{- ' ' + message.content | trim + ' ' + eos_token -}}
    {%- endif -%}
{%- endfor -%})"},
        {"llama3",
         "<|begin_of_text|>",
         "<|eot_id|>",
         {"<|eot_id|>", "<|end_of_text|>"},
         R"({{- bos_token -}}
{%- for message in messages -%}
    {{- '<|start_header_id|>' + message.role + '<|end_header_id|>\n\n' + message.content | trim + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
{%- endif -%})"},
        {"chatml",
         "",
         "<|im_end|>",
         {"<|im_end|>", "<|endoftext|>"},
         R"({%- for message in messages -%}
    {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%})"},
        {"gemma",
         "<bos>",
         "<end_of_turn>",
         {"<end_of_turn>", "<eos>"},
         R"({{- bos_token -}}
{%- if messages and messages[0].role == 'system' -%}
    {%- set prefix = messages[0].content | trim + '\n\n' -%}
    {%- set turns = messages[1:] -%}
{%- else -%}
    {%- set prefix = '' -%}
    {%- set turns = messages -%}
{%- endif -%}
{%- for message in turns -%}
    {%- if (message.role == 'user') != (loop.index0 % 2 == 0) -%}
        {{- raise_exception('the gemma template needs user and assistant turns taking turns, user first (after an optional system message)') -}}
    {%- endif -%}
    {{- '<start_of_turn>' + ('model' if message.role == 'assistant' else message.role) + '\n' + (prefix if loop.first else '') + message.content | trim + '<end_of_turn>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<start_of_turn>model\n' -}}
{%- endif -%})"},
        {"phi3",
         "",
         "<|end|>",
         {"<|end|>", "<|endoftext|>"},
         R"({%- for message in messages -%}
    {{- '<|' + message.role + '|>\n' + message.content + '<|end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|assistant|>\n' -}}
{%- endif -%})"},
        {"mistral",
         "<s>",
         "</s>",
         {"</s>"},
         R"({{- bos_token -}}
{%- if messages and messages[0].role == 'system' -%}
    {%- set prefix = messages[0].content + '\n\n' -%}
    {%- set turns = messages[1:] -%}
{%- else -%}
    {%- set prefix = '' -%}
    {%- set turns = messages -%}
{%- endif -%}
{%- for message in turns -%}
    {%- if (message.role == 'user') != (loop.index0 % 2 == 0) -%}
        {{- raise_exception('the mistral template needs user and assistant turns taking turns, user first (after an optional system message)') -}}
    {%- endif -%}
    {%- if message.role == 'user' -%}
        {{- '[INST] ' + (prefix if loop.first else '') + message.content + ' [/INST]' -}}
    {%- else -%}
        {{- message.content + eos_token -}}
    {%- endif -%}
{%- endfor -%})"},
        // A base model has no chat format: a transcript it can continue.
        {"plain",
         "",
         "",
         {"\nUser:", "\nSystem:"},
         R"({%- for message in messages -%}
    {{- message.role | capitalize + ': ' + message.content | trim + '\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- 'Assistant:' -}}
{%- endif -%})"},
    };
    return table;
}

std::string builtinList()
{
    std::string names;
    for (const Builtin& b : builtins())
        names += (names.empty() ? "" : ", ") + std::string(b.name);
    return names;
}

// End-of-turn markers of the common families, found in a model's own template.
std::vector<std::string> stopsFor(const std::string& source, const std::string& eos)
{
    static const char* const markers[] = {"<|eot_id|>", "<|eom_id|>",    "<|im_end|>",           "<end_of_turn>",
                                          "<|end|>",    "<|endoftext|>", "<|END_OF_TURN_TOKEN|>"};
    std::vector<std::string> stops;
    for (const char* m : markers)
        if (source.find(m) != std::string::npos)
            stops.emplace_back(m);
    if (!eos.empty() && std::find(stops.begin(), stops.end(), eos) == stops.end())
        stops.push_back(eos);
    return stops;
}

// bos_token/eos_token of tokenizer_config.json: a string, {"content": ...} or null.
std::string configToken(const nlohmann::json& config, const char* key)
{
    const auto it = config.find(key);
    if (it == config.end())
        return {};
    if (it->is_string())
        return it->get<std::string>();
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
        return (*it)["content"].get<std::string>();
    return {};
}

std::string readText(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    if (!in && !in.eof())
        throw Error(ErrorKind::Io, "cannot read " + path.string());
    return s.str();
}

// The family a template's text shows, as llama.cpp recognizes its built-ins; empty when none.
std::string recognizeFamily(const std::string& source)
{
    auto has = [&](const char* s) { return source.find(s) != std::string::npos; };
    if (has("<|start_header_id|>"))
        return "llama3";
    if (has("<|im_start|>"))
        return "chatml";
    if (has("<start_of_turn>"))
        return "gemma";
    if (has("<|assistant|>") && has("<|end|>"))
        return "phi3";
    if (has("[INST]"))
        return has("<<SYS>>") ? "llama2" : "mistral";
    return {};
}

// The model's template; when it does not parse and `fallback` is given, the built-in family
// recognized in its text, with *fallback saying so.
ChatTemplate parseOwn(const std::string& source, const std::string& bos, const std::string& eos,
                      const std::string& label, std::string* fallback)
{
    try {
        return ChatTemplate::fromJinja(source, bos, eos, label);
    } catch (const Error& e) {
        if (const std::string family = recognizeFamily(source); fallback && !family.empty()) {
            *fallback = "chat template: the built-in " + family + ", recognized in the model's own template, which " +
                        "this program cannot run (" + e.what() + ")";
            return ChatTemplate::builtin(family);
        }
        throw Error(e.kind(), std::string(e.what()) +
                                  ". The model's chat template uses Jinja this program does not support; choose a "
                                  "built-in one with --chat-template NAME (" +
                                  builtinList() + ")");
    }
}

// The template in a tokenizer_config.json's text; `templateFile` (chat_template.jinja) wins.
std::optional<ChatTemplate> fromTokenizerConfig(std::string_view text, const std::string& label,
                                                const std::optional<std::string>& templateFile,
                                                const std::string& templateLabel, std::string* fallback)
{
    nlohmann::json config;
    if (!text.empty()) {
        config = nlohmann::json::parse(text, nullptr, false);
        if (config.is_discarded() || !config.is_object())
            throw Error(ErrorKind::InvalidInput, label + ": not a JSON object; cannot read its chat_template");
    }
    const std::string bos = configToken(config, "bos_token"), eos = configToken(config, "eos_token");
    if (templateFile)
        return parseOwn(*templateFile, bos, eos, templateLabel, fallback);
    const auto it = config.find("chat_template");
    if (it == config.end() || it->is_null())
        return std::nullopt;
    if (it->is_string())
        return parseOwn(it->get<std::string>(), bos, eos, label + " chat_template", fallback);
    if (it->is_array()) {
        // [{"name": ..., "template": ...}]: the "default" one, as transformers takes it.
        for (size_t k = 0; k < it->size(); ++k) {
            const nlohmann::json& entry = (*it)[k];
            if (entry.is_object() && entry.value("name", nlohmann::json()) == "default" && entry.contains("template") &&
                entry["template"].is_string())
                return parseOwn(entry["template"].get<std::string>(), bos, eos,
                                label + " chat_template[" + std::to_string(k) + "] (default)", fallback);
        }
        throw Error(ErrorKind::InvalidInput,
                    label +
                        ": chat_template lists named templates but none is named \"default\"; choose a built-in "
                        "one with --chat-template NAME (" +
                        builtinList() + ")");
    }
    throw Error(ErrorKind::InvalidInput,
                label + ": chat_template must be a string or a list of {name, template}, found " + it->type_name());
}

std::optional<ChatTemplate> fromFolder(const fs::path& dir, std::string* fallback)
{
    std::error_code ec;
    const fs::path config = dir / "tokenizer_config.json";
    const fs::path jinjaFile = dir / "chat_template.jinja";
    const bool hasConfig = fs::is_regular_file(config, ec);
    const bool hasJinja = fs::is_regular_file(jinjaFile, ec);
    if (!hasConfig && !hasJinja)
        return std::nullopt;
    return fromTokenizerConfig(hasConfig ? readText(config) : std::string(), config.string(),
                               hasJinja ? std::optional<std::string>(readText(jinjaFile)) : std::nullopt,
                               jinjaFile.string(), fallback);
}

} // namespace

ChatTemplate ChatTemplate::fromJinja(std::string source, std::string bosToken, std::string eosToken, std::string label)
{
    auto impl = std::make_shared<Impl>(
        Impl{label, jinja::Template::parse(source, label), std::move(bosToken), std::move(eosToken), false, {}});
    impl->stops = stopsFor(source, impl->eos);
    return ChatTemplate(std::move(impl));
}

std::vector<std::string> ChatTemplate::builtinNames()
{
    std::vector<std::string> names;
    for (const Builtin& b : builtins())
        names.emplace_back(b.name);
    return names;
}

ChatTemplate ChatTemplate::builtin(std::string_view name)
{
    for (const Builtin& b : builtins())
        if (b.name == name) {
            auto impl = std::make_shared<Impl>(
                Impl{b.name, jinja::Template::parse(b.source, "built-in chat template " + std::string(b.name)), b.bos,
                     b.eos, true, b.stops});
            return ChatTemplate(std::move(impl));
        }
    throw Error(ErrorKind::InvalidArgument, "--chat-template: unknown template '" + std::string(name) +
                                                "'; the built-in ones are " + builtinList());
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool addGenerationPrompt) const
{
    return render(messages, addGenerationPrompt, {});
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                                 const ChatTemplateVariables& variables) const
{
    return render(messages, addGenerationPrompt, variables, std::nullopt);
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                                 const ChatTemplateVariables& variables, std::optional<int64_t> now) const
{
    nlohmann::ordered_json vars = nlohmann::ordered_json::object();
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const ChatMessage& m : messages)
        list.push_back({{"role", m.role}, {"content", m.content}});
    vars["messages"] = std::move(list);
    vars["tools"] = nullptr; // as transformers passes them when there are none
    vars["add_generation_prompt"] = addGenerationPrompt;
    vars["bos_token"] = m_impl->bos;
    vars["eos_token"] = m_impl->eos;
    for (const auto& [name, json] : variables) {
        auto value = nlohmann::ordered_json::parse(json, nullptr, false);
        if (value.is_discarded())
            throw Error(ErrorKind::InvalidArgument,
                        "chat template variable " + name + ": '" + json + "' is not a JSON value (true, 3, \"text\")");
        vars[name] = std::move(value);
    }
    jinja::RenderOptions options;
    options.now = now;
    return m_impl->program.render(vars, options);
}

std::vector<std::string> ChatTemplate::stopStrings() const { return m_impl->stops; }
const std::string& ChatTemplate::name() const { return m_impl->name; }
const std::string& ChatTemplate::bosToken() const { return m_impl->bos; }
bool ChatTemplate::isBuiltin() const { return m_impl->builtin; }

namespace {

std::optional<ChatTemplate> findOwn(const ModelReader& reader, const fs::path& modelPath, std::string* fallback)
{
    const nlohmann::json& meta = reader.metadata();
    const std::string file = (reader.files().empty() ? modelPath : reader.files().front()).string();

    // GGUF: tokenizer.chat_template, bos/eos as the vocabulary spells them.
    if (meta.is_object()) {
        const auto fm = meta.find("format_metadata");
        if (fm != meta.end() && fm->is_object()) {
            const auto t = fm->find("tokenizer.chat_template");
            if (t != fm->end() && t->is_string()) {
                auto token = [&](const char* key) -> std::string {
                    const auto id = fm->find(key);
                    const auto tokens = fm->find("tokenizer.ggml.tokens");
                    if (id == fm->end() || !id->is_number_integer() || tokens == fm->end() || !tokens->is_array())
                        return {};
                    const int64_t i = id->get<int64_t>();
                    if (i < 0 || size_t(i) >= tokens->size() || !(*tokens)[size_t(i)].is_string())
                        return {};
                    return (*tokens)[size_t(i)].get<std::string>();
                };
                return parseOwn(t->get<std::string>(), token("tokenizer.ggml.bos_token_id"),
                                token("tokenizer.ggml.eos_token_id"), file + ": GGUF tokenizer.chat_template",
                                fallback);
            }
        }
    }

    // A .novaq file carries its source's tokenizer_config.json (and chat_template.jinja).
    std::optional<std::string> attachedConfig, attachedTemplate;
    for (const auto& [name, bytes] : novaqAttachments(reader)) {
        const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        if (name == "tokenizer_config.json")
            attachedConfig = text;
        else if (name == "chat_template.jinja")
            attachedTemplate = text;
    }
    if (attachedConfig || attachedTemplate)
        return fromTokenizerConfig(attachedConfig.value_or(std::string()),
                                   modelPath.string() + ": attached tokenizer_config.json", attachedTemplate,
                                   modelPath.string() + ": attached chat_template.jinja", fallback);

    std::error_code ec;
    const fs::path dir = fs::is_directory(modelPath, ec) ? modelPath : modelPath.parent_path();
    if (auto own = fromFolder(dir.empty() ? fs::path(".") : dir, fallback))
        return own;

    // A .novaq file without attachments: its source model's folder, when it is still there.
    if (meta.is_object() && meta.contains("novaq") && meta["novaq"].is_object()) {
        const nlohmann::json source = meta["novaq"].value("source", nlohmann::json::object());
        if (source.is_object() && source.contains("path") && source["path"].is_string()) {
            const fs::path origin = source["path"].get<std::string>();
            if (fs::exists(origin, ec))
                return fromFolder(fs::is_directory(origin, ec) ? origin : origin.parent_path(), fallback);
        }
    }
    return std::nullopt;
}

} // namespace

std::optional<ChatTemplate> findChatTemplate(const ModelReader& reader, const fs::path& modelPath)
{
    return findOwn(reader, modelPath, nullptr);
}

ChatTemplate chooseChatTemplate(const ModelReader& reader, const fs::path& modelPath,
                                const std::optional<std::string>& name, std::string* note)
{
    if (name) {
        ChatTemplate t = ChatTemplate::builtin(*name);
        if (note)
            *note = "chat template: the built-in " + *name + " (chosen with --chat-template)";
        return t;
    }
    std::string fallback;
    if (auto own = findOwn(reader, modelPath, &fallback)) {
        if (note)
            *note = fallback.empty() ? "chat template: the model's own (" + own->name() + ")" : fallback;
        return *own;
    }
    if (note)
        *note = "chat template: plain transcript (\"User: ...\" / \"Assistant:\"), because the model ships no chat "
                "template (a base model); choose another with --chat-template NAME (" +
                builtinList() + ")";
    return ChatTemplate::builtin("plain");
}

} // namespace novaq
