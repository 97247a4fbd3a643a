#include "novaq/text/token_report.h"

namespace novaq {

nlohmann::json tokensJson(const Tokenizer& tokenizer, const std::vector<int32_t>& ids)
{
    nlohmann::json pieces = nlohmann::json::array();
    for (const int32_t id : ids)
        pieces.push_back(tokenizer.piece(id));
    return {{"tokenizer", std::string(tokenizer.kind())}, {"count", ids.size()}, {"ids", ids}, {"pieces", pieces}};
}

std::string formatTokens(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, const ShownText& shown)
{
    std::string lines;
    for (const int32_t id : ids) {
        lines += std::to_string(id);
        lines += '\t';
        lines += shown(tokenizer.pieceBytes(id));
        lines += '\n';
    }
    return lines + std::to_string(ids.size()) + " tokens (" + shown(tokenizer.kind()) + ")\n";
}

} // namespace novaq
