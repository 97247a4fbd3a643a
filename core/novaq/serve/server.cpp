#include "novaq/serve/server.h"

#include "novaq/io/error.h"
#include "novaq/runtime/generator.h"
#include "novaq/text/chat_template.h"
#include "novaq/text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <httplib.h>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace novaq::serve {

namespace {

using json = nlohmann::json;

// ---- errors in OpenAI's shape ----

struct ApiError : std::runtime_error {
    int status;
    std::string type, param, code;
    ApiError(int status_, const std::string& message, std::string param_ = {}, std::string code_ = {},
             std::string type_ = "invalid_request_error")
        : std::runtime_error(message), status(status_), type(std::move(type_)), param(std::move(param_)),
          code(std::move(code_))
    {}
};

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json errorJson(const std::string& message, const std::string& type, const std::string& param, const std::string& code)
{
    return {{"error",
             {{"message", message},
              {"type", type},
              {"param", param.empty() ? json(nullptr) : json(param)},
              {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

void sendError(httplib::Response& res, const ApiError& e)
{
    res.status = e.status;
    res.set_content(dump(errorJson(e.what(), e.type, e.param, e.code)), "application/json");
}

// ---- request fields ----

const json* field(const json& body, const char* name)
{
    const auto it = body.find(name);
    return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::string plainNumber(double x)
{
    std::ostringstream out;
    out << x; // 0, 2, 0.5
    return out.str();
}

double numberField(const json& body, const char* name, double def, double lo, double hi)
{
    const json* v = field(body, name);
    if (!v)
        return def;
    if (!v->is_number())
        throw ApiError(400, std::string("'") + name + "' must be a number", name, "invalid_type");
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi))
        throw ApiError(400,
                       std::string("'") + name + "' must be between " + plainNumber(lo) + " and " + plainNumber(hi) +
                           ", got " + v->dump(),
                       name, "invalid_value");
    return x;
}

int64_t integerField(const json& body, const char* name, int64_t def, int64_t lo, int64_t hi)
{
    const json* v = field(body, name);
    if (!v)
        return def;
    if (!v->is_number_integer())
        throw ApiError(400, std::string("'") + name + "' must be an integer", name, "invalid_type");
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
        throw ApiError(400, std::string("'") + name + "' must be at most " + std::to_string(hi) + ", got " + v->dump(),
                       name, "invalid_value");
    const int64_t x = v->get<int64_t>();
    if (x < lo || x > hi)
        throw ApiError(400,
                       std::string("'") + name + "' must be between " + std::to_string(lo) + " and " +
                           std::to_string(hi) + ", got " + v->dump(),
                       name, "invalid_value");
    return x;
}

bool boolField(const json& body, const char* name, bool def)
{
    const json* v = field(body, name);
    if (!v)
        return def;
    if (!v->is_boolean())
        throw ApiError(400, std::string("'") + name + "' must be true or false", name, "invalid_type");
    return v->get<bool>();
}

std::vector<std::string> stopField(const json& body)
{
    const json* v = field(body, "stop");
    if (!v)
        return {};
    std::vector<std::string> stops;
    if (v->is_string()) {
        stops.push_back(v->get<std::string>());
    } else if (v->is_array()) {
        if (v->size() > 16)
            throw ApiError(400, "'stop' has " + std::to_string(v->size()) + " strings; give at most 16", "stop",
                           "invalid_value");
        for (const json& s : *v) {
            if (!s.is_string())
                throw ApiError(400, "'stop' must be a string or an array of strings", "stop", "invalid_type");
            stops.push_back(s.get<std::string>());
        }
    } else {
        throw ApiError(400, "'stop' must be a string or an array of strings", "stop", "invalid_type");
    }
    for (const std::string& s : stops)
        if (s.empty())
            throw ApiError(400, "'stop' strings must not be empty", "stop", "invalid_value");
    return stops;
}

std::string contentOf(const json& message, size_t index)
{
    const std::string where = "messages[" + std::to_string(index) + "].content";
    const auto it = message.find("content");
    if (it == message.end() || it->is_null())
        return {};
    if (it->is_string())
        return it->get<std::string>();
    if (it->is_array()) { // content parts: only text ones
        std::string text;
        for (const json& part : *it) {
            if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
                !part["text"].is_string())
                throw ApiError(400,
                               where + ": only text content parts ({\"type\": \"text\", \"text\": ...}) are supported",
                               where, "invalid_value");
            text += part["text"].get<std::string>();
        }
        return text;
    }
    throw ApiError(400, where + " must be a string or an array of text parts", where, "invalid_type");
}

std::vector<ChatMessage> messagesField(const json& body)
{
    const json* v = field(body, "messages");
    if (!v)
        throw ApiError(400, "'messages' is required: an array of {\"role\", \"content\"} objects", "messages",
                       "missing_required_parameter");
    if (!v->is_array() || v->empty())
        throw ApiError(400, "'messages' must be a non-empty array of {\"role\", \"content\"} objects", "messages",
                       "invalid_value");
    std::vector<ChatMessage> messages;
    for (size_t i = 0; i < v->size(); ++i) {
        const json& m = (*v)[i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!m.is_object())
            throw ApiError(400, where + " must be an object with \"role\" and \"content\"", where, "invalid_type");
        const auto role = m.find("role");
        if (role == m.end() || !role->is_string() || role->get<std::string>().empty())
            throw ApiError(400, where + ".role must be a non-empty string (system, user, assistant)", where + ".role",
                           "invalid_value");
        messages.push_back({role->get<std::string>(), contentOf(m, i)});
    }
    return messages;
}

std::string hexId(const char* prefix)
{
    static std::atomic<uint64_t> counter{0};
    static const uint64_t salt = std::random_device{}();
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s%016llx%08llx", prefix, static_cast<unsigned long long>(salt),
                  static_cast<unsigned long long>(++counter));
    return buf;
}

bool sameKey(const std::string& a, const std::string& b)
{
    // Constant time in the key's bytes: a wrong key gives nothing away by its timing.
    unsigned diff = a.size() == b.size() ? 0u : 1u;
    for (size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    return diff == 0;
}

// ---- generation slots and the bounded queue ----

class SlotPool {
public:
    SlotPool(std::vector<std::unique_ptr<Generator>> generators, int queue)
        : m_all(std::move(generators)), m_limit(static_cast<int64_t>(m_all.size()) + queue)
    {
        for (auto& g : m_all)
            m_free.push_back(g.get());
    }
    bool admit()
    {
        std::lock_guard lock(m_mutex);
        if (m_stopping || m_active + m_waiting >= m_limit)
            return false;
        ++m_waiting;
        return true;
    }
    // Null when the server stops or keepWaiting() (asked about every 200 ms) says no.
    Generator* acquire(const std::function<bool()>& keepWaiting)
    {
        std::unique_lock lock(m_mutex);
        while (m_free.empty() && !m_stopping) {
            if (m_cv.wait_for(lock, std::chrono::milliseconds(200)) == std::cv_status::timeout && keepWaiting) {
                lock.unlock();
                const bool stay = keepWaiting();
                lock.lock();
                if (!stay)
                    break;
            }
        }
        --m_waiting;
        if (m_stopping || m_free.empty()) {
            m_cv.notify_all();
            return nullptr;
        }
        Generator* g = m_free.back(); // the last one used: its cache most likely holds a shared prefix
        m_free.pop_back();
        ++m_active;
        return g;
    }
    void leave()
    {
        std::lock_guard lock(m_mutex);
        --m_waiting;
        m_cv.notify_all();
    }
    void release(Generator* g)
    {
        std::lock_guard lock(m_mutex);
        m_free.push_back(g);
        --m_active;
        m_cv.notify_one();
    }
    void stop()
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
        m_cv.notify_all();
    }
    std::pair<int64_t, int64_t> counts() const
    {
        std::lock_guard lock(m_mutex);
        return {m_active, m_waiting};
    }
    int64_t slots() const noexcept { return static_cast<int64_t>(m_all.size()); }

private:
    std::vector<std::unique_ptr<Generator>> m_all;
    std::vector<Generator*> m_free;
    const int64_t m_limit;
    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    int64_t m_active = 0, m_waiting = 0;
    bool m_stopping = false;
};

// A request's place: in the queue after admit(), then holding a slot; given back when it ends.
class Ticket {
public:
    explicit Ticket(SlotPool& pool) : m_pool(pool) {}
    ~Ticket() { release(); }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    Generator* acquire(const std::function<bool()>& keepWaiting)
    {
        m_waiting = false;
        m_generator = m_pool.acquire(keepWaiting);
        return m_generator;
    }
    void release()
    {
        if (m_generator)
            m_pool.release(std::exchange(m_generator, nullptr));
        else if (std::exchange(m_waiting, false))
            m_pool.leave();
    }

private:
    SlotPool& m_pool;
    Generator* m_generator = nullptr;
    bool m_waiting = true;
};

struct Job {
    bool chat = true;
    bool stream = false;
    bool includeUsage = false;
    std::vector<int32_t> prompt;
    GenerationParams params;
    std::string id;
    int64_t created = 0;
};

} // namespace

struct Server::Impl {
    const LlamaModel& model;
    const Tokenizer& tokenizer;
    ChatTemplate chatTemplate;
    ServerOptions options;
    int64_t context = 0;
    PromptEncoder encoder;
    std::vector<std::string> chatStops;
    std::vector<int32_t> chatStopTokens, textStopTokens;
    std::unique_ptr<SlotPool> pool;
    httplib::Server http;
    CancelToken stopping;
    int64_t started = std::time(nullptr);
    std::atomic<int64_t> completed{0}, disconnected{0}, rejected{0}, generated{0};

    Impl(const LlamaModel& m, const Tokenizer& t, const ChatTemplate& c, ServerOptions o)
        : model(m), tokenizer(t), chatTemplate(c), options(std::move(o)), encoder(m, t)
    {
        if (options.parallel < 1 || options.parallel > 256)
            throw Error(ErrorKind::InvalidArgument,
                        "--parallel must be between 1 and 256, got " + std::to_string(options.parallel));
        if (options.queue < 0 || options.queue > 256)
            throw Error(ErrorKind::InvalidArgument,
                        "--queue must be between 0 and 256, got " + std::to_string(options.queue));
        if (options.port < 0 || options.port > 65535)
            throw Error(ErrorKind::InvalidArgument,
                        "--port must be between 0 and 65535, got " + std::to_string(options.port));
        context =
            std::min<int64_t>(model.config.maxSeq, options.contextTokens > 0 ? options.contextTokens : kDefaultContext);
        chatStops = chatTemplate.stopStrings();
        chatStopTokens = encoder.stopTokens(chatStops);
        textStopTokens = encoder.stopTokens({});
        std::vector<std::unique_ptr<Generator>> generators;
        for (int i = 0; i < options.parallel; ++i)
            generators.push_back(std::make_unique<Generator>(model, tokenizer, context));
        pool = std::make_unique<SlotPool>(std::move(generators), options.queue);
        routes();
    }

    json modelJson() const
    {
        return {{"id", options.modelId}, {"object", "model"}, {"created", started}, {"owned_by", "novaq"}};
    }

    void checkModel(const json& body) const
    {
        const json* named = field(body, "model");
        if (!named)
            return; // OpenAI requires it; a server of one model can do without
        if (!named->is_string())
            throw ApiError(400, "'model' must be a string", "model", "invalid_type");
        if (named->get<std::string>() != options.modelId)
            throw ApiError(404,
                           "The model '" + named->get<std::string>() + "' does not exist; this server serves '" +
                               options.modelId + "' (GET /v1/models)",
                           "model", "model_not_found");
    }

    Job parseJob(const std::string& text, bool chat) const
    {
        json body;
        try {
            body = json::parse(text);
        } catch (const json::exception& e) {
            throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
        }
        if (!body.is_object())
            throw ApiError(400, "the request body must be a JSON object");
        checkModel(body);
        Job job;
        job.chat = chat;
        job.created = std::time(nullptr);
        job.id = hexId(chat ? "chatcmpl-" : "cmpl-");
        job.stream = boolField(body, "stream", false);
        if (const json* so = field(body, "stream_options")) {
            if (!so->is_object())
                throw ApiError(400, "'stream_options' must be an object", "stream_options", "invalid_type");
            job.includeUsage = boolField(*so, "include_usage", false);
        }
        if (integerField(body, "n", 1, 1, 1) != 1)
            throw ApiError(400, "'n' must be 1", "n", "invalid_value");
        if (const json* lp = field(body, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
            throw ApiError(400, "'logprobs' is not supported", "logprobs", "unsupported_parameter");
        if (boolField(body, "echo", false))
            throw ApiError(400, "'echo' is not supported", "echo", "unsupported_parameter");

        readSampling(body, chat, job);
        const bool ignoreEos = boolField(body, "ignore_eos", false); // llama.cpp's extension
        job.params.stop = stopField(body);

        const char* promptField = chat ? "messages" : "prompt";
        if (chat) {
            job.prompt = chatPrompt(body);
            job.params.stop.insert(job.params.stop.end(), chatStops.begin(), chatStops.end());
            if (!ignoreEos)
                job.params.stopTokens = chatStopTokens;
        } else {
            job.prompt = textPrompt(body);
            if (!ignoreEos)
                job.params.stopTokens = textStopTokens;
        }
        if (job.prompt.empty())
            throw ApiError(400, std::string("the ") + promptField + " give no tokens", promptField, "invalid_value");
        if (static_cast<int64_t>(job.prompt.size()) >= context)
            throw ApiError(400,
                           "This model's maximum context length is " + std::to_string(context) + " tokens; the " +
                               promptField + " have " + std::to_string(job.prompt.size()) +
                               " tokens, which leaves no room for a reply",
                           promptField, "context_length_exceeded");
        return job;
    }

    // The sampling parameters, the seed (random when not given) and the token limit.
    void readSampling(const json& body, bool chat, Job& job) const
    {
        SamplingParams& s = job.params.sampling;
        s.temperature = static_cast<float>(numberField(body, "temperature", 1.0, 0.0, 2.0));
        s.topP = static_cast<float>(numberField(body, "top_p", 1.0, 0.0, 1.0));
        if (s.topP <= 0)
            throw ApiError(400, "'top_p' must be greater than 0", "top_p", "invalid_value");
        s.topK = static_cast<int>(integerField(body, "top_k", 0, 0, 1 << 30));
        if (const json* seed = field(body, "seed")) {
            if (!seed->is_number_integer())
                throw ApiError(400, "'seed' must be an integer", "seed", "invalid_type");
            s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : static_cast<uint64_t>(seed->get<int64_t>());
        } else {
            s.seed = std::random_device{}() * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(job.created);
        }
        const int64_t maxLimit = int64_t(1) << 30;
        int64_t maxTokens = chat ? 0 : 16; // OpenAI's defaults: the rest of the context / 16
        if (chat && field(body, "max_completion_tokens"))
            maxTokens = integerField(body, "max_completion_tokens", 0, 1, maxLimit);
        maxTokens = integerField(body, "max_tokens", maxTokens, 1, maxLimit);
        job.params.maxTokens = maxTokens;
    }

    // The chat messages rendered with the model's template, as token ids.
    std::vector<int32_t> chatPrompt(const json& body) const
    {
        const std::vector<ChatMessage> messages = messagesField(body);
        std::string rendered;
        try {
            rendered = chatTemplate.render(messages, true);
        } catch (const Error& e) {
            throw ApiError(400, std::string("the chat template could not render the messages: ") + e.what(), "messages",
                           "invalid_value");
        }
        return encoder.encodeChat(rendered, chatTemplate);
    }

    // The completion prompt: a string, one string in an array, or token ids.
    std::vector<int32_t> textPrompt(const json& body) const
    {
        std::vector<int32_t> prompt;
        const json* p = field(body, "prompt");
        if (!p)
            throw ApiError(400, "'prompt' is required: the text to continue", "prompt", "missing_required_parameter");
        if (p->is_array() && p->size() == 1 && (*p)[0].is_string())
            p = &(*p)[0];
        if (p->is_string()) {
            prompt = encoder.encodeText(p->get<std::string>());
        } else if (p->is_array() && !p->empty() &&
                   std::all_of(p->begin(), p->end(), [](const json& x) { return x.is_number_integer(); })) {
            for (const json& x : *p) {
                const int64_t id = x.get<int64_t>();
                if (id < 0 || id >= model.config.vocab)
                    throw ApiError(400,
                                   "'prompt' token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                       std::to_string(model.config.vocab - 1) + ")",
                                   "prompt", "invalid_value");
                prompt.push_back(static_cast<int32_t>(id));
            }
        } else {
            throw ApiError(400, "'prompt' must be a string (or one string or token ids in an array)", "prompt",
                           "invalid_type");
        }
        return prompt;
    }

    json usageJson(const GenerationResult& r) const
    {
        return {{"prompt_tokens", r.promptTokens},
                {"completion_tokens", r.completionTokens},
                {"total_tokens", r.promptTokens + r.completionTokens}};
    }

    json chunkJson(const Job& job, const std::string& text, const char* finish, bool first) const
    {
        json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish ? json(finish) : json(nullptr)}};
        if (job.chat) {
            json delta = json::object();
            if (first)
                delta["role"] = "assistant";
            if (!finish)
                delta["content"] = text;
            choice["delta"] = delta;
        } else {
            choice["text"] = text;
        }
        return {{"id", job.id},
                {"object", job.chat ? "chat.completion.chunk" : "text_completion"},
                {"created", job.created},
                {"model", options.modelId},
                {"choices", json::array({choice})}};
    }

    json completionJson(const Job& job, const GenerationResult& r) const
    {
        json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finishReasonName(r.finish)}};
        if (job.chat)
            choice["message"] = {{"role", "assistant"}, {"content", r.text}};
        else
            choice["text"] = r.text;
        return {{"id", job.id},
                {"object", job.chat ? "chat.completion" : "text_completion"},
                {"created", job.created},
                {"model", options.modelId},
                {"choices", json::array({choice})},
                {"usage", usageJson(r)}};
    }

    TokenObserver observer() const
    {
        return [this](int32_t, int64_t produced) {
            if (options.onToken)
                options.onToken(produced);
        };
    }

    void count(const GenerationResult& r)
    {
        generated += r.completionTokens;
        (r.finish == FinishReason::Cancelled ? disconnected : completed) += 1;
    }

    void complete(const httplib::Request& req, httplib::Response& res, bool chat)
    {
        auto job = std::make_shared<Job>(parseJob(req.body, chat));
        if (!pool->admit()) {
            ++rejected;
            res.set_header("Retry-After", "1");
            throw ApiError(503,
                           "the server is busy: " + std::to_string(pool->slots()) + " generations run and " +
                               std::to_string(options.queue) + " requests wait; retry later",
                           "", "server_busy", "server_error");
        }
        auto ticket = std::make_shared<Ticket>(*pool);
        if (!job->stream) {
            completeNow(*job, *ticket, res);
            return;
        }
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
        res.set_chunked_content_provider("text/event-stream", [this, job, ticket](size_t, httplib::DataSink& sink) {
            return streamJob(*job, *ticket, sink);
        });
    }

    // A non-streamed completion: waits for a slot, generates, answers with the whole result.
    void completeNow(const Job& job, Ticket& ticket, httplib::Response& res)
    {
        Generator* g = ticket.acquire([this] { return !stopping.cancelled(); });
        if (!g)
            throw ApiError(503, "the server is shutting down", "", "shutting_down", "server_error");
        if (options.onSlotAcquired)
            options.onSlotAcquired();
        GenerationResult r;
        try {
            r = g->generate(job.prompt, job.params, {}, &stopping, observer());
        } catch (...) {
            ++disconnected; // cut short by an error: counted once all the same
            throw;
        }
        ticket.release();
        count(r);
        if (r.finish == FinishReason::Cancelled)
            throw ApiError(503, "the server is shutting down", "", "shutting_down", "server_error");
        res.set_content(dump(completionJson(job, r)), "application/json");
    }

    // A streamed completion (server-sent events), run by httplib's content provider: false
    // ends the stream early (client gone, shutdown, failure).
    bool streamJob(const Job& job, Ticket& ticket, httplib::DataSink& sink)
    {
        const auto send = [&sink](const std::string& event) { return sink.write(event.data(), event.size()); };
        const auto data = [&](const json& j) { return send("data: " + dump(j) + "\n\n"); };
        try {
            int waits = 0;
            // While queued, an SSE comment now and then finds out whether the client is still there.
            Generator* g = ticket.acquire(
                [&] { return !stopping.cancelled() && (++waits % 5 != 0 || send(": waiting for a free slot\n\n")); });
            if (!g) {
                if (stopping.cancelled())
                    data(errorJson("the server is shutting down", "server_error", "", "shutting_down"));
                else
                    ++disconnected; // the client left while it waited
                return false;
            }
            if (options.onSlotAcquired)
                options.onSlotAcquired();
            if (job.chat && !data(chunkJson(job, "", nullptr, true))) {
                ++disconnected;
                return false;
            }
            const GenerationResult r = g->generate(
                job.prompt, job.params,
                [&](std::string_view text) { return data(chunkJson(job, std::string(text), nullptr, false)); },
                &stopping, observer());
            ticket.release();
            count(r);
            if (r.finish == FinishReason::Cancelled)
                return false;
            if (!data(chunkJson(job, "", finishReasonName(r.finish), false)))
                return false;
            if (job.includeUsage) {
                json usage = chunkJson(job, "", nullptr, false);
                usage["choices"] = json::array();
                usage["usage"] = usageJson(r);
                if (!data(usage))
                    return false;
            }
            if (!send("data: [DONE]\n\n"))
                return false;
            sink.done();
            return true;
        } catch (const std::exception& e) {
            ++disconnected; // cut short by an error: counted once all the same
            data(errorJson(std::string("generation failed: ") + e.what(), "server_error", "", ""));
            return false;
        }
    }

    // ---- routes ----

    static const char* allowedMethod(const std::string& path)
    {
        if (path == "/health" || path == "/v1/models" || path.starts_with("/v1/models/"))
            return "GET";
        if (path == "/v1/chat/completions" || path == "/v1/completions")
            return "POST";
        return nullptr;
    }

    void guarded(const httplib::Request& req, httplib::Response& res, const std::function<void()>& fn)
    {
        try {
            fn();
        } catch (const ApiError& e) {
            sendError(res, e);
        } catch (const Error& e) {
            const bool user = e.kind() == ErrorKind::InvalidArgument || e.kind() == ErrorKind::InvalidInput;
            sendError(res,
                      ApiError(user ? 400 : 500, e.what(), "", "", user ? "invalid_request_error" : "server_error"));
        } catch (const std::exception& e) {
            sendError(res, ApiError(500, std::string("internal error: ") + e.what(), "", "", "server_error"));
        }
        (void)req;
    }

    // shape: long on purpose (the route table: one handler per endpoint, registered in one place)
    void routes()
    {
        // A generating or waiting request holds its connection's thread: room for all of them,
        // plus 8 for /health, /v1/models, errors and the 503s (a connection beyond the pool
        // would wait unanswered in httplib's own unbounded list instead of getting 503).
        http.new_task_queue = [n = static_cast<size_t>(options.parallel + options.queue + 8)] {
            return new httplib::ThreadPool(n);
        };
        http.set_payload_max_length(options.maxBodyBytes);
        // httplib's default options include SO_REUSEPORT, with which a second server binds the
        // same port and silently takes half the connections: SO_REUSEADDR alone (a restart need
        // not wait for TIME_WAIT), so a taken port is an error.
        http.set_socket_options([](socket_t sock) {
            const int yes = 1;
            ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        });
        http.set_tcp_nodelay(true); // each streamed token goes out at once
        http.set_keep_alive_timeout(3);
        http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
            if (options.apiKey.empty() || req.path == "/health")
                return httplib::Server::HandlerResponse::Unhandled;
            const std::string auth = req.get_header_value("Authorization");
            const std::string bearer = "Bearer ";
            if (auth.empty()) {
                res.set_header("WWW-Authenticate", "Bearer");
                sendError(res, ApiError(401,
                                        "You didn't provide an API key: send it in an Authorization header "
                                        "(Authorization: Bearer KEY)",
                                        "", "missing_api_key"));
                return httplib::Server::HandlerResponse::Handled;
            }
            if (!auth.starts_with(bearer) || !sameKey(auth.substr(bearer.size()), options.apiKey)) {
                res.set_header("WWW-Authenticate", "Bearer");
                sendError(res, ApiError(401, "Incorrect API key provided", "", "invalid_api_key"));
                return httplib::Server::HandlerResponse::Handled;
            }
            return httplib::Server::HandlerResponse::Unhandled;
        });
        http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
            const auto [active, waiting] = pool->counts();
            res.set_content(dump({{"status", "ok"},
                                  {"model", options.modelId},
                                  {"slots", pool->slots()},
                                  {"slots_processing", active},
                                  {"queued", waiting}}),
                            "application/json");
        });
        http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(dump({{"object", "list"}, {"data", json::array({modelJson()})}}), "application/json");
        });
        http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
            guarded(req, res, [&] {
                if (req.matches[1].str() != options.modelId)
                    throw ApiError(404, "The model '" + req.matches[1].str() + "' does not exist", "model",
                                   "model_not_found");
                res.set_content(dump(modelJson()), "application/json");
            });
        });
        http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
            guarded(req, res, [&] { complete(req, res, true); });
        });
        http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
            guarded(req, res, [&] { complete(req, res, false); });
        });
        http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                           httplib::Response& res) {
            if (!res.body.empty() || res.is_chunked_content_provider_)
                return httplib::Server::HandlerResponse::Unhandled; // our own error, already in shape
            const char* allowed = allowedMethod(req.path);
            // httplib answers 404 for a known path with another method (400 for a POST
            // without a body): 405 names the method to use.
            if ((res.status == 404 || res.status == 400) && allowed && req.method != allowed &&
                !(req.method == "HEAD" && std::string_view(allowed) == "GET")) {
                res.status = 405;
                res.set_header("Allow", allowed);
                sendError(res,
                          ApiError(405, "Method " + req.method + " is not allowed on " + req.path + "; use " + allowed,
                                   "", "method_not_allowed"));
            } else if (res.status == 404) {
                sendError(res,
                          ApiError(404,
                                   "Unknown request URL: " + req.method + " " + req.path + " (the API is under /v1)",
                                   "", "unknown_url"));
            } else if (res.status == 413) {
                sendError(res,
                          ApiError(413,
                                   "the request body is larger than " + std::to_string(options.maxBodyBytes) + " bytes",
                                   "", "request_too_large"));
            } else {
                sendError(res, ApiError(res.status,
                                        "the request could not be handled (HTTP " + std::to_string(res.status) + ")"));
            }
            return httplib::Server::HandlerResponse::Handled;
        }));
        http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown error";
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            sendError(res, ApiError(500, "internal error: " + what, "", "", "server_error"));
        });
        if (options.log)
            http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
                options.log(req.method + " " + req.path + " " + std::to_string(res.status));
            });
    }
};

Server::Server(const LlamaModel& model, const Tokenizer& tokenizer, const ChatTemplate& chatTemplate,
               ServerOptions options)
    : m_impl(std::make_unique<Impl>(model, tokenizer, chatTemplate, std::move(options)))
{}

Server::~Server() { stop(); }

int Server::bind()
{
    std::signal(SIGPIPE, SIG_IGN);
    const ServerOptions& o = m_impl->options;
    const std::string where = o.host + ":" + std::to_string(o.port);
    int port = o.port;
    if (o.port == 0) {
        port = m_impl->http.bind_to_any_port(o.host);
        if (port <= 0)
            throw Error(ErrorKind::Io, "cannot listen on " + o.host + " (any port): check --host");
    } else if (!m_impl->http.bind_to_port(o.host, o.port)) {
        throw Error(ErrorKind::Io, "cannot listen on " + where +
                                       ": the port is in use or the address is not this machine's; choose another "
                                       "--port or --host");
    }
    return port;
}

void Server::run() { m_impl->http.listen_after_bind(); }

void Server::stop()
{
    m_impl->stopping.cancel();
    m_impl->pool->stop();
    m_impl->http.stop();
}

ServerStats Server::stats() const
{
    ServerStats s;
    std::tie(s.active, s.queued) = m_impl->pool->counts();
    s.completed = m_impl->completed;
    s.disconnected = m_impl->disconnected;
    s.rejected = m_impl->rejected;
    s.generatedTokens = m_impl->generated;
    return s;
}

const ServerOptions& Server::options() const noexcept { return m_impl->options; }
int64_t Server::contextTokens() const noexcept { return m_impl->context; }

} // namespace novaq::serve
