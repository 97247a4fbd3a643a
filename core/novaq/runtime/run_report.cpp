#include "novaq/runtime/run_report.h"

#include "novaq/io/units.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace novaq {

namespace {

std::string thousandsOf(int64_t value) { return withThousands(static_cast<uint64_t>(std::max<int64_t>(value, 0))); }

std::string fixed(double value, int digits)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, value);
    return buf;
}

bool llamaCppProtocol(const EvalRequest& request) { return request.options.protocol == EvalProtocol::LlamaCpp; }

} // namespace

nlohmann::json evalReportJson(const EvalRequest& request, const EvalReport& report)
{
    const EvalResult& r = report.result;
    nlohmann::json j = {{"model", request.model.string()},
                        {"text", request.text.string()},
                        {"tokenizer", report.tokenizerKind},
                        {"protocol", llamaCppProtocol(request) ? "llama.cpp" : "novaq"},
                        {"ctx", request.options.ctx},
                        {"tokens", report.tokens},
                        {"windows", r.windows},
                        {"scored", r.scored},
                        {"perplexity", r.perplexity},
                        {"mean_nll", r.meanNll},
                        {"seconds", r.seconds},
                        {"weights_in_memory_bytes", report.modelMemoryBytes}};
    if (r.compared) {
        j["against"] = request.against ? request.against->string() : std::string();
        j["against_perplexity"] = r.refPerplexity;
        j["kl"] = r.meanKl;
        j["top1"] = r.top1;
    }
    return j;
}

std::string formatEvalReport(const EvalRequest& request, const EvalReport& report, const ShownText& shown)
{
    const EvalResult& r = report.result;
    const bool llamaCpp = llamaCppProtocol(request);
    std::ostringstream out;
    out << "text       " << shown(request.text.string()) << ": " << thousandsOf(report.tokens) << " tokens ("
        << shown(report.tokenizerKind) << "), " << r.windows << (llamaCpp ? " chunks of " : " windows of ")
        << request.options.ctx << (llamaCpp ? " (llama.cpp protocol)" : "") << ", " << thousandsOf(r.scored)
        << " scored\n";
    out << "model      " << shown(request.model.string()) << "  perplexity " << fixed(r.perplexity, 3) << '\n';
    if (r.compared) {
        out << "original   " << shown(request.against ? request.against->string() : std::string()) << "  perplexity "
            << fixed(r.refPerplexity, 3) << '\n';
        out << "KL divergence of the model from the original: " << fixed(r.meanKl, 5) << " nats/token; top-1 agreement "
            << fixed(100.0 * r.top1, 2) << "%\n";
    }
    out << "time " << fixed(r.seconds, 1) << " s (" << thousandsOf(static_cast<int64_t>(r.scored / r.seconds))
        << " tokens/s" << (r.compared ? " through both models" : "") << ")\n";
    return out.str();
}

nlohmann::json generationsJson(const std::string& prompt, const std::vector<Generation>& generations)
{
    nlohmann::json results = nlohmann::json::array();
    for (const Generation& g : generations)
        results.push_back(
            {{"model", g.model.string()}, {"text", g.text}, {"ids", g.ids}, {"tokens_per_second", g.tokensPerSecond}});
    return {{"prompt", prompt}, {"results", results}};
}

std::string generationSummary(size_t tokens, double tokensPerSecond)
{
    return "[" + std::to_string(tokens) + " tokens, " + fixed(tokensPerSecond, 1) + " tokens/s]";
}

} // namespace novaq
