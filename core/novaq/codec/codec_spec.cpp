#include "novaq/codec/codec_spec.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <vector>

namespace novaq {

namespace {

using nlohmann::json;

constexpr std::string_view kEncoding = "novaq"; // manifest.h: the tensor encoding this codec writes

// CodecSpec's default: the 1.5-bit preset, which in CodecConfig{}.subspaces subspaces is CodecConfig{}.
constexpr size_t kDefaultPreset = presetIndex(1.5);
static_assert(kDefaultPreset < kBitsPresets.size() &&
              kBitsPresets[kDefaultPreset].config(CodecConfig{}.subspaces) == CodecConfig{});

std::string numberText(double value)
{
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    return text;
}

// "--bits 1.7 is not a preset; choose one of 1, 1.5, ..." (`field` as the caller names it).
std::string notAPreset(std::string_view field, const std::string& value)
{
    return std::string(field) + " " + value + " is not a preset; choose one of " + presetListText();
}

size_t presetRowFor(double bits) noexcept
{
    for (size_t i = 0; i < kBitsPresets.size(); ++i)
        if (std::abs(kBitsPresets[i].bits - bits) < 1e-9) // as presetForBits
            return i;
    return kBitsPresets.size();
}

void check(const CodecConfig& config)
{
    if (const std::string problem = validateConfig(config); !problem.empty())
        throw Error(ErrorKind::InvalidArgument, problem);
}

std::string found(const json& value) { return ", found " + value.dump(-1, ' ', false, json::error_handler_t::replace); }

[[noreturn]] void fieldError(ErrorKind kind, const std::string& where, std::string_view key, const std::string& message)
{
    throw Error(kind, where + "." + std::string(key) + ": " + message);
}

int requireField(const json& object, const std::string& where, const CodecLimit& limit, ErrorKind kind)
{
    const auto it = object.find(std::string(limit.key));
    if (it == object.end())
        fieldError(kind, where, limit.key, "missing");
    const json& v = *it;
    // Integers only (2.5, "8" and true are not), inside the limits.
    std::optional<int64_t> x;
    if (v.is_number_unsigned()) {
        if (v.get<uint64_t>() <= static_cast<uint64_t>(limit.max))
            x = static_cast<int64_t>(v.get<uint64_t>());
    } else if (v.is_number_integer()) {
        x = v.get<int64_t>();
    }
    if (!x || *x < limit.min || *x > limit.max)
        fieldError(kind, where, limit.key, "expected an integer " + limit.rangeText() + found(v));
    return static_cast<int>(*x);
}

// One word of the string form: "d=8" gives "8" for key "d", else nullopt.
std::optional<std::string_view> valueOf(std::string_view word, std::string_view key)
{
    if (word.size() > key.size() && word.starts_with(key) && word[key.size()] == '=')
        return word.substr(key.size() + 1);
    return std::nullopt;
}

class StringParser {
public:
    explicit StringParser(std::string_view text) : m_text(text)
    {
        size_t at = 0;
        while (at < text.size()) {
            if (text[at] == ' ') {
                ++at;
                continue;
            }
            const size_t end = std::min(text.find(' ', at), text.size());
            m_words.push_back(text.substr(at, end - at));
            at = end;
        }
    }

    CodecSpec parse()
    {
        if (m_words.empty() || m_words.front() != kEncoding)
            fail(m_words.empty() ? std::string("it is empty")
                                 : "the encoding \"" + std::string(m_words.front()) +
                                       "\" is unknown; this build knows \"" + std::string(kEncoding) + "\"");
        size_t next = 1;
        if (next == m_words.size())
            fail("bits=B or d=D B1+B2 must follow \"" + std::string(kEncoding) + "\"");
        const std::string_view first = m_words[next++];
        const CodecLimits& l = kCodecLimits;
        int subspaces = CodecConfig{}.subspaces;
        const auto readSubspaces = [&] {
            if (next < m_words.size())
                if (const auto k = valueOf(m_words[next], "K")) {
                    subspaces = integer(*k, "K (subspaces)", l.subspaces);
                    ++next;
                }
            if (next < m_words.size())
                fail("unexpected \"" + std::string(m_words[next]) + "\" after the settings");
        };
        if (const auto bits = valueOf(first, "bits")) {
            double b = 0;
            const auto [end, ec] = std::from_chars(bits->data(), bits->data() + bits->size(), b);
            if (ec != std::errc() || end != bits->data() + bits->size() || !std::isfinite(b))
                fail("bits expects a number, one of " + presetListText() + ", got \"" + std::string(*bits) + "\"");
            if (presetRowFor(b) == kBitsPresets.size())
                fail(notAPreset("bits", std::string(*bits)));
            readSubspaces();
            return CodecSpec::preset(b, subspaces); // every field is checked above: it does not throw
        }
        const auto d = valueOf(first, "d");
        if (!d)
            fail("expected bits=B or d=D, got \"" + std::string(first) + "\"");
        CodecConfig config;
        config.d = integer(*d, l.d.what, l.d);
        if (next == m_words.size())
            fail("the stage bits B1+B2 must follow d=" + std::string(*d));
        const std::string_view stages = m_words[next++];
        const size_t plus = stages.find('+');
        if (plus == std::string_view::npos)
            fail("expected the stage bits as B1+B2 (e.g. 8+4, or 8+0 for one stage), got \"" + std::string(stages) +
                 "\"");
        config.b1 = integer(stages.substr(0, plus), l.b1.what, l.b1);
        config.b2 = integer(stages.substr(plus + 1), l.b2.what, l.b2);
        readSubspaces();
        config.subspaces = subspaces;
        return CodecSpec::expert(config); // every field is checked above: it does not throw
    }

private:
    [[noreturn]] void fail(const std::string& what) const
    {
        throw Error(ErrorKind::InvalidArgument, "codec \"" + std::string(m_text) + "\": " + what);
    }

    // A whole number inside `limit`, named `what` in the message.
    int integer(std::string_view word, std::string_view what, const CodecLimit& limit) const
    {
        int v = 0;
        const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
        if (word.empty() || ec != std::errc() || end != word.data() + word.size())
            fail(std::string(what) + " expects a whole number " + limit.rangeText() + ", got \"" + std::string(word) +
                 "\"");
        if (!limit.contains(v))
            fail(std::string(what) + " must be " + limit.rangeText() + " (got " + std::to_string(v) + ")");
        return v;
    }

    std::string_view m_text;
    std::vector<std::string_view> m_words;
};

} // namespace

CodecSpec::CodecSpec() noexcept : CodecSpec(kDefaultPreset, CodecConfig{}) {}

CodecSpec CodecSpec::preset(double bits, int subspaces)
{
    const size_t row = presetRowFor(bits);
    if (row == kBitsPresets.size())
        throw Error(ErrorKind::InvalidArgument, notAPreset("--bits", numberText(bits)));
    const CodecConfig config = kBitsPresets[row].config(subspaces);
    check(config);
    return CodecSpec(row, config);
}

CodecSpec CodecSpec::expert(const CodecConfig& config)
{
    check(config);
    return CodecSpec(kBitsPresets.size(), config);
}

CodecSpec CodecSpec::presetAtLength(const BitsPreset& preset, int vectorLength, int subspaces)
{
    if (vectorLength == 0)
        return CodecSpec::preset(preset.bits, subspaces);
    return expert({vectorLength, preset.b1, preset.b2, subspaces});
}

CodecSpec CodecSpec::parse(std::string_view text) { return StringParser(text).parse(); }

CodecSpec CodecSpec::fromJson(const json& j, const std::string& where, ErrorKind kind)
{
    if (!j.is_object())
        throw Error(kind, where + ": expected an object" + found(j));
    // Unknown keys are refused: ignored, they could be a variant's settings read as plain novaq.
    for (const auto& item : j.items())
        if (const std::string& key = item.key();
            key != "bits" && key != "d" && key != "b1" && key != "b2" && key != "subspaces")
            fieldError(
                kind, where, key,
                "unknown field; a codec is \"bits\" and \"subspaces\", or \"d\", \"b1\", \"b2\" and \"subspaces\"");
    const bool expertKeys = j.contains("d") || j.contains("b1") || j.contains("b2");
    if (!j.contains("bits") && !expertKeys)
        throw Error(kind, where + ": expected \"bits\" (a preset) or \"d\", \"b1\" and \"b2\" (expert settings)");
    if (j.contains("bits") && expertKeys)
        throw Error(kind, where + ": give either \"bits\" (a preset) or \"d\", \"b1\" and \"b2\", not both");
    if (expertKeys)
        return CodecSpec(kBitsPresets.size(), codecConfigFromJson(j, where, kind));
    const json& bits = j.at("bits");
    if (!bits.is_number())
        fieldError(kind, where, "bits", "expected a number, one of " + presetListText() + found(bits));
    const size_t row = presetRowFor(bits.get<double>());
    if (row == kBitsPresets.size())
        fieldError(kind, where, "bits",
                   numberText(bits.get<double>()) + " is not a preset; choose one of " + presetListText());
    const int subspaces = requireField(j, where, kCodecLimits.subspaces, kind);
    return CodecSpec(row, kBitsPresets[row].config(subspaces));
}

std::string CodecSpec::toString() const
{
    const std::string k = " K=" + std::to_string(m_config.subspaces);
    if (isPreset())
        return std::string(kEncoding) + " bits=" + numberText(bits()) + k;
    return label();
}

std::string CodecSpec::label() const { return codecLabel(m_config); }

json CodecSpec::toJson() const
{
    if (isPreset())
        return {{"bits", bits()}, {"subspaces", m_config.subspaces}};
    return codecConfigToJson(m_config);
}

std::string codecLabel(const CodecConfig& c)
{
    return std::string(kEncoding) + " d=" + std::to_string(c.d) + " " + std::to_string(c.b1) + "+" +
           std::to_string(c.b2) + " K=" + std::to_string(c.subspaces);
}

std::string presetListText()
{
    std::string list;
    for (const BitsPreset& p : kBitsPresets)
        list += (list.empty() ? "" : ", ") + numberText(p.bits);
    return list;
}

json codecConfigToJson(const CodecConfig& c)
{
    return json{{"d", c.d}, {"b1", c.b1}, {"b2", c.b2}, {"subspaces", c.subspaces}};
}

CodecConfig codecConfigFromJson(const json& codec, const std::string& where, ErrorKind kind)
{
    if (!codec.is_object())
        throw Error(kind, where + ": expected an object" + found(codec));
    const CodecLimits& l = kCodecLimits;
    CodecConfig c;
    c.d = requireField(codec, where, l.d, kind);
    c.b1 = requireField(codec, where, l.b1, kind);
    c.b2 = requireField(codec, where, l.b2, kind);
    c.subspaces = requireField(codec, where, l.subspaces, kind);
    return c;
}

} // namespace novaq
