// The Jinja subset of jinja.h: lexer, parser to an AST, evaluator.
//
// Written for chat templates from the Jinja template designer documentation and Python's
// semantics for the str/list/dict operations templates use (no code taken from other
// projects). Values behave as in Python: None/True/False print as such, lists and dicts
// print as their repr, `/` is true division, `//` and `%` floor; strings index and slice
// by code point. Lists and dicts are immutable (as in transformers' ImmutableSandboxedEnvironment)
// except namespace() objects, which `{% set ns.attr = ... %}` changes.

#include "novaq/text/jinja.h"

#include "novaq/io/error.h"
#include "novaq/io/utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <functional>
#include <limits>
#include <map>
#include <unordered_map>
#include <vector>

namespace novaq::jinja {

namespace {

// ---------------------------------------------------------------------------------------
// Values

struct Value;
struct Args;
class Evaluator;
using ValueList = std::vector<Value>;
using NativeFn = std::function<Value(Evaluator&, Args&, int line)>;

struct ValueDict {
    std::vector<std::pair<std::string, Value>> entries;
    bool isNamespace = false;
    const Value* find(std::string_view key) const;
    void set(const std::string& key, Value v);
};

struct Value {
    enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Function };
    Kind kind = Kind::Undefined;
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s; // the string; for Undefined, what was looked up (for messages)
    std::shared_ptr<const ValueList> list;
    std::shared_ptr<ValueDict> dict;
    std::shared_ptr<const NativeFn> fn;
    uint32_t depth = 0; // nesting of lists and dicts inside (namespaces count 0: nothing recurses into them)

    static Value undefined(std::string what = {})
    {
        Value v;
        v.s = std::move(what);
        return v;
    }
    static Value none()
    {
        Value v;
        v.kind = Kind::None;
        return v;
    }
    static Value boolean(bool x)
    {
        Value v;
        v.kind = Kind::Bool;
        v.b = x;
        return v;
    }
    static Value integer(int64_t x)
    {
        Value v;
        v.kind = Kind::Int;
        v.i = x;
        return v;
    }
    static Value real(double x)
    {
        Value v;
        v.kind = Kind::Float;
        v.f = x;
        return v;
    }
    static Value string(std::string x)
    {
        Value v;
        v.kind = Kind::String;
        v.s = std::move(x);
        return v;
    }
    static Value makeList(ValueList x)
    {
        Value v;
        v.kind = Kind::List;
        for (const Value& item : x)
            v.depth = std::max(v.depth, item.depth + 1);
        v.list = std::make_shared<const ValueList>(std::move(x));
        return v;
    }
    static Value makeDict(std::shared_ptr<ValueDict> d)
    {
        Value v;
        v.kind = Kind::Dict;
        if (!d->isNamespace)
            for (const auto& entry : d->entries)
                v.depth = std::max(v.depth, entry.second.depth + 1);
        v.dict = std::move(d);
        return v;
    }
    static Value function(NativeFn f)
    {
        Value v;
        v.kind = Kind::Function;
        v.fn = std::make_shared<const NativeFn>(std::move(f));
        return v;
    }

    bool isUndefined() const { return kind == Kind::Undefined; }
    bool isNumber() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
    double number() const { return kind == Kind::Float ? f : kind == Kind::Bool ? (b ? 1.0 : 0.0) : double(i); }
};

const Value* ValueDict::find(std::string_view key) const
{
    for (const auto& [k, v] : entries)
        if (k == key)
            return &v;
    return nullptr;
}

void ValueDict::set(const std::string& key, Value v)
{
    for (auto& [k, old] : entries)
        if (k == key) {
            old = std::move(v);
            return;
        }
    entries.emplace_back(key, std::move(v));
}

struct Args {
    std::vector<Value> pos;
    std::vector<std::pair<std::string, Value>> kw;

    // Positional `index` or keyword `name`, else undefined.
    Value get(size_t index, std::string_view name) const
    {
        if (index < pos.size())
            return pos[index];
        for (const auto& [k, v] : kw)
            if (k == name)
                return v;
        return Value::undefined();
    }
};

const char* typeName(const Value& v)
{
    switch (v.kind) {
    case Value::Kind::Undefined:
        return "undefined value";
    case Value::Kind::None:
        return "none";
    case Value::Kind::Bool:
        return "boolean";
    case Value::Kind::Int:
        return "integer";
    case Value::Kind::Float:
        return "float";
    case Value::Kind::String:
        return "string";
    case Value::Kind::List:
        return "list";
    case Value::Kind::Dict:
        return v.dict->isNamespace ? "namespace" : "dict";
    case Value::Kind::Function:
        return "function";
    }
    return "value";
}

bool truthy(const Value& v)
{
    switch (v.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
        return false;
    case Value::Kind::Bool:
        return v.b;
    case Value::Kind::Int:
        return v.i != 0;
    case Value::Kind::Float:
        return v.f != 0;
    case Value::Kind::String:
        return !v.s.empty();
    case Value::Kind::List:
        return !v.list->empty();
    case Value::Kind::Dict:
        return v.dict->isNamespace || !v.dict->entries.empty();
    case Value::Kind::Function:
        return true;
    }
    return false;
}

// ---------------------------------------------------------------------------------------
// UTF-8 and Python str helpers

// The string split into code points (each as its UTF-8 bytes, io/utf8); a malformed byte
// stands alone.
std::vector<std::string_view> codePoints(std::string_view s)
{
    std::vector<std::string_view> out;
    char32_t cp = 0;
    for (size_t i = 0; i < s.size();) {
        const size_t n = std::max<size_t>(decodeUtf8(s, i, cp), 1);
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

// The code point of one element of codePoints() (a malformed byte: its value).
uint32_t decodeOne(std::string_view cp)
{
    char32_t c = 0;
    return decodeUtf8(cp, 0, c) > 0 ? uint32_t(c) : static_cast<unsigned char>(cp[0]);
}

// Python's str.isspace() for one code point.
bool isPySpace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// str.strip/lstrip/rstrip: `chars` undefined/none -> whitespace, else the set of its code points.
std::string pyStrip(std::string_view s, const Value& chars, bool left, bool right)
{
    const auto cps = codePoints(s);
    std::vector<std::string_view> set;
    const bool useSet = chars.kind == Value::Kind::String;
    if (useSet)
        set = codePoints(chars.s);
    auto strip = [&](std::string_view cp) {
        return useSet ? std::find(set.begin(), set.end(), cp) != set.end() : isPySpace(decodeOne(cp));
    };
    size_t b = 0, e = cps.size();
    if (left)
        while (b < e && strip(cps[b]))
            ++b;
    if (right)
        while (e > b && strip(cps[e - 1]))
            --e;
    std::string out;
    for (size_t k = b; k < e; ++k)
        out += cps[k];
    return out;
}

std::string asciiMap(std::string_view s, int (*f)(int))
{
    std::string out(s);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x80)
            c = char(f(static_cast<unsigned char>(c)));
    return out;
}

std::string pyReplace(std::string_view s, std::string_view from, std::string_view to, int64_t count)
{
    std::string out;
    if (from.empty()) { // Python inserts `to` around every code point
        int64_t done = 0;
        for (std::string_view cp : codePoints(s)) {
            if (count < 0 || done++ < count)
                out += to;
            out += cp;
        }
        if (count < 0 || done < count)
            out += to;
        return out;
    }
    size_t pos = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
        const size_t hit = s.find(from, pos);
        if (hit == std::string_view::npos)
            break;
        out.append(s.substr(pos, hit - pos));
        out.append(to);
        pos = hit + from.size();
        ++done;
    }
    out.append(s.substr(pos));
    return out;
}

std::string formatFloat(double x)
{
    if (std::isnan(x))
        return "nan";
    if (std::isinf(x))
        return x > 0 ? "inf" : "-inf";
    char buf[64];
    // Python repr: shortest round-trip digits, positional for 1e-4 <= |x| < 1e16.
    const double ax = std::fabs(x);
    auto r = (ax != 0 && (ax < 1e-4 || ax >= 1e16))
                 ? std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific)
                 : std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed);
    std::string s(buf, r.ptr);
    if (const size_t e = s.find('e'); e != std::string::npos) {
        // "1e+20" as Python writes it: exponent with at least two digits.
        std::string mant = s.substr(0, e), exp = s.substr(e + 1);
        const char sign = exp[0] == '-' ? '-' : '+';
        if (exp[0] == '-' || exp[0] == '+')
            exp.erase(0, 1);
        if (exp.size() < 2)
            exp.insert(0, "0");
        return mant + "e" + sign + exp;
    }
    if (s.find('.') == std::string::npos)
        s += ".0";
    return s;
}

std::string pyRepr(const Value& v);

std::string toStr(const Value& v)
{
    switch (v.kind) {
    case Value::Kind::Undefined:
        return {};
    case Value::Kind::None:
        return "None";
    case Value::Kind::Bool:
        return v.b ? "True" : "False";
    case Value::Kind::Int:
        return std::to_string(v.i);
    case Value::Kind::Float:
        return formatFloat(v.f);
    case Value::Kind::String:
        return v.s;
    case Value::Kind::List: {
        std::string out = "[";
        for (size_t k = 0; k < v.list->size(); ++k)
            out += (k ? ", " : "") + pyRepr((*v.list)[k]);
        return out + "]";
    }
    case Value::Kind::Dict: {
        if (v.dict->isNamespace)
            return "<Namespace>";
        std::string out = "{";
        bool first = true;
        for (const auto& [k, x] : v.dict->entries) {
            out += (first ? "" : ", ") + pyRepr(Value::string(k)) + ": " + pyRepr(x);
            first = false;
        }
        return out + "}";
    }
    case Value::Kind::Function:
        return "<function>";
    }
    return {};
}

std::string pyRepr(const Value& v)
{
    if (v.kind != Value::Kind::String)
        return toStr(v);
    const char quote = (v.s.find('\'') != std::string::npos && v.s.find('"') == std::string::npos) ? '"' : '\'';
    std::string out(1, quote);
    for (const char c : v.s) {
        if (c == quote || c == '\\')
            out += std::string("\\") + c;
        else if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
            out += buf;
        } else
            out += c;
    }
    return out + quote;
}

// json.dumps(v, ensure_ascii=False, indent=indent) as transformers' tojson does.
void toJson(const Value& v, int indent, int level, std::string& out, int line, const std::string& label);

void jsonString(std::string_view s, std::string& out)
{
    out += '"';
    for (const char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
                out += buf;
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

[[noreturn]] void fail(const std::string& label, int line, const std::string& message)
{
    throw Error(ErrorKind::InvalidInput, label + ": line " + std::to_string(line) + ": " + message);
}

void toJson(const Value& v, int indent, int level, std::string& out, int line, const std::string& label)
{
    auto newline = [&](int lvl) {
        if (indent >= 0) {
            out += '\n';
            out.append(size_t(indent) * size_t(lvl), ' ');
        }
    };
    const char* itemSep = indent >= 0 ? "," : ", ";
    switch (v.kind) {
    case Value::Kind::None:
        out += "null";
        return;
    case Value::Kind::Bool:
        out += v.b ? "true" : "false";
        return;
    case Value::Kind::Int:
        out += std::to_string(v.i);
        return;
    case Value::Kind::Float:
        out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f > 0 ? "Infinity" : "-Infinity") : formatFloat(v.f);
        return;
    case Value::Kind::String:
        jsonString(v.s, out);
        return;
    case Value::Kind::List:
        if (v.list->empty()) {
            out += "[]";
            return;
        }
        out += '[';
        for (size_t k = 0; k < v.list->size(); ++k) {
            if (k)
                out += itemSep;
            newline(level + 1);
            toJson((*v.list)[k], indent, level + 1, out, line, label);
        }
        newline(level);
        out += ']';
        return;
    case Value::Kind::Dict: {
        if (v.dict->isNamespace)
            fail(label, line, "tojson: cannot write a namespace as JSON");
        if (v.dict->entries.empty()) {
            out += "{}";
            return;
        }
        out += '{';
        bool first = true;
        for (const auto& [k, x] : v.dict->entries) {
            if (!first)
                out += itemSep;
            first = false;
            newline(level + 1);
            jsonString(k, out);
            out += ": ";
            toJson(x, indent, level + 1, out, line, label);
        }
        newline(level);
        out += '}';
        return;
    }
    case Value::Kind::Undefined:
    case Value::Kind::Function:
        fail(label, line, std::string("tojson: cannot write a ") + typeName(v) + " as JSON");
    }
}

Value fromJson(const nlohmann::ordered_json& j)
{
    switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
        return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
        return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
        return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
        const uint64_t u = j.get<uint64_t>();
        return u > uint64_t(std::numeric_limits<int64_t>::max()) ? Value::real(double(u)) : Value::integer(int64_t(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
        return Value::real(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
        return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
        ValueList items;
        for (const auto& x : j)
            items.push_back(fromJson(x));
        return Value::makeList(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
        auto d = std::make_shared<ValueDict>();
        for (auto it = j.begin(); it != j.end(); ++it)
            d->entries.emplace_back(it.key(), fromJson(it.value()));
        return Value::makeDict(std::move(d));
    }
    default:
        return Value::undefined();
    }
}

// ---------------------------------------------------------------------------------------
// Lexer: the source split into text and tag tokens, whitespace control applied.

enum class Tok { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
    Tok type;
    std::string text; // text, name, string value or operator
    int64_t i = 0;
    double f = 0;
    int line = 1;
};

class Lexer {
public:
    Lexer(std::string_view source, const std::string& label, Options options) : m_label(label), m_options(options)
    {
        // As Jinja: newlines normalized to \n, one trailing newline dropped.
        m_src.reserve(source.size());
        for (size_t k = 0; k < source.size(); ++k) {
            if (source[k] == '\r') {
                m_src += '\n';
                if (k + 1 < source.size() && source[k + 1] == '\n')
                    ++k;
            } else {
                m_src += source[k];
            }
        }
        if (!m_src.empty() && m_src.back() == '\n')
            m_src.pop_back();
        for (size_t k = 0; k < m_src.size(); ++k)
            if (m_src[k] == '\n')
                m_newlines.push_back(k);
    }

    std::vector<Token> run()
    {
        const size_t n = m_src.size();
        size_t pos = 0;
        bool lineStarting = true;
        while (pos < n) {
            size_t k = pos;
            while ((k = m_src.find('{', k)) != std::string::npos) {
                if (k + 1 < n && (m_src[k + 1] == '{' || m_src[k + 1] == '%' || m_src[k + 1] == '#'))
                    break;
                ++k;
            }
            if (k == std::string::npos) {
                emitText(m_src.substr(pos), pos);
                break;
            }
            std::string text = m_src.substr(pos, k - pos);
            const char kind = m_src[k + 1];
            size_t p = k + 2;
            char sign = 0;
            if (p < n && (m_src[p] == '-' || m_src[p] == '+'))
                sign = m_src[p++];
            if (sign == '-') {
                while (!text.empty() && isSpace(text.back()))
                    text.pop_back();
            } else if (sign != '+' && m_options.lstripBlocks && kind != '{') {
                const size_t nl = text.rfind('\n');
                const size_t lpos = nl == std::string::npos ? 0 : nl + 1;
                if ((lpos > 0 || lineStarting) && lpos < text.size() &&
                    std::all_of(text.begin() + std::ptrdiff_t(lpos), text.end(), [](char c) { return isSpace(c); }))
                    text.resize(lpos);
            }
            emitText(std::move(text), pos);
            if (kind == '#') {
                const size_t end = m_src.find("#}", p);
                if (end == std::string::npos)
                    fail(m_label, lineAt(k), "a comment {# is never closed with #}");
                const char before = end > p ? m_src[end - 1] : 0;
                pos = end + 2;
                pos = afterTag(pos, before == '-', before == '+', true);
            } else {
                const size_t first = m_tokens.size();
                m_tokens.push_back({kind == '{' ? Tok::VarBegin : Tok::BlockBegin, {}, 0, 0, lineAt(k)});
                char closeSign = 0;
                pos = lexTag(p, kind, k, closeSign);
                m_tokens.push_back({kind == '{' ? Tok::VarEnd : Tok::BlockEnd, {}, 0, 0, lineAt(pos - 1)});
                pos = afterTag(pos, closeSign == '-', closeSign == '+', kind == '%');
                if (kind == '%' && m_tokens.size() == first + 3 && m_tokens[first + 1].type == Tok::Name &&
                    m_tokens[first + 1].text == "raw") {
                    m_tokens.resize(first);
                    pos = lexRaw(pos, k);
                }
            }
            lineStarting = pos > 0 && m_src[pos - 1] == '\n';
        }
        m_tokens.push_back({Tok::Eof, {}, 0, 0, lineAt(n)});
        return std::move(m_tokens);
    }

private:
    static bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

    int lineAt(size_t pos) const
    {
        return int(std::lower_bound(m_newlines.begin(), m_newlines.end(), pos) - m_newlines.begin()) + 1;
    }

    void emitText(std::string text, size_t pos)
    {
        if (!text.empty())
            m_tokens.push_back({Tok::Text, std::move(text), 0, 0, lineAt(pos)});
    }

    size_t afterTag(size_t pos, bool strip, bool plus, bool trims)
    {
        if (strip) {
            while (pos < m_src.size() && isSpace(m_src[pos]))
                ++pos;
        } else if (trims && !plus && m_options.trimBlocks && pos < m_src.size() && m_src[pos] == '\n') {
            ++pos;
        }
        return pos;
    }

    // {% raw %} ... {% endraw %}: the text between, as is.
    size_t lexRaw(size_t pos, size_t tagStart)
    {
        size_t k = pos;
        while ((k = m_src.find("{%", k)) != std::string::npos) {
            size_t p = k + 2;
            const bool stripLeft = p < m_src.size() && m_src[p] == '-';
            if (p < m_src.size() && (m_src[p] == '-' || m_src[p] == '+'))
                ++p;
            while (p < m_src.size() && isSpace(m_src[p]))
                ++p;
            if (m_src.compare(p, 6, "endraw") == 0) {
                p += 6;
                while (p < m_src.size() && isSpace(m_src[p]))
                    ++p;
                char sign = 0;
                if (p < m_src.size() && (m_src[p] == '-' || m_src[p] == '+'))
                    sign = m_src[p++];
                if (m_src.compare(p, 2, "%}") == 0) {
                    std::string text = m_src.substr(pos, k - pos);
                    if (stripLeft)
                        while (!text.empty() && isSpace(text.back()))
                            text.pop_back();
                    emitText(std::move(text), pos);
                    return afterTag(p + 2, sign == '-', sign == '+', true);
                }
            }
            k += 2;
        }
        fail(m_label, lineAt(tagStart), "{% raw %} is never closed with {% endraw %}");
    }

    // The tokens of one tag from `p`; returns the position after its closing delimiter.
    // shape: long on purpose (a lexer loop: one branch per token class, sharing the position and bracket depth)
    size_t lexTag(size_t p, char kind, size_t tagStart, char& closeSign)
    {
        const size_t n = m_src.size();
        const char closer = kind == '{' ? '}' : '%';
        int depth = 0;
        while (true) {
            while (p < n && isSpace(m_src[p]))
                ++p;
            if (p >= n)
                fail(m_label, lineAt(tagStart),
                     std::string("this tag is never closed (expected ") + (kind == '{' ? "}}" : "%}") + ")");
            const char c = m_src[p];
            if (depth == 0) {
                size_t q = p;
                char sign = 0;
                if (c == '-' || c == '+') {
                    sign = c;
                    ++q;
                }
                if (q + 1 < n && m_src[q] == closer && m_src[q + 1] == '}') {
                    closeSign = sign;
                    return q + 2;
                }
            }
            const int line = lineAt(p);
            if (c == '\'' || c == '"') {
                p = lexString(p, line);
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                size_t q = p;
                while (q < n && (std::isdigit(static_cast<unsigned char>(m_src[q])) || m_src[q] == '_'))
                    ++q;
                bool isFloat = false;
                if (q + 1 < n && m_src[q] == '.' && std::isdigit(static_cast<unsigned char>(m_src[q + 1]))) {
                    isFloat = true;
                    ++q;
                    while (q < n && (std::isdigit(static_cast<unsigned char>(m_src[q])) || m_src[q] == '_'))
                        ++q;
                }
                if (q < n && (m_src[q] == 'e' || m_src[q] == 'E')) {
                    size_t r = q + 1;
                    if (r < n && (m_src[r] == '+' || m_src[r] == '-'))
                        ++r;
                    if (r < n && std::isdigit(static_cast<unsigned char>(m_src[r]))) {
                        isFloat = true;
                        q = r;
                        while (q < n && std::isdigit(static_cast<unsigned char>(m_src[q])))
                            ++q;
                    }
                }
                std::string digits;
                for (size_t k = p; k < q; ++k)
                    if (m_src[k] != '_')
                        digits += m_src[k];
                Token t{isFloat ? Tok::Float : Tok::Int, digits, 0, 0, line};
                if (isFloat) {
                    t.f = std::strtod(digits.c_str(), nullptr);
                } else {
                    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), t.i);
                    if (r.ec != std::errc())
                        fail(m_label, line, "the number " + digits + " is too large");
                }
                m_tokens.push_back(std::move(t));
                p = q;
            } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                size_t q = p;
                while (q < n && (std::isalnum(static_cast<unsigned char>(m_src[q])) || m_src[q] == '_'))
                    ++q;
                m_tokens.push_back({Tok::Name, m_src.substr(p, q - p), 0, 0, line});
                p = q;
            } else {
                static const char* const twoChar[] = {"//", "**", "==", "!=", "<=", ">="};
                std::string op;
                for (const char* t : twoChar)
                    if (m_src.compare(p, 2, t) == 0)
                        op = t;
                if (op.empty()) {
                    if (std::string_view("+-*/%~|.,:()[]{}<>=").find(c) == std::string_view::npos)
                        fail(m_label, line, std::string("unexpected character '") + c + "' in a tag");
                    op = std::string(1, c);
                    if (c == '(' || c == '[' || c == '{')
                        ++depth;
                    else if ((c == ')' || c == ']' || c == '}') && depth > 0)
                        --depth;
                }
                m_tokens.push_back({Tok::Op, op, 0, 0, line});
                p += op.size();
            }
        }
    }

    // A string literal with Python's escapes; returns the position after it.
    size_t lexString(size_t p, int line)
    {
        const char quote = m_src[p++];
        std::string value;
        while (true) {
            if (p >= m_src.size())
                fail(m_label, line, "a string literal is never closed");
            const char c = m_src[p++];
            if (c == quote)
                break;
            if (c != '\\') {
                value += c;
                continue;
            }
            if (p >= m_src.size())
                fail(m_label, line, "a string literal is never closed");
            const char e = m_src[p++];
            auto hex = [&](int digits) {
                if (p + size_t(digits) > m_src.size())
                    fail(m_label, line, "a \\x, \\u or \\U escape is cut short");
                uint32_t cp = 0;
                for (int k = 0; k < digits; ++k) {
                    const char h = m_src[p++];
                    if (!std::isxdigit(static_cast<unsigned char>(h)))
                        fail(m_label, line, "bad hexadecimal digit in a \\x, \\u or \\U escape");
                    cp = cp * 16 +
                         uint32_t(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (h | 0x20) - 'a' + 10);
                }
                if (cp > 0x10FFFF)
                    fail(m_label, line, "a \\U escape beyond U+10FFFF");
                appendUtf8(value, cp);
            };
            switch (e) {
            case 'n':
                value += '\n';
                break;
            case 't':
                value += '\t';
                break;
            case 'r':
                value += '\r';
                break;
            case '0':
                value += '\0';
                break;
            case 'a':
                value += '\a';
                break;
            case 'b':
                value += '\b';
                break;
            case 'f':
                value += '\f';
                break;
            case 'v':
                value += '\v';
                break;
            case '\\':
            case '\'':
            case '"':
                value += e;
                break;
            case '\n':
                break; // line continuation
            case 'x':
                hex(2);
                break;
            case 'u':
                hex(4);
                break;
            case 'U':
                hex(8);
                break;
            default:
                value += '\\';
                value += e;
            }
        }
        m_tokens.push_back({Tok::String, std::move(value), 0, 0, line});
        return p;
    }

    std::string m_src;
    const std::string& m_label;
    Options m_options;
    std::vector<size_t> m_newlines;
    std::vector<Token> m_tokens;
};

// ---------------------------------------------------------------------------------------
// AST

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum class Kind {
        Literal,
        Name,
        List,
        Tuple,
        Dict,
        Attr,
        Item,
        Slice,
        Call,
        Filter,
        Test,
        Neg,
        Pos,
        Not,
        And,
        Or,
        Binary,
        Compare,
        Cond
    };
    Kind kind = Kind::Literal;
    int line = 0;
    Value literal;
    std::string name;          // Name, Attr, Filter, Test, Binary op
    std::vector<ExprPtr> args; // operands / positional args / list items / dict keys,values
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    std::vector<std::string> ops; // Compare operators
    bool negated = false;         // Test: `is not`
    int depth = 1;                // height of this subtree (bounded: evaluation recurses over it)
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
    enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, Scope, With, FilterBlock };
    Kind kind = Kind::Text;
    int line = 0;
    std::string text;                               // Text
    ExprPtr expr;                                   // Output, Set value, For iterable
    std::vector<std::pair<ExprPtr, Body>> branches; // If (cond, body)
    Body body;                                      // For/SetBlock/Macro/Scope body
    Body elseBody;                                  // If/For
    std::vector<std::string> targets;               // For/Set names; Set "ns.attr" as {ns, attr} with attrTarget
    bool attrTarget = false;
    ExprPtr filter;                                      // For `if`
    std::vector<std::pair<std::string, ExprPtr>> params; // Macro params with defaults (null: none)
};

std::unique_ptr<Stmt> newStmt(Stmt::Kind kind, int line)
{
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
}

} // namespace

struct Template::Program {
    std::string label;
    Body body;
};

namespace {

// Names of the filters and tests the evaluator knows (checked when parsing, as Jinja does).
const std::vector<std::string_view>& filterNames();
const std::vector<std::string_view>& testNames();

// ---------------------------------------------------------------------------------------
// Parser

constexpr int kMaxNesting = 200;
constexpr uint32_t kMaxValueDepth = 200;

class Parser {
public:
    Parser(std::vector<Token> tokens, const std::string& label) : m_t(std::move(tokens)), m_label(label) {}

    Body parseTemplate()
    {
        std::string tag;
        Body body = parseBody({}, tag, 0);
        return body;
    }

private:
    const Token& peek(size_t k = 0) const { return m_t[std::min(m_i + k, m_t.size() - 1)]; }
    const Token& next() { return m_t[std::min(m_i++, m_t.size() - 1)]; }
    bool isOp(std::string_view op, size_t k = 0) const { return peek(k).type == Tok::Op && peek(k).text == op; }
    bool isName(std::string_view name, size_t k = 0) const { return peek(k).type == Tok::Name && peek(k).text == name; }

    std::string describe(const Token& t) const
    {
        switch (t.type) {
        case Tok::Text:
            return "text";
        case Tok::VarBegin:
            return "'{{'";
        case Tok::VarEnd:
            return "'}}'";
        case Tok::BlockBegin:
            return "'{%'";
        case Tok::BlockEnd:
            return "'%}'";
        case Tok::Name:
            return "'" + t.text + "'";
        case Tok::String:
            return "a string";
        case Tok::Int:
        case Tok::Float:
            return "the number " + t.text;
        case Tok::Op:
            return "'" + t.text + "'";
        case Tok::Eof:
            return "the end of the template";
        }
        return "?";
    }

    [[noreturn]] void unexpected(const std::string& wanted) const
    {
        fail(m_label, peek().line, "expected " + wanted + ", found " + describe(peek()));
    }

    void expectOp(std::string_view op)
    {
        if (!isOp(op))
            unexpected("'" + std::string(op) + "'");
        ++m_i;
    }
    void expectType(Tok type, const char* what)
    {
        if (peek().type != type)
            unexpected(what);
        ++m_i;
    }
    std::string expectName(const char* what)
    {
        if (peek().type != Tok::Name)
            unexpected(what);
        return next().text;
    }
    void enter(int line)
    {
        if (++m_depth > kMaxNesting)
            fail(m_label, line, "nested more than " + std::to_string(kMaxNesting) + " levels deep");
    }

    // Statements until one of `endTags` (left unconsumed after its '{%'; its name in `found`).
    Body parseBody(std::initializer_list<std::string_view> endTags, std::string& found, int openLine)
    {
        Body body;
        while (true) {
            const Token& t = peek();
            if (t.type == Tok::Eof) {
                if (endTags.size() == 0)
                    return body;
                std::string names;
                for (std::string_view e : endTags)
                    names += (names.empty() ? "" : " or ") + std::string("{% ") + std::string(e) + " %}";
                fail(m_label, t.line,
                     "the block opened on line " + std::to_string(openLine) + " is never closed (expected " + names +
                         ")");
            }
            if (t.type == Tok::Text) {
                auto s = newStmt(Stmt::Kind::Text, t.line);
                s->text = t.text;
                body.push_back(std::move(s));
                ++m_i;
            } else if (t.type == Tok::VarBegin) {
                ++m_i;
                auto s = newStmt(Stmt::Kind::Output, t.line);
                s->expr = parseExpr();
                expectType(Tok::VarEnd, "'}}'");
                body.push_back(std::move(s));
            } else if (t.type == Tok::BlockBegin) {
                ++m_i;
                if (peek().type == Tok::Name) {
                    for (std::string_view e : endTags)
                        if (peek().text == e) {
                            found = peek().text;
                            ++m_i;
                            return body;
                        }
                }
                body.push_back(parseStatement(t.line));
            } else {
                unexpected("text or a tag");
            }
        }
    }

    // A statement after its '{%': dispatches on the keyword.
    std::unique_ptr<Stmt> parseStatement(int line)
    {
        enter(line);
        const std::string keyword = expectName("a statement name (if, for, set, ...)");
        std::unique_ptr<Stmt> s;
        if (keyword == "if") {
            s = parseIf(line);
        } else if (keyword == "for") {
            s = parseFor(line);
        } else if (keyword == "set") {
            s = parseSet(line);
        } else if (keyword == "macro") {
            s = parseMacro(line);
        } else if (keyword == "break" || keyword == "continue") {
            if (m_loopDepth == 0)
                fail(m_label, line, "{% " + keyword + " %} outside a loop");
            s = newStmt(keyword == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, line);
            expectType(Tok::BlockEnd, "'%}'");
        } else if (keyword == "generation") {
            s = parseGeneration(line);
        } else if (keyword == "with") {
            s = parseWith(line);
        } else if (keyword == "filter") {
            s = parseFilterBlock(line);
        } else if (keyword == "elif" || keyword == "else" || keyword.starts_with("end")) {
            fail(m_label, line, "{% " + keyword + " %} without a matching opening tag");
        } else {
            fail(m_label, line,
                 "{% " + keyword +
                     " %} is not supported in chat templates (supported: if, for, set, macro, with, filter, raw, "
                     "break, continue, generation)");
        }
        --m_depth;
        return s;
    }

    // {% if %} ... {% elif %} ... {% else %} ... {% endif %}.
    std::unique_ptr<Stmt> parseIf(int line)
    {
        std::unique_ptr<Stmt> s = newStmt(Stmt::Kind::If, line);
        ExprPtr cond = parseExpr();
        expectType(Tok::BlockEnd, "'%}'");
        while (true) {
            std::string tag;
            Body body = parseBody({"elif", "else", "endif"}, tag, line);
            s->branches.emplace_back(std::move(cond), std::move(body));
            if (tag == "elif") {
                cond = parseExpr();
                expectType(Tok::BlockEnd, "'%}'");
                continue;
            }
            if (tag == "else") {
                expectType(Tok::BlockEnd, "'%}'");
                s->elseBody = parseBody({"endif"}, tag, line);
            }
            expectType(Tok::BlockEnd, "'%}'");
            break;
        }
        return s;
    }

    // {% for x, y in expr if cond %} ... {% else %} ... {% endfor %}.
    std::unique_ptr<Stmt> parseFor(int line)
    {
        std::unique_ptr<Stmt> s = newStmt(Stmt::Kind::For, line);
        s->targets.push_back(expectName("a loop variable"));
        while (isOp(",")) {
            ++m_i;
            s->targets.push_back(expectName("a loop variable"));
        }
        if (!isName("in"))
            unexpected("'in'");
        ++m_i;
        s->expr = parseTupleOr(/*noCond=*/true);
        if (isName("if")) {
            ++m_i;
            s->filter = parseExpr();
        }
        if (isName("recursive"))
            fail(m_label, peek().line, "recursive loops are not supported");
        expectType(Tok::BlockEnd, "'%}'");
        std::string tag;
        {
            LoopGuard guard(m_loopDepth);
            s->body = parseBody({"else", "endfor"}, tag, line);
        }
        if (tag == "else") {
            expectType(Tok::BlockEnd, "'%}'");
            s->elseBody = parseBody({"endfor"}, tag, line);
        }
        expectType(Tok::BlockEnd, "'%}'");
        return s;
    }

    // {% set a = expr %}, {% set a, b = expr %}, {% set ns.attr = expr %} or {% set a %} ... {% endset %}.
    std::unique_ptr<Stmt> parseSet(int line)
    {
        std::unique_ptr<Stmt> s = newStmt(Stmt::Kind::Set, line);
        s->targets.push_back(expectName("a variable name"));
        if (isOp(".")) {
            ++m_i;
            s->targets.push_back(expectName("an attribute name"));
            s->attrTarget = true;
        } else {
            while (isOp(",")) {
                ++m_i;
                s->targets.push_back(expectName("a variable name"));
            }
        }
        if (isOp("=")) {
            ++m_i;
            s->expr = parseTupleOr(false);
            expectType(Tok::BlockEnd, "'%}'");
        } else {
            if (s->targets.size() > 1 && !s->attrTarget)
                unexpected("'='");
            expectType(Tok::BlockEnd, "'%}' or '='");
            s->kind = Stmt::Kind::SetBlock;
            std::string tag;
            s->body = parseBody({"endset"}, tag, line);
            expectType(Tok::BlockEnd, "'%}'");
        }
        return s;
    }

    // {% macro name(a, b=default) %} ... {% endmacro %}.
    std::unique_ptr<Stmt> parseMacro(int line)
    {
        std::unique_ptr<Stmt> s = newStmt(Stmt::Kind::Macro, line);
        s->targets.push_back(expectName("a macro name"));
        expectOp("(");
        while (!isOp(")")) {
            std::string param = expectName("a parameter name");
            ExprPtr def;
            if (isOp("=")) {
                ++m_i;
                def = parseExpr();
            }
            s->params.emplace_back(std::move(param), std::move(def));
            if (!isOp(")"))
                expectOp(",");
        }
        ++m_i;
        expectType(Tok::BlockEnd, "'%}'");
        std::string tag;
        s->body = parseBody({"endmacro"}, tag, line);
        expectType(Tok::BlockEnd, "'%}'");
        return s;
    }

    // {% generation %} ... {% endgeneration %}: transformers' marker for assistant tokens, renders its body.
    std::unique_ptr<Stmt> parseGeneration(int line)
    {
        std::unique_ptr<Stmt> s = newStmt(Stmt::Kind::Scope, line);
        expectType(Tok::BlockEnd, "'%}'");
        std::string tag;
        s->body = parseBody({"endgeneration"}, tag, line);
        expectType(Tok::BlockEnd, "'%}'");
        return s;
    }

    // {% with a = 1, b = x %} ... {% endwith %}: names that live only inside.
    std::unique_ptr<Stmt> parseWith(int line)
    {
        std::unique_ptr<Stmt> s = newStmt(Stmt::Kind::With, line);
        while (peek().type != Tok::BlockEnd) {
            std::string name = expectName("a variable name");
            expectOp("=");
            s->params.emplace_back(std::move(name), parseExpr());
            if (peek().type != Tok::BlockEnd)
                expectOp(",");
        }
        ++m_i;
        std::string tag;
        s->body = parseBody({"endwith"}, tag, line);
        expectType(Tok::BlockEnd, "'%}'");
        return s;
    }

    // {% filter upper %} ... {% endfilter %}: the body's text through a filter.
    std::unique_ptr<Stmt> parseFilterBlock(int line)
    {
        std::unique_ptr<Stmt> s = newStmt(Stmt::Kind::FilterBlock, line);
        auto f = make(Expr::Kind::Filter, line);
        f->name = expectName("a filter name");
        const auto& names = filterNames();
        if (std::find(names.begin(), names.end(), f->name) == names.end())
            fail(m_label, line, "no filter named '" + f->name + "'");
        if (isOp("(")) {
            enter(line);
            parseCallArgs(*f);
            --m_depth;
        }
        s->expr = std::move(f);
        expectType(Tok::BlockEnd, "'%}'");
        std::string tag;
        s->body = parseBody({"endfilter"}, tag, line);
        expectType(Tok::BlockEnd, "'%}'");
        return s;
    }

    // Counts loops while parsing a for body (for break/continue checks).
    struct LoopGuard {
        int& d;
        explicit LoopGuard(int& x) : d(x) { ++d; }
        ~LoopGuard() { --d; }
    };

    ExprPtr make(Expr::Kind kind, int line)
    {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->line = line;
        return e;
    }

    // Sets the node's height from its children's; chains like a.b.c... or 1+1+... are built
    // in loops, so this (not the recursion depth of the parser) is what bounds them.
    ExprPtr seal(ExprPtr e)
    {
        int h = 0;
        for (const auto& a : e->args)
            if (a)
                h = std::max(h, a->depth);
        for (const auto& [name, a] : e->kwargs)
            h = std::max(h, a->depth);
        e->depth = h + 1;
        if (e->depth > kMaxNesting)
            fail(m_label, e->line, "an expression nested more than " + std::to_string(kMaxNesting) + " levels deep");
        return e;
    }

    // An expression, or a tuple of them without parentheses (for/set right-hand sides).
    ExprPtr parseTupleOr(bool noCond)
    {
        const int line = peek().line;
        ExprPtr first = noCond ? parseOr() : parseExpr();
        if (!isOp(","))
            return first;
        auto t = make(Expr::Kind::Tuple, line);
        t->args.push_back(std::move(first));
        while (isOp(",")) {
            ++m_i;
            if (peek().type == Tok::BlockEnd || isName("if"))
                break;
            t->args.push_back(noCond ? parseOr() : parseExpr());
        }
        return seal(std::move(t));
    }

public:
    ExprPtr parseExpr()
    {
        const int line = peek().line;
        enter(line);
        ExprPtr e = parseOr();
        while (isName("if")) {
            ++m_i;
            auto c = make(Expr::Kind::Cond, line);
            c->args.push_back(parseOr());
            c->args.push_back(std::move(e));
            if (isName("else")) {
                ++m_i;
                c->args.push_back(parseExpr());
            }
            e = seal(std::move(c));
        }
        --m_depth;
        return e;
    }

private:
    ExprPtr parseOr()
    {
        ExprPtr e = parseAnd();
        while (isName("or")) {
            auto o = make(Expr::Kind::Or, next().line);
            o->args.push_back(std::move(e));
            o->args.push_back(parseAnd());
            e = seal(std::move(o));
        }
        return e;
    }

    ExprPtr parseAnd()
    {
        ExprPtr e = parseNot();
        while (isName("and")) {
            auto o = make(Expr::Kind::And, next().line);
            o->args.push_back(std::move(e));
            o->args.push_back(parseNot());
            e = seal(std::move(o));
        }
        return e;
    }

    ExprPtr parseNot()
    {
        if (isName("not")) {
            const int line = next().line;
            enter(line);
            auto n = make(Expr::Kind::Not, line);
            n->args.push_back(parseNot());
            --m_depth;
            return seal(std::move(n));
        }
        return parseCompare();
    }

    ExprPtr parseCompare()
    {
        const int line = peek().line;
        ExprPtr first = parseMath1();
        ExprPtr cmp;
        while (true) {
            std::string op;
            if (peek().type == Tok::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                           peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
                op = next().text;
            } else if (isName("in")) {
                ++m_i;
                op = "in";
            } else if (isName("not") && isName("in", 1)) {
                m_i += 2;
                op = "not in";
            } else {
                break;
            }
            if (!cmp) {
                cmp = make(Expr::Kind::Compare, line);
                cmp->args.push_back(std::move(first));
            }
            cmp->ops.push_back(op);
            cmp->args.push_back(parseMath1());
        }
        return cmp ? seal(std::move(cmp)) : std::move(first);
    }

    ExprPtr binary(std::string op, ExprPtr a, ExprPtr b, int line)
    {
        auto e = make(Expr::Kind::Binary, line);
        e->name = std::move(op);
        e->args.push_back(std::move(a));
        e->args.push_back(std::move(b));
        return seal(std::move(e));
    }

    ExprPtr parseMath1()
    {
        ExprPtr e = parseConcat();
        while (isOp("+") || isOp("-")) {
            const Token& t = next();
            e = binary(t.text, std::move(e), parseConcat(), t.line);
        }
        return e;
    }

    ExprPtr parseConcat()
    {
        ExprPtr e = parseMath2();
        while (isOp("~")) {
            const Token& t = next();
            e = binary("~", std::move(e), parseMath2(), t.line);
        }
        return e;
    }

    ExprPtr parseMath2()
    {
        ExprPtr e = parsePow();
        while (isOp("*") || isOp("/") || isOp("//") || isOp("%")) {
            const Token& t = next();
            e = binary(t.text, std::move(e), parsePow(), t.line);
        }
        return e;
    }

    ExprPtr parsePow()
    {
        ExprPtr e = parseUnary(true);
        while (isOp("**")) {
            const Token& t = next();
            e = binary("**", std::move(e), parseUnary(true), t.line);
        }
        return e;
    }

    ExprPtr parseUnary(bool withFilter)
    {
        ExprPtr e;
        if (isOp("-") || isOp("+")) {
            const Token& t = next();
            enter(t.line);
            e = make(t.text == "-" ? Expr::Kind::Neg : Expr::Kind::Pos, t.line);
            e->args.push_back(parseUnary(false));
            e = seal(std::move(e));
            --m_depth;
        } else {
            e = parsePostfix(parsePrimary());
        }
        return withFilter ? parseFilterExpr(std::move(e)) : std::move(e);
    }

    // shape: long on purpose (a token switch: one branch per kind of primary expression)
    ExprPtr parsePrimary()
    {
        const Token& t = peek();
        if (t.type == Tok::Name) {
            ++m_i;
            if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
                auto e = make(Expr::Kind::Literal, t.line);
                e->literal = Value::boolean(t.text[0] == 't' || t.text[0] == 'T');
                return e;
            }
            if (t.text == "none" || t.text == "None") {
                auto e = make(Expr::Kind::Literal, t.line);
                e->literal = Value::none();
                return e;
            }
            auto e = make(Expr::Kind::Name, t.line);
            e->name = t.text;
            return e;
        }
        if (t.type == Tok::String) {
            auto e = make(Expr::Kind::Literal, t.line);
            std::string s;
            while (peek().type == Tok::String) // adjacent literals concatenate
                s += next().text;
            e->literal = Value::string(std::move(s));
            return e;
        }
        if (t.type == Tok::Int || t.type == Tok::Float) {
            ++m_i;
            auto e = make(Expr::Kind::Literal, t.line);
            e->literal = t.type == Tok::Int ? Value::integer(t.i) : Value::real(t.f);
            return e;
        }
        if (isOp("(")) {
            ++m_i;
            enter(t.line);
            if (isOp(")")) {
                ++m_i;
                --m_depth;
                return make(Expr::Kind::Tuple, t.line);
            }
            ExprPtr first = parseExpr();
            if (isOp(",")) {
                auto tup = make(Expr::Kind::Tuple, t.line);
                tup->args.push_back(std::move(first));
                while (isOp(",")) {
                    ++m_i;
                    if (isOp(")"))
                        break;
                    tup->args.push_back(parseExpr());
                }
                first = seal(std::move(tup));
            }
            expectOp(")");
            --m_depth;
            return first;
        }
        if (isOp("[")) {
            ++m_i;
            enter(t.line);
            auto e = make(Expr::Kind::List, t.line);
            while (!isOp("]")) {
                e->args.push_back(parseExpr());
                if (!isOp("]"))
                    expectOp(",");
            }
            ++m_i;
            --m_depth;
            return seal(std::move(e));
        }
        if (isOp("{")) {
            ++m_i;
            enter(t.line);
            auto e = make(Expr::Kind::Dict, t.line);
            while (!isOp("}")) {
                e->args.push_back(parseExpr());
                expectOp(":");
                e->args.push_back(parseExpr());
                if (!isOp("}"))
                    expectOp(",");
            }
            ++m_i;
            --m_depth;
            return seal(std::move(e));
        }
        unexpected("a value");
    }

    void parseCallArgs(Expr& call)
    {
        expectOp("(");
        while (!isOp(")")) {
            if (peek().type == Tok::Name && isOp("=", 1)) {
                std::string name = next().text;
                ++m_i;
                call.kwargs.emplace_back(std::move(name), parseExpr());
            } else {
                if (!call.kwargs.empty())
                    fail(m_label, peek().line, "a positional argument after a keyword argument");
                call.args.push_back(parseExpr());
            }
            if (!isOp(")"))
                expectOp(",");
        }
        ++m_i;
    }

    ExprPtr parsePostfix(ExprPtr e)
    {
        while (true) {
            const int line = peek().line;
            if (isOp(".")) {
                ++m_i;
                auto a = make(Expr::Kind::Attr, line);
                if (peek().type == Tok::Int) {
                    a->kind = Expr::Kind::Item;
                    auto idx = make(Expr::Kind::Literal, line);
                    idx->literal = Value::integer(next().i);
                    a->args.push_back(std::move(e));
                    a->args.push_back(std::move(idx));
                } else {
                    a->name = expectName("an attribute name");
                    a->args.push_back(std::move(e));
                }
                e = seal(std::move(a));
            } else if (isOp("[")) {
                ++m_i;
                enter(line);
                ExprPtr start, stop, step;
                bool slice = false;
                if (!isOp(":"))
                    start = parseExpr();
                if (isOp(":")) {
                    slice = true;
                    ++m_i;
                    if (!isOp(":") && !isOp("]"))
                        stop = parseExpr();
                    if (isOp(":")) {
                        ++m_i;
                        if (!isOp("]"))
                            step = parseExpr();
                    }
                }
                expectOp("]");
                --m_depth;
                auto a = make(slice ? Expr::Kind::Slice : Expr::Kind::Item, line);
                a->args.push_back(std::move(e));
                a->args.push_back(std::move(start));
                if (slice) {
                    a->args.push_back(std::move(stop));
                    a->args.push_back(std::move(step));
                }
                e = seal(std::move(a));
            } else if (isOp("(")) {
                enter(line);
                auto c = make(Expr::Kind::Call, line);
                c->args.push_back(std::move(e));
                parseCallArgs(*c);
                --m_depth;
                e = seal(std::move(c));
            } else {
                return e;
            }
        }
    }

    ExprPtr parseFilterExpr(ExprPtr e)
    {
        while (true) {
            const int line = peek().line;
            if (isOp("|")) {
                ++m_i;
                auto f = make(Expr::Kind::Filter, line);
                f->name = expectName("a filter name");
                const auto& names = filterNames();
                if (std::find(names.begin(), names.end(), f->name) == names.end())
                    fail(m_label, line, "no filter named '" + f->name + "'");
                f->args.push_back(std::move(e));
                if (isOp("(")) {
                    enter(line);
                    parseCallArgs(*f);
                    --m_depth;
                }
                e = seal(std::move(f));
            } else if (isName("is")) {
                ++m_i;
                auto t = make(Expr::Kind::Test, line);
                if (isName("not")) {
                    ++m_i;
                    t->negated = true;
                }
                t->name = expectName("a test name");
                const auto& names = testNames();
                if (std::find(names.begin(), names.end(), t->name) == names.end())
                    fail(m_label, line, "no test named '" + t->name + "'");
                t->args.push_back(std::move(e));
                if (isOp("(")) {
                    enter(line);
                    parseCallArgs(*t);
                    --m_depth;
                } else if ((peek().type == Tok::Name || peek().type == Tok::String || peek().type == Tok::Int ||
                            peek().type == Tok::Float || isOp("[") || isOp("{")) &&
                           !(isName("else") || isName("or") || isName("and") || isName("if") || isName("in") ||
                             isName("is") || isName("not"))) {
                    t->args.push_back(parsePostfix(parsePrimary()));
                }
                e = seal(std::move(t));
            } else {
                return e;
            }
        }
    }

    std::vector<Token> m_t;
    size_t m_i = 0;
    const std::string& m_label;
    int m_depth = 0;
    int m_loopDepth = 0;
};

// ---------------------------------------------------------------------------------------
// Evaluator

struct RaiseSignal {
    std::string message;
    int line;
};

class Evaluator {
public:
    Evaluator(const Template::Program& program, const RenderOptions& options) : m_program(program), m_options(options)
    {
        m_frames.emplace_back();
    }

    const std::string& label() const { return m_program.label; }
    const Limits& limits() const { return m_options.limits; }
    const RenderOptions& options() const { return m_options; }

    void setGlobal(const std::string& name, Value v) { m_frames.front()[name] = std::move(v); }

    // Namespaces can hold themselves (set ns.me = [ns]); emptied when rendering ends so such
    // cycles do not outlive it.
    void track(std::shared_ptr<ValueDict> ns) { m_namespaces.push_back(std::move(ns)); }
    ~Evaluator()
    {
        for (const auto& ns : m_namespaces)
            ns->entries.clear();
    }

    std::string run()
    {
        exec(m_program.body);
        return std::move(m_out);
    }

    [[noreturn]] void error(int line, const std::string& message) const { fail(label(), line, message); }

    void step(int line)
    {
        if (++m_steps > m_options.limits.maxSteps)
            error(line, "the template runs too long (more than " + std::to_string(m_options.limits.maxSteps) +
                            " steps); is it looping without end?");
    }

    void checkSize(size_t bytes, int line) const
    {
        if (bytes > m_options.limits.maxOutputBytes)
            error(line,
                  "the template makes text longer than " + std::to_string(m_options.limits.maxOutputBytes) + " bytes");
    }

    Value checkDepth(Value v, int line) const
    {
        if (v.depth > kMaxValueDepth)
            error(line,
                  "the template nests lists or dicts more than " + std::to_string(kMaxValueDepth) + " levels deep");
        return v;
    }

    void checkItems(size_t n, int line) const
    {
        if (n > m_options.limits.maxItems)
            error(line,
                  "the template builds a list of more than " + std::to_string(m_options.limits.maxItems) + " items");
    }

    Value callFilter(const std::string& name, Value& subject, Args& args, int line);
    std::string percentFormat(const std::string& format, const std::vector<Value>& args, int line);
    std::string braceFormat(const std::string& format, const Args& args, int line);
    bool callTest(const std::string& name, const Value& subject, Args& args, int line);
    Value attribute(const Value& obj, const std::string& name, int line);
    Value item(const Value& obj, const Value& key, int line);
    std::vector<Value> iterate(const Value& v, int line);

    Value callMacro(const Stmt& macro, Args& args, int line)
    {
        if (m_callDepth >= m_options.limits.maxCallDepth)
            error(line,
                  "macros call each other more than " + std::to_string(m_options.limits.maxCallDepth) + " levels deep");
        std::unordered_map<std::string, Value> frame;
        for (size_t k = 0; k < macro.params.size(); ++k) {
            const auto& [name, def] = macro.params[k];
            Value v = args.get(k, name);
            if (v.isUndefined() && def)
                v = eval(*def);
            frame[name] = v;
        }
        if (args.pos.size() > macro.params.size())
            error(line, "macro " + macro.targets[0] + " takes " + std::to_string(macro.params.size()) +
                            " arguments, given " + std::to_string(args.pos.size()));
        std::vector<std::unordered_map<std::string, Value>> saved;
        saved.push_back(m_frames.front());
        std::swap(saved, m_frames);
        m_frames.push_back(std::move(frame));
        std::string savedOut;
        std::swap(savedOut, m_out);
        ++m_callDepth;
        try {
            exec(macro.body);
        } catch (...) {
            --m_callDepth;
            std::swap(savedOut, m_out);
            std::swap(saved, m_frames);
            throw;
        }
        --m_callDepth;
        std::swap(savedOut, m_out);
        std::swap(saved, m_frames);
        return Value::string(std::move(savedOut));
    }

private:
    enum class Flow { Normal, Break, Continue };

    Value lookup(const std::string& name) const
    {
        for (auto it = m_frames.rbegin(); it != m_frames.rend(); ++it)
            if (const auto f = it->find(name); f != it->end())
                return f->second;
        return Value::undefined("'" + name + "' is undefined");
    }

    void emit(const std::string& s, int line)
    {
        checkSize(m_out.size() + s.size(), line);
        m_out += s;
    }

    Flow exec(const Body& body)
    {
        for (const auto& s : body) {
            const Flow f = exec(*s);
            if (f != Flow::Normal)
                return f;
        }
        return Flow::Normal;
    }

    void assign(const Stmt& s, Value v)
    {
        if (s.attrTarget) {
            Value ns = lookup(s.targets[0]);
            if (ns.kind != Value::Kind::Dict || !ns.dict->isNamespace)
                error(s.line, "cannot set " + s.targets[0] + "." + s.targets[1] + ": " + s.targets[0] +
                                  " is not a namespace() (it is a " + typeName(ns) + ")");
            ns.dict->set(s.targets[1], std::move(v));
            return;
        }
        if (s.targets.size() == 1) {
            m_frames.back()[s.targets[0]] = std::move(v);
            return;
        }
        const std::vector<Value> items = iterate(v, s.line);
        if (items.size() != s.targets.size())
            error(s.line, "cannot unpack " + std::to_string(items.size()) + " values into " +
                              std::to_string(s.targets.size()) + " names");
        for (size_t k = 0; k < items.size(); ++k)
            m_frames.back()[s.targets[k]] = items[k];
    }

    Flow exec(const Stmt& s)
    {
        step(s.line);
        switch (s.kind) {
        case Stmt::Kind::Text:
            emit(s.text, s.line);
            return Flow::Normal;
        case Stmt::Kind::Output:
            emit(toStr(eval(*s.expr)), s.line);
            return Flow::Normal;
        case Stmt::Kind::If:
            for (const auto& [cond, body] : s.branches)
                if (truthy(eval(*cond)))
                    return exec(body);
            return exec(s.elseBody);
        case Stmt::Kind::For:
            return execFor(s);
        case Stmt::Kind::Set:
            assign(s, eval(*s.expr));
            return Flow::Normal;
        case Stmt::Kind::SetBlock: {
            std::string saved;
            std::swap(saved, m_out);
            exec(s.body);
            std::swap(saved, m_out);
            assign(s, Value::string(std::move(saved)));
            return Flow::Normal;
        }
        case Stmt::Kind::Macro: {
            const Stmt* macro = &s;
            m_frames.back()[s.targets[0]] = Value::function(
                [macro](Evaluator& ev, Args& args, int line) { return ev.callMacro(*macro, args, line); });
            return Flow::Normal;
        }
        case Stmt::Kind::Break:
            return Flow::Break;
        case Stmt::Kind::Continue:
            return Flow::Continue;
        case Stmt::Kind::Scope:
            return exec(s.body);
        case Stmt::Kind::With: {
            std::unordered_map<std::string, Value> frame;
            for (const auto& [name, e] : s.params)
                frame[name] = eval(*e);
            m_frames.push_back(std::move(frame));
            Flow f;
            try {
                f = exec(s.body);
            } catch (...) {
                m_frames.pop_back();
                throw;
            }
            m_frames.pop_back();
            return f;
        }
        case Stmt::Kind::FilterBlock: {
            std::string saved;
            std::swap(saved, m_out);
            Flow f;
            try {
                f = exec(s.body);
            } catch (...) {
                std::swap(saved, m_out);
                throw;
            }
            std::swap(saved, m_out);
            Value text = Value::string(std::move(saved));
            Args args = evalArgs(*s.expr, 0);
            emit(toStr(callFilter(s.expr->name, text, args, s.line)), s.line);
            return f;
        }
        }
        return Flow::Normal;
    }

    void bindTargets(const Stmt& s, const Value& v, std::unordered_map<std::string, Value>& frame)
    {
        if (s.targets.size() == 1) {
            frame[s.targets[0]] = v;
            return;
        }
        const std::vector<Value> parts = iterate(v, s.line);
        if (parts.size() != s.targets.size())
            error(s.line, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                              std::to_string(s.targets.size()) + " loop variables");
        for (size_t k = 0; k < parts.size(); ++k)
            frame[s.targets[k]] = parts[k];
    }

    Flow execFor(const Stmt& s)
    {
        std::vector<Value> items = iterate(eval(*s.expr), s.line);
        if (s.filter) {
            std::vector<Value> kept;
            for (const Value& v : items) {
                step(s.line);
                m_frames.emplace_back();
                bindTargets(s, v, m_frames.back());
                const bool keep = truthy(eval(*s.filter));
                m_frames.pop_back();
                if (keep)
                    kept.push_back(v);
            }
            items = std::move(kept);
        }
        if (items.empty())
            return exec(s.elseBody);
        const size_t n = items.size();
        for (size_t k = 0; k < n; ++k) {
            step(s.line);
            auto loop = std::make_shared<ValueDict>();
            loop->entries = {{"index0", Value::integer(int64_t(k))},
                             {"index", Value::integer(int64_t(k + 1))},
                             {"revindex0", Value::integer(int64_t(n - k - 1))},
                             {"revindex", Value::integer(int64_t(n - k))},
                             {"first", Value::boolean(k == 0)},
                             {"last", Value::boolean(k + 1 == n)},
                             {"length", Value::integer(int64_t(n))},
                             {"depth", Value::integer(1)},
                             {"depth0", Value::integer(0)},
                             {"previtem", k > 0 ? items[k - 1] : Value::undefined("loop.previtem is undefined")},
                             {"nextitem", k + 1 < n ? items[k + 1] : Value::undefined("loop.nextitem is undefined")}};
            loop->entries.emplace_back("cycle", Value::function([k](Evaluator& ev, Args& args, int line) {
                                           if (args.pos.empty())
                                               ev.error(line, "loop.cycle() needs at least one value");
                                           return args.pos[k % args.pos.size()];
                                       }));
            m_frames.emplace_back();
            bindTargets(s, items[k], m_frames.back());
            m_frames.back()["loop"] = Value::makeDict(std::move(loop));
            Flow f;
            try {
                f = exec(s.body);
            } catch (...) {
                m_frames.pop_back();
                throw;
            }
            m_frames.pop_back();
            if (f == Flow::Break)
                break;
        }
        return Flow::Normal;
    }

public:
    // shape: long on purpose (an opcode switch: one case per expression kind)
    Value eval(const Expr& e)
    {
        step(e.line);
        switch (e.kind) {
        case Expr::Kind::Literal:
            return e.literal;
        case Expr::Kind::Name:
            return lookup(e.name);
        case Expr::Kind::List:
        case Expr::Kind::Tuple: {
            ValueList items;
            for (const auto& a : e.args)
                items.push_back(eval(*a));
            return checkDepth(Value::makeList(std::move(items)), e.line);
        }
        case Expr::Kind::Dict: {
            auto d = std::make_shared<ValueDict>();
            for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
                const Value key = eval(*e.args[k]);
                if (key.kind != Value::Kind::String)
                    error(e.line, std::string("dict keys must be strings here, found a ") + typeName(key));
                d->set(key.s, eval(*e.args[k + 1]));
            }
            return checkDepth(Value::makeDict(std::move(d)), e.line);
        }
        case Expr::Kind::Attr:
            return attribute(eval(*e.args[0]), e.name, e.line);
        case Expr::Kind::Item:
            return item(eval(*e.args[0]), eval(*e.args[1]), e.line);
        case Expr::Kind::Slice:
            return slice(eval(*e.args[0]), e.args[1].get(), e.args[2].get(), e.args[3].get(), e.line);
        case Expr::Kind::Call: {
            const Value callee = eval(*e.args[0]);
            Args args = evalArgs(e, 1);
            if (callee.kind != Value::Kind::Function) {
                if (callee.isUndefined() && !callee.s.empty())
                    error(e.line, callee.s + " (cannot call it)");
                error(e.line, std::string("cannot call a ") + typeName(callee));
            }
            return (*callee.fn)(*this, args, e.line);
        }
        case Expr::Kind::Filter: {
            Value subject = eval(*e.args[0]);
            Args args = evalArgs(e, 1);
            return callFilter(e.name, subject, args, e.line);
        }
        case Expr::Kind::Test: {
            const Value subject = eval(*e.args[0]);
            Args args = evalArgs(e, 1);
            return Value::boolean(callTest(e.name, subject, args, e.line) != e.negated);
        }
        case Expr::Kind::Neg:
        case Expr::Kind::Pos: {
            const Value v = eval(*e.args[0]);
            if (!v.isNumber())
                error(e.line, std::string("cannot negate a ") + typeName(v));
            if (e.kind == Expr::Kind::Pos)
                return v.kind == Value::Kind::Bool ? Value::integer(v.b) : v;
            if (v.kind == Value::Kind::Float)
                return Value::real(-v.f);
            const int64_t x = v.kind == Value::Kind::Bool ? int64_t(v.b) : v.i;
            if (x == std::numeric_limits<int64_t>::min())
                error(e.line, "integer overflow");
            return Value::integer(-x);
        }
        case Expr::Kind::Not:
            return Value::boolean(!truthy(eval(*e.args[0])));
        case Expr::Kind::And: {
            Value a = eval(*e.args[0]);
            return truthy(a) ? eval(*e.args[1]) : a;
        }
        case Expr::Kind::Or: {
            Value a = eval(*e.args[0]);
            return truthy(a) ? a : eval(*e.args[1]);
        }
        case Expr::Kind::Binary:
            return binaryOp(e.name, eval(*e.args[0]), eval(*e.args[1]), e.line);
        case Expr::Kind::Compare: {
            Value left = eval(*e.args[0]);
            for (size_t k = 0; k < e.ops.size(); ++k) {
                Value right = eval(*e.args[k + 1]);
                if (!compare(e.ops[k], left, right, e.line))
                    return Value::boolean(false);
                left = std::move(right);
            }
            return Value::boolean(true);
        }
        case Expr::Kind::Cond:
            if (truthy(eval(*e.args[0])))
                return eval(*e.args[1]);
            return e.args.size() > 2 ? eval(*e.args[2]) : Value::undefined("the conditional expression has no else");
        }
        return Value::undefined();
    }

    static bool equal(const Value& a, const Value& b)
    {
        if (a.isNumber() && b.isNumber()) {
            if (a.kind == Value::Kind::Float || b.kind == Value::Kind::Float)
                return a.number() == b.number();
            const int64_t x = a.kind == Value::Kind::Bool ? a.b : a.i, y = b.kind == Value::Kind::Bool ? b.b : b.i;
            return x == y;
        }
        if (a.kind != b.kind)
            return false;
        switch (a.kind) {
        case Value::Kind::Undefined:
        case Value::Kind::None:
            return true;
        case Value::Kind::String:
            return a.s == b.s;
        case Value::Kind::List:
            if (a.list->size() != b.list->size())
                return false;
            for (size_t k = 0; k < a.list->size(); ++k)
                if (!equal((*a.list)[k], (*b.list)[k]))
                    return false;
            return true;
        case Value::Kind::Dict:
            if (a.dict == b.dict)
                return true;
            if (a.dict->isNamespace || b.dict->isNamespace || a.dict->entries.size() != b.dict->entries.size())
                return false;
            for (const auto& [k, v] : a.dict->entries) {
                const Value* o = b.dict->find(k);
                if (!o || !equal(v, *o))
                    return false;
            }
            return true;
        case Value::Kind::Function:
            return a.fn == b.fn;
        default:
            return false;
        }
    }

    // -1, 0, 1 as Python orders numbers, strings and lists; an error for other pairs.
    int order(const Value& a, const Value& b, int line) const
    {
        if (a.isNumber() && b.isNumber()) {
            if (a.kind == Value::Kind::Float || b.kind == Value::Kind::Float)
                return a.number() < b.number() ? -1 : a.number() > b.number() ? 1 : 0;
            const int64_t x = a.kind == Value::Kind::Bool ? a.b : a.i, y = b.kind == Value::Kind::Bool ? b.b : b.i;
            return x < y ? -1 : x > y ? 1 : 0;
        }
        if (a.kind == Value::Kind::String && b.kind == Value::Kind::String)
            return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
        if (a.kind == Value::Kind::List && b.kind == Value::Kind::List) {
            for (size_t k = 0; k < std::min(a.list->size(), b.list->size()); ++k) {
                if (equal((*a.list)[k], (*b.list)[k]))
                    continue;
                return order((*a.list)[k], (*b.list)[k], line);
            }
            return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
        }
        error(line, std::string("cannot compare a ") + typeName(a) + " with a " + typeName(b));
    }

    bool contains(const Value& container, const Value& needle, int line) const
    {
        switch (container.kind) {
        case Value::Kind::String:
            if (needle.kind != Value::Kind::String)
                error(line, std::string("'in <string>' needs a string on the left, found a ") + typeName(needle));
            return container.s.find(needle.s) != std::string::npos;
        case Value::Kind::List:
            return std::any_of(container.list->begin(), container.list->end(),
                               [&](const Value& v) { return equal(v, needle); });
        case Value::Kind::Dict:
            return needle.kind == Value::Kind::String && container.dict->find(needle.s) != nullptr;
        case Value::Kind::Undefined:
            return false;
        default:
            error(line, std::string("cannot look inside a ") + typeName(container) + " with 'in'");
        }
    }

    bool compare(const std::string& op, const Value& a, const Value& b, int line) const
    {
        if (op == "==")
            return equal(a, b);
        if (op == "!=")
            return !equal(a, b);
        if (op == "in")
            return contains(b, a, line);
        if (op == "not in")
            return !contains(b, a, line);
        const int c = order(a, b, line);
        return op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
    }

    [[noreturn]] void badOperands(const std::string& op, const Value& a, const Value& b, int line) const
    {
        for (const Value* v : {&a, &b})
            if (v->isUndefined() && !v->s.empty())
                error(line, v->s + " (used with '" + op + "')");
        error(line, "cannot use '" + op + "' on a " + typeName(a) + " and a " + typeName(b));
    }

    // shape: long on purpose (an operator switch: one case per binary operator)
    Value binaryOp(const std::string& op, const Value& a, const Value& b, int line)
    {
        if (op == "~") {
            std::string s = toStr(a) + toStr(b);
            checkSize(s.size(), line);
            return Value::string(std::move(s));
        }
        if (op == "+") {
            if (a.kind == Value::Kind::String && b.kind == Value::Kind::String) {
                checkSize(a.s.size() + b.s.size(), line);
                return Value::string(a.s + b.s);
            }
            if (a.kind == Value::Kind::List && b.kind == Value::Kind::List) {
                checkItems(a.list->size() + b.list->size(), line);
                ValueList items = *a.list;
                items.insert(items.end(), b.list->begin(), b.list->end());
                return Value::makeList(std::move(items));
            }
        }
        if (op == "*") {
            const Value* text = a.kind == Value::Kind::String || a.kind == Value::Kind::List ? &a : &b;
            const Value* count = text == &a ? &b : &a;
            if ((text->kind == Value::Kind::String || text->kind == Value::Kind::List) &&
                (count->kind == Value::Kind::Int || count->kind == Value::Kind::Bool)) {
                const int64_t n = std::max<int64_t>(0, count->kind == Value::Kind::Bool ? count->b : count->i);
                if (text->kind == Value::Kind::String) {
                    if (n > 0 && text->s.size() > m_options.limits.maxOutputBytes / size_t(n))
                        checkSize(m_options.limits.maxOutputBytes + 1, line);
                    std::string s;
                    for (int64_t k = 0; k < n; ++k)
                        s += text->s;
                    return Value::string(std::move(s));
                }
                if (n > 0 && text->list->size() > m_options.limits.maxItems / size_t(n))
                    checkItems(m_options.limits.maxItems + 1, line);
                ValueList items;
                for (int64_t k = 0; k < n; ++k)
                    items.insert(items.end(), text->list->begin(), text->list->end());
                return Value::makeList(std::move(items));
            }
        }
        if (op == "%" && a.kind == Value::Kind::String)
            return Value::string(
                percentFormat(a.s, b.kind == Value::Kind::List ? *b.list : std::vector<Value>{b}, line));
        if (!a.isNumber() || !b.isNumber())
            badOperands(op, a, b, line);
        const bool ints = a.kind != Value::Kind::Float && b.kind != Value::Kind::Float;
        const int64_t x = a.kind == Value::Kind::Bool ? a.b : a.i, y = b.kind == Value::Kind::Bool ? b.b : b.i;
        const double fx = a.number(), fy = b.number();
        int64_t r = 0;
        if (op == "+") {
            if (!ints)
                return Value::real(fx + fy);
            if (__builtin_add_overflow(x, y, &r))
                error(line, "integer overflow");
            return Value::integer(r);
        }
        if (op == "-") {
            if (!ints)
                return Value::real(fx - fy);
            if (__builtin_sub_overflow(x, y, &r))
                error(line, "integer overflow");
            return Value::integer(r);
        }
        if (op == "*") {
            if (!ints)
                return Value::real(fx * fy);
            if (__builtin_mul_overflow(x, y, &r))
                error(line, "integer overflow");
            return Value::integer(r);
        }
        if (op == "/") {
            if (fy == 0)
                error(line, "division by zero");
            return Value::real(fx / fy);
        }
        if (op == "//" || op == "%") {
            if (fy == 0)
                error(line, op == "//" ? "division by zero" : "modulo by zero");
            if (ints) {
                if (x == std::numeric_limits<int64_t>::min() && y == -1)
                    error(line, "integer overflow");
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    --q;
                    m += y;
                }
                return Value::integer(op == "//" ? q : m);
            }
            const double q = std::floor(fx / fy);
            return Value::real(op == "//" ? q : fx - q * fy);
        }
        if (op == "**") {
            if (ints && y >= 0) {
                int64_t acc = 1;
                for (int64_t k = 0; k < y; ++k)
                    if (__builtin_mul_overflow(acc, x, &acc))
                        error(line, "integer overflow");
                    else if (acc == 0 || acc == 1)
                        break;
                return Value::integer((acc == 1 && x == -1 && y % 2 == 1) ? -1 : acc);
            }
            return Value::real(std::pow(fx, fy));
        }
        badOperands(op, a, b, line);
    }

    Args evalArgs(const Expr& e, size_t from)
    {
        Args args;
        for (size_t k = from; k < e.args.size(); ++k)
            args.pos.push_back(eval(*e.args[k]));
        for (const auto& [name, x] : e.kwargs)
            args.kw.emplace_back(name, eval(*x));
        return args;
    }

    static int64_t clampIndex(int64_t i, int64_t n, bool forStepNegative)
    {
        if (i < 0) {
            i += n;
            if (i < 0)
                i = forStepNegative ? -1 : 0;
        } else if (i >= n) {
            i = forStepNegative ? n - 1 : n;
        }
        return i;
    }

    int64_t toIndex(const Value& v, int line, const char* what) const
    {
        if (v.kind == Value::Kind::Int)
            return v.i;
        if (v.kind == Value::Kind::Bool)
            return v.b;
        error(line, std::string("a slice ") + what + " must be an integer, found a " + typeName(v));
    }

    Value slice(const Value& obj, const Expr* startE, const Expr* stopE, const Expr* stepE, int line)
    {
        const Value startV = startE ? eval(*startE) : Value::none();
        const Value stopV = stopE ? eval(*stopE) : Value::none();
        const Value stepV = stepE ? eval(*stepE) : Value::none();
        std::vector<std::string_view> cps;
        int64_t n;
        if (obj.kind == Value::Kind::String) {
            cps = codePoints(obj.s);
            n = int64_t(cps.size());
        } else if (obj.kind == Value::Kind::List) {
            n = int64_t(obj.list->size());
        } else if (obj.isUndefined()) {
            error(line, (obj.s.empty() ? std::string("an undefined value") : obj.s) + " (cannot slice it)");
        } else {
            error(line, std::string("cannot slice a ") + typeName(obj));
        }
        const int64_t stepN = stepV.kind == Value::Kind::None ? 1 : toIndex(stepV, line, "step");
        if (stepN == 0)
            error(line, "slice step cannot be zero");
        int64_t start, stop;
        if (stepN > 0) {
            start = startV.kind == Value::Kind::None ? 0 : clampIndex(toIndex(startV, line, "start"), n, false);
            stop = stopV.kind == Value::Kind::None ? n : clampIndex(toIndex(stopV, line, "stop"), n, false);
        } else {
            start = startV.kind == Value::Kind::None ? n - 1 : clampIndex(toIndex(startV, line, "start"), n, true);
            stop = stopV.kind == Value::Kind::None ? -1 : clampIndex(toIndex(stopV, line, "stop"), n, true);
        }
        std::vector<int64_t> picks;
        for (int64_t k = start; stepN > 0 ? k < stop : k > stop; k += stepN)
            picks.push_back(k);
        if (obj.kind == Value::Kind::String) {
            std::string out;
            for (int64_t k : picks)
                out += cps[size_t(k)];
            return Value::string(std::move(out));
        }
        ValueList items;
        for (int64_t k : picks)
            items.push_back((*obj.list)[size_t(k)]);
        return Value::makeList(std::move(items));
    }

private:
    const Template::Program& m_program;
    const RenderOptions& m_options;
    std::vector<std::unordered_map<std::string, Value>> m_frames;
    std::string m_out;
    uint64_t m_steps = 0;
    int m_callDepth = 0;
    std::vector<std::shared_ptr<ValueDict>> m_namespaces;
};

std::vector<Value> Evaluator::iterate(const Value& v, int line)
{
    switch (v.kind) {
    case Value::Kind::List:
        return *v.list;
    case Value::Kind::Dict: {
        if (v.dict->isNamespace)
            error(line, "cannot loop over a namespace");
        std::vector<Value> keys;
        for (const auto& [k, x] : v.dict->entries)
            keys.push_back(Value::string(k));
        return keys;
    }
    case Value::Kind::String: {
        std::vector<Value> chars;
        for (std::string_view cp : codePoints(v.s))
            chars.push_back(Value::string(std::string(cp)));
        return chars;
    }
    case Value::Kind::Undefined:
        return {};
    default:
        error(line, std::string("cannot loop over a ") + typeName(v));
    }
}

Value Evaluator::item(const Value& obj, const Value& key, int line)
{
    switch (obj.kind) {
    case Value::Kind::List:
    case Value::Kind::String: {
        if (key.kind != Value::Kind::Int && key.kind != Value::Kind::Bool) {
            if (key.kind == Value::Kind::String && obj.kind == Value::Kind::String)
                return attribute(obj, key.s, line);
            return Value::undefined(std::string("a ") + typeName(obj) + " has no item " + pyRepr(key));
        }
        int64_t i = key.kind == Value::Kind::Bool ? key.b : key.i;
        if (obj.kind == Value::Kind::List) {
            const int64_t n = int64_t(obj.list->size());
            if (i < 0)
                i += n;
            if (i < 0 || i >= n)
                return Value::undefined("list index " + std::to_string(key.i) + " is out of range (the list has " +
                                        std::to_string(n) + " items)");
            return (*obj.list)[size_t(i)];
        }
        const auto cps = codePoints(obj.s);
        const int64_t n = int64_t(cps.size());
        if (i < 0)
            i += n;
        if (i < 0 || i >= n)
            return Value::undefined("string index " + std::to_string(key.i) + " is out of range");
        return Value::string(std::string(cps[size_t(i)]));
    }
    case Value::Kind::Dict:
        if (key.kind == Value::Kind::String) {
            if (const Value* v = obj.dict->find(key.s))
                return *v;
            return attribute(obj, key.s, line);
        }
        return Value::undefined(std::string("the dict has no key ") + pyRepr(key));
    case Value::Kind::Undefined:
        error(line, (obj.s.empty() ? std::string("an undefined value") : obj.s) + " (cannot take its item " +
                        pyRepr(key) + ")");
    default:
        return Value::undefined(std::string("a ") + typeName(obj) + " has no item " + pyRepr(key));
    }
}

// Methods of str and dict as bound functions, then dict keys.
// shape: long on purpose (a name switch: one case per str/list/dict method the templates call)
Value Evaluator::attribute(const Value& obj, const std::string& name, int line)
{
    const Value self = obj;
    auto method = [&](NativeFn f) { return Value::function(std::move(f)); };
    if (obj.kind == Value::Kind::String) {
        if (name == "strip" || name == "lstrip" || name == "rstrip")
            return method([self, name](Evaluator&, Args& a, int) {
                return Value::string(pyStrip(self.s, a.get(0, "chars"), name != "rstrip", name != "lstrip"));
            });
        if (name == "startswith" || name == "endswith")
            return method([self, name](Evaluator& ev, Args& a, int ln) {
                const Value p = a.get(0, "prefix");
                std::vector<std::string> options;
                if (p.kind == Value::Kind::String)
                    options.push_back(p.s);
                else if (p.kind == Value::Kind::List)
                    for (const Value& x : *p.list)
                        if (x.kind == Value::Kind::String)
                            options.push_back(x.s);
                        else
                            ev.error(ln, name + "() needs strings");
                else
                    ev.error(ln, name + "() needs a string or a tuple of strings, found a " + typeName(p));
                for (const std::string& o : options)
                    if (name == "startswith" ? self.s.starts_with(o) : self.s.ends_with(o))
                        return Value::boolean(true);
                return Value::boolean(false);
            });
        if (name == "split" || name == "rsplit")
            return method([self, name](Evaluator& ev, Args& a, int ln) {
                const Value sep = a.get(0, "sep");
                const Value maxV = a.get(1, "maxsplit");
                int64_t maxsplit = maxV.kind == Value::Kind::Int ? maxV.i : -1;
                ValueList parts;
                if (sep.kind == Value::Kind::String) {
                    if (sep.s.empty())
                        ev.error(ln, "split(): empty separator");
                    if (name == "split" || maxsplit < 0) {
                        size_t pos = 0;
                        while (maxsplit < 0 || int64_t(parts.size()) < maxsplit) {
                            const size_t hit = self.s.find(sep.s, pos);
                            if (hit == std::string::npos)
                                break;
                            parts.push_back(Value::string(self.s.substr(pos, hit - pos)));
                            pos = hit + sep.s.size();
                        }
                        parts.push_back(Value::string(self.s.substr(pos)));
                    } else {
                        size_t end = self.s.size();
                        std::vector<Value> rev;
                        while (int64_t(rev.size()) < maxsplit) {
                            if (end < sep.s.size())
                                break;
                            const size_t hit = self.s.rfind(sep.s, end - sep.s.size());
                            if (hit == std::string::npos)
                                break;
                            rev.push_back(Value::string(self.s.substr(hit + sep.s.size(), end - hit - sep.s.size())));
                            end = hit;
                        }
                        parts.push_back(Value::string(self.s.substr(0, end)));
                        parts.insert(parts.end(), rev.rbegin(), rev.rend());
                    }
                } else {
                    // Runs of whitespace, no empty strings.
                    const auto cps = codePoints(self.s);
                    std::string cur;
                    bool in = false;
                    for (size_t k = 0; k < cps.size(); ++k) {
                        const bool sp = isPySpace(decodeOne(cps[k]));
                        if (sp) {
                            if (in) {
                                parts.push_back(Value::string(cur));
                                cur.clear();
                                in = false;
                            }
                            continue;
                        }
                        if (!in && maxsplit >= 0 && int64_t(parts.size()) >= maxsplit) {
                            std::string rest;
                            for (size_t r = k; r < cps.size(); ++r)
                                rest += cps[r];
                            cur = pyStrip(rest, Value::none(), false, true);
                            in = true;
                            break;
                        }
                        cur += cps[k];
                        in = true;
                    }
                    if (in)
                        parts.push_back(Value::string(cur));
                }
                ev.checkItems(parts.size(), ln);
                return Value::makeList(std::move(parts));
            });
        if (name == "replace")
            return method([self](Evaluator& ev, Args& a, int ln) {
                const Value from = a.get(0, "old"), to = a.get(1, "new"), count = a.get(2, "count");
                if (from.kind != Value::Kind::String || to.kind != Value::Kind::String)
                    ev.error(ln, "replace() needs two strings");
                std::string r = pyReplace(self.s, from.s, to.s, count.kind == Value::Kind::Int ? count.i : -1);
                ev.checkSize(r.size(), ln);
                return Value::string(std::move(r));
            });
        if (name == "upper" || name == "lower")
            return method([self, name](Evaluator&, Args&, int) {
                return Value::string(asciiMap(self.s, name == "upper" ? ::toupper : ::tolower));
            });
        if (name == "title" || name == "capitalize")
            return method([self, name](Evaluator& ev, Args& a, int ln) {
                Value v = self;
                return ev.callFilter(name, v, a, ln);
            });
        if (name == "format")
            return method(
                [self](Evaluator& ev, Args& a, int ln) { return Value::string(ev.braceFormat(self.s, a, ln)); });
        if (name == "find" || name == "count")
            return method([self, name](Evaluator& ev, Args& a, int ln) {
                const Value sub = a.get(0, "sub");
                if (sub.kind != Value::Kind::String)
                    ev.error(ln, name + "() needs a string");
                if (name == "find") {
                    const size_t hit = self.s.find(sub.s);
                    return Value::integer(hit == std::string::npos ? -1
                                                                   : int64_t(codePoints(self.s.substr(0, hit)).size()));
                }
                if (sub.s.empty())
                    return Value::integer(int64_t(codePoints(self.s).size()) + 1);
                int64_t n = 0;
                for (size_t p = 0; (p = self.s.find(sub.s, p)) != std::string::npos; p += sub.s.size())
                    ++n;
                return Value::integer(n);
            });
        if (name == "join")
            return method([self](Evaluator& ev, Args& a, int ln) {
                std::string out;
                bool first = true;
                for (const Value& v : ev.iterate(a.get(0, "iterable"), ln)) {
                    if (v.kind != Value::Kind::String)
                        ev.error(ln, std::string("join() needs strings, found a ") + typeName(v));
                    if (!first)
                        out += self.s;
                    out += v.s;
                    first = false;
                    ev.checkSize(out.size(), ln);
                }
                return Value::string(std::move(out));
            });
        return Value::undefined("a string has no attribute '" + name + "'");
    }
    if (obj.kind == Value::Kind::Dict) {
        if (!obj.dict->isNamespace) {
            if (name == "items" || name == "keys" || name == "values")
                return method([self, name](Evaluator&, Args&, int) {
                    ValueList out;
                    for (const auto& [k, v] : self.dict->entries)
                        out.push_back(name == "items"  ? Value::makeList({Value::string(k), v})
                                      : name == "keys" ? Value::string(k)
                                                       : v);
                    return Value::makeList(std::move(out));
                });
            if (name == "get")
                return method([self](Evaluator& ev, Args& a, int ln) {
                    const Value key = a.get(0, "key");
                    if (key.kind != Value::Kind::String)
                        ev.error(ln, "get() needs a string key");
                    const Value* v = self.dict->find(key.s);
                    if (v)
                        return *v;
                    const Value def = a.get(1, "default");
                    return def.isUndefined() ? Value::none() : def;
                });
        }
        if (const Value* v = obj.dict->find(name))
            return *v;
        return Value::undefined("'" + name + "' is undefined (the " + typeName(obj) + " has no such key)");
    }
    if (obj.isUndefined())
        error(line, (obj.s.empty() ? std::string("an undefined value") : obj.s) + " (cannot read its attribute '" +
                        name + "')");
    return Value::undefined(std::string("a ") + typeName(obj) + " has no attribute '" + name + "'");
}

// ---------------------------------------------------------------------------------------
// Filters and tests

const std::vector<std::string_view>& filterNames()
{
    static const std::vector<std::string_view> names = {
        "abs",        "format",  "attr",    "capitalize", "count",  "d",      "default",    "dictsort",
        "e",          "escape",  "first",   "float",      "indent", "int",    "items",      "join",
        "last",       "length",  "list",    "lower",      "map",    "max",    "min",        "reject",
        "rejectattr", "replace", "reverse", "round",      "safe",   "select", "selectattr", "sort",
        "string",     "sum",     "title",   "tojson",     "trim",   "unique", "upper",      "wordcount"};
    return names;
}

const std::vector<std::string_view>& testNames()
{
    static const std::vector<std::string_view> names = {
        "boolean",   "callable", "defined", "divisibleby", "eq",      "equalto",  "escaped",  "even",   "false",
        "float",     "ge",       "gt",      "in",          "integer", "iterable", "le",       "lower",  "lt",
        "mapping",   "ne",       "none",    "number",      "odd",     "sameas",   "sequence", "string", "true",
        "undefined", "upper",    "==",      "!=",          "<",       ">",        "<=",       ">="};
    return names;
}

// Python's printf-style `format % args` for the conversions templates use: s r d i f F x X o
// c %, with flags - 0 + and space, a width and a precision (no %(name)s mappings).
// shape: long on purpose (a conversion switch; flags, width and precision are parsed and applied around it)
std::string Evaluator::percentFormat(const std::string& format, const std::vector<Value>& args, int line)
{
    std::string out;
    size_t next = 0;
    for (size_t i = 0; i < format.size(); ++i) {
        if (format[i] != '%') {
            out += format[i];
            continue;
        }
        size_t j = i + 1;
        std::string flags;
        while (j < format.size() && std::string_view("-+ 0#").find(format[j]) != std::string_view::npos)
            flags += format[j++];
        int width = 0, precision = -1;
        while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j])) && width < 10000)
            width = width * 10 + (format[j++] - '0');
        if (j < format.size() && format[j] == '.') {
            precision = 0;
            ++j;
            while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j])) && precision < 1000)
                precision = precision * 10 + (format[j++] - '0');
        }
        if (j >= format.size())
            error(line, "format: the string ends inside a % conversion");
        const char type = format[j];
        i = j;
        if (type == '%') {
            out += '%';
            continue;
        }
        if (type == '(')
            error(line, "format: %(name)s conversions are not supported");
        if (next >= args.size())
            error(line, "format: not enough arguments for the format string");
        const Value& v = args[next++];
        std::string text;
        switch (type) {
        case 's':
            text = toStr(v);
            if (precision >= 0) {
                const auto cps = codePoints(text);
                if (cps.size() > size_t(precision)) {
                    text.clear();
                    for (size_t k = 0; k < size_t(precision); ++k)
                        text += cps[k];
                }
            }
            break;
        case 'r':
            text = pyRepr(v);
            break;
        case 'd':
        case 'i':
        case 'x':
        case 'X':
        case 'o':
        case 'c':
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G': {
            if (!v.isNumber())
                error(line, std::string("format: %") + type + " needs a number, found a " + typeName(v));
            std::string spec = "%";
            for (const char f : flags)
                if (f != '-' && f != '0')
                    spec += f;
            char buf[512];
            if (type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == 'g' || type == 'G') {
                spec += "." + std::to_string(precision < 0 ? 6 : std::min(precision, 100)) + type;
                std::snprintf(buf, sizeof buf, spec.c_str(), v.number());
            } else if (type == 'c') {
                const int64_t c = v.kind == Value::Kind::Float ? int64_t(v.f) : v.kind == Value::Kind::Bool ? v.b : v.i;
                if (c < 0 || c > 0x10FFFF)
                    error(line, "format: %c needs a code point");
                std::string ch;
                appendUtf8(ch, uint32_t(c));
                std::snprintf(buf, sizeof buf, "%s", ch.c_str());
            } else {
                const long long n = v.kind == Value::Kind::Float  ? (long long)(v.f)
                                    : v.kind == Value::Kind::Bool ? (long long)(v.b)
                                                                  : (long long)(v.i);
                spec += std::string("ll") + (type == 'i' ? 'd' : type);
                std::snprintf(buf, sizeof buf, spec.c_str(), n);
            }
            text = buf;
            break;
        }
        default:
            error(line, std::string("format: unsupported conversion %") + type);
        }
        const size_t length = codePoints(text).size();
        if (size_t(width) > length) {
            const size_t pad = size_t(width) - length;
            if (flags.find('-') != std::string::npos)
                text += std::string(pad, ' ');
            else if (flags.find('0') != std::string::npos && type != 's' && type != 'r' && type != 'c') {
                const size_t at = (!text.empty() && (text[0] == '-' || text[0] == '+' || text[0] == ' ')) ? 1 : 0;
                text.insert(at, pad, '0');
            } else
                text.insert(0, pad, ' ');
        }
        out += text;
        checkSize(out.size(), line);
    }
    if (next < args.size())
        error(line, "format: not all arguments converted");
    return out;
}

// str.format with {} / {0} / {name} fields and {{ }} escapes (no format specs).
std::string Evaluator::braceFormat(const std::string& format, const Args& args, int line)
{
    std::string out;
    size_t auto_ = 0;
    for (size_t i = 0; i < format.size(); ++i) {
        const char c = format[i];
        if (c == '}') {
            if (i + 1 < format.size() && format[i + 1] == '}')
                ++i;
            out += '}';
            continue;
        }
        if (c != '{') {
            out += c;
            continue;
        }
        if (i + 1 < format.size() && format[i + 1] == '{') {
            out += '{';
            ++i;
            continue;
        }
        const size_t close = format.find('}', i);
        if (close == std::string::npos)
            error(line, "format(): a { is never closed");
        const std::string field = format.substr(i + 1, close - i - 1);
        i = close;
        if (field.find_first_of(":!") != std::string::npos)
            error(line, "format(): format specs ({:...}, {!r}) are not supported");
        Value v;
        if (field.empty()) {
            if (auto_ >= args.pos.size())
                error(line, "format(): not enough arguments");
            v = args.pos[auto_++];
        } else if (std::all_of(field.begin(), field.end(),
                               [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
            const size_t k = size_t(std::stoul(field.substr(0, 9)));
            if (k >= args.pos.size())
                error(line, "format(): no argument " + field);
            v = args.pos[k];
        } else {
            v = args.get(size_t(-1), field);
            if (v.isUndefined())
                error(line, "format(): no argument named " + field);
        }
        out += toStr(v);
        checkSize(out.size(), line);
    }
    return out;
}

std::string htmlEscape(std::string_view s)
{
    std::string out;
    for (const char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&#34;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

bool Evaluator::callTest(const std::string& name, const Value& v, Args& args, int line)
{
    using K = Value::Kind;
    if (name == "defined")
        return !v.isUndefined();
    if (name == "undefined")
        return v.isUndefined();
    if (name == "none")
        return v.kind == K::None;
    if (name == "boolean")
        return v.kind == K::Bool;
    if (name == "true")
        return v.kind == K::Bool && v.b;
    if (name == "false")
        return v.kind == K::Bool && !v.b;
    if (name == "integer")
        return v.kind == K::Int;
    if (name == "float")
        return v.kind == K::Float;
    if (name == "number")
        return v.isNumber();
    if (name == "string")
        return v.kind == K::String;
    if (name == "mapping")
        return v.kind == K::Dict && !v.dict->isNamespace;
    if (name == "iterable")
        return v.kind == K::List || v.kind == K::String || (v.kind == K::Dict && !v.dict->isNamespace) ||
               v.kind == K::Undefined;
    if (name == "sequence")
        return v.kind == K::List || v.kind == K::String || (v.kind == K::Dict && !v.dict->isNamespace) ||
               v.kind == K::Undefined;
    if (name == "callable")
        return v.kind == K::Function;
    if (name == "escaped")
        return false;
    if (name == "lower" || name == "upper") {
        if (v.kind != K::String)
            return false;
        const std::string s = toStr(v);
        return s == asciiMap(s, name == "lower" ? ::tolower : ::toupper) &&
               std::any_of(s.begin(), s.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
    }
    if (name == "odd" || name == "even" || name == "divisibleby") {
        if (v.kind != K::Int && v.kind != K::Bool)
            error(line, "the test '" + name + "' needs an integer, found a " + typeName(v));
        const int64_t x = v.kind == K::Bool ? v.b : v.i;
        if (name == "divisibleby") {
            const Value d = args.get(0, "num");
            if (d.kind != K::Int || d.i == 0)
                error(line, "divisibleby needs a non-zero integer");
            return x % d.i == 0;
        }
        return (x % 2 != 0) == (name == "odd");
    }
    const Value other = args.get(0, "other");
    if (name == "sameas")
        return v.kind == other.kind && (v.kind == K::None || v.kind == K::Undefined || equal(v, other)) &&
               (v.kind != K::List || v.list == other.list) && (v.kind != K::Dict || v.dict == other.dict);
    if (name == "eq" || name == "equalto" || name == "==")
        return equal(v, other);
    if (name == "ne" || name == "!=")
        return !equal(v, other);
    if (name == "in")
        return contains(other, v, line);
    const std::string op = name == "lt" ? "<" : name == "le" ? "<=" : name == "gt" ? ">" : name == "ge" ? ">=" : name;
    return compare(op, v, other, line);
}

// shape: long on purpose (a name switch: one case per Jinja filter, each a few lines)
Value Evaluator::callFilter(const std::string& name, Value& v, Args& args, int line)
{
    using K = Value::Kind;
    auto needList = [&]() {
        if (v.kind == K::List)
            return *v.list;
        return iterate(v, line);
    };
    // map/select helpers: the attribute of an item ("a.b" walks into it).
    auto attrOf = [&](const Value& x, const std::string& path) {
        Value cur = x;
        size_t pos = 0;
        while (true) {
            const size_t dot = path.find('.', pos);
            const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
            bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
            int64_t index = 0;
            if (numeric && std::from_chars(part.data(), part.data() + part.size(), index).ec != std::errc())
                numeric = false; // too large for an index: a key that will not be found
            cur = numeric ? item(cur, Value::integer(index), line) : item(cur, Value::string(part), line);
            if (dot == std::string::npos)
                return cur;
            pos = dot + 1;
        }
    };

    if (name == "default" || name == "d") {
        const Value def = args.get(0, "default_value");
        const bool boolean = truthy(args.get(1, "boolean"));
        if (v.isUndefined() || (boolean && !truthy(v)))
            return def.isUndefined() ? Value::string("") : def;
        return v;
    }
    if (name == "trim") {
        const Value chars = args.get(0, "chars");
        return Value::string(pyStrip(toStr(v), chars, true, true));
    }
    if (name == "length" || name == "count") {
        switch (v.kind) {
        case K::String:
            return Value::integer(int64_t(codePoints(v.s).size()));
        case K::List:
            return Value::integer(int64_t(v.list->size()));
        case K::Dict:
            return Value::integer(int64_t(v.dict->entries.size()));
        case K::Undefined:
            return Value::integer(0);
        default:
            error(line, std::string("a ") + typeName(v) + " has no length");
        }
    }
    if (name == "string")
        return Value::string(toStr(v));
    if (name == "upper" || name == "lower")
        return Value::string(asciiMap(toStr(v), name == "upper" ? ::toupper : ::tolower));
    if (name == "capitalize") {
        std::string s = asciiMap(toStr(v), ::tolower);
        if (!s.empty() && static_cast<unsigned char>(s[0]) < 0x80)
            s[0] = char(std::toupper(static_cast<unsigned char>(s[0])));
        return Value::string(std::move(s));
    }
    if (name == "title") {
        std::string s = toStr(v);
        bool start = true;
        for (char& c : s) {
            const auto u = static_cast<unsigned char>(c);
            if (std::isalpha(u)) {
                c = char(start ? std::toupper(u) : std::tolower(u));
                start = false;
            } else {
                start = u < 0x80 && !std::isalnum(u) && c != '\'';
            }
        }
        return Value::string(std::move(s));
    }
    if (name == "safe")
        return v;
    if (name == "format")
        return Value::string(percentFormat(toStr(v), args.pos, line));
    if (name == "escape" || name == "e")
        return Value::string(htmlEscape(toStr(v)));
    if (name == "tojson") {
        const Value ind = args.get(0, "indent");
        std::string out;
        toJson(v, ind.kind == K::Int ? int(std::clamp<int64_t>(ind.i, 0, 64)) : -1, 0, out, line, label());
        checkSize(out.size(), line);
        return Value::string(std::move(out));
    }
    if (name == "first" || name == "last") {
        if (v.kind == K::String) {
            const auto cps = codePoints(v.s);
            if (cps.empty())
                return Value::undefined("the string is empty (no " + name + " character)");
            return Value::string(std::string(name == "first" ? cps.front() : cps.back()));
        }
        const std::vector<Value> items = needList();
        if (items.empty())
            return Value::undefined("the sequence is empty (no " + name + " item)");
        return name == "first" ? items.front() : items.back();
    }
    if (name == "items") {
        if (v.isUndefined())
            return Value::makeList({});
        if (v.kind != K::Dict || v.dict->isNamespace)
            error(line, std::string("the items filter needs a dict, found a ") + typeName(v));
        ValueList out;
        for (const auto& [k, x] : v.dict->entries)
            out.push_back(Value::makeList({Value::string(k), x}));
        return Value::makeList(std::move(out));
    }
    if (name == "dictsort") {
        if (v.kind != K::Dict || v.dict->isNamespace)
            error(line, std::string("dictsort needs a dict, found a ") + typeName(v));
        auto entries = v.dict->entries;
        const bool caseSensitive = truthy(args.get(0, "case_sensitive"));
        std::stable_sort(entries.begin(), entries.end(), [&](const auto& a, const auto& b) {
            return caseSensitive ? a.first < b.first : asciiMap(a.first, ::tolower) < asciiMap(b.first, ::tolower);
        });
        ValueList out;
        for (const auto& [k, x] : entries)
            out.push_back(Value::makeList({Value::string(k), x}));
        return Value::makeList(std::move(out));
    }
    if (name == "join") {
        const Value sep = args.get(0, "d");
        const Value attr = args.get(1, "attribute");
        std::string out;
        bool first = true;
        for (const Value& x : needList()) {
            if (!first)
                out += sep.isUndefined() ? std::string() : toStr(sep);
            out += toStr(attr.kind == K::String ? attrOf(x, attr.s) : x);
            first = false;
            checkSize(out.size(), line);
        }
        return Value::string(std::move(out));
    }
    if (name == "replace") {
        const Value from = args.get(0, "old"), to = args.get(1, "new"), count = args.get(2, "count");
        std::string r = pyReplace(toStr(v), toStr(from), toStr(to), count.kind == K::Int ? count.i : int64_t(-1));
        checkSize(r.size(), line);
        return Value::string(std::move(r));
    }
    if (name == "list")
        return Value::makeList(needList());
    if (name == "reverse") {
        if (v.kind == K::String) {
            auto cps = codePoints(v.s);
            std::string out;
            for (auto it = cps.rbegin(); it != cps.rend(); ++it)
                out += *it;
            return Value::string(std::move(out));
        }
        std::vector<Value> items = needList();
        std::reverse(items.begin(), items.end());
        return Value::makeList(std::move(items));
    }
    if (name == "unique") {
        ValueList out;
        for (const Value& x : needList())
            if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); }))
                out.push_back(x);
        return Value::makeList(std::move(out));
    }
    if (name == "sort") {
        std::vector<Value> items = needList();
        const bool reverse = truthy(args.get(0, "reverse"));
        const bool caseSensitive = truthy(args.get(1, "case_sensitive"));
        const Value attr = args.get(2, "attribute");
        auto key = [&](const Value& x) {
            Value k = attr.kind == K::String ? attrOf(x, attr.s) : x;
            if (!caseSensitive && k.kind == K::String)
                k.s = asciiMap(k.s, ::tolower);
            return k;
        };
        std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
            const int c = order(key(a), key(b), line);
            return reverse ? c > 0 : c < 0;
        });
        return Value::makeList(std::move(items));
    }
    if (name == "map" || name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
        const std::vector<Value> items = needList();
        ValueList out;
        if (name == "map") {
            const Value attr = args.get(99, "attribute");
            if (attr.kind == K::String) {
                const Value def = args.get(99, "default");
                for (const Value& x : items) {
                    Value y = attrOf(x, attr.s);
                    out.push_back(y.isUndefined() && !def.isUndefined() ? def : y);
                }
            } else {
                if (args.pos.empty() || args.pos[0].kind != K::String)
                    error(line, "map needs a filter name or attribute=");
                const std::string filter = args.pos[0].s;
                const auto& names = filterNames();
                if (std::find(names.begin(), names.end(), filter) == names.end())
                    error(line, "no filter named '" + filter + "'");
                Args rest;
                rest.pos.assign(args.pos.begin() + 1, args.pos.end());
                rest.kw = args.kw;
                for (Value x : items)
                    out.push_back(callFilter(filter, x, rest, line));
            }
            return Value::makeList(std::move(out));
        }
        const bool byAttr = name == "selectattr" || name == "rejectattr";
        const bool keepIf = name == "select" || name == "selectattr";
        size_t at = 0;
        std::string attr;
        if (byAttr) {
            if (args.pos.empty() || args.pos[0].kind != K::String)
                error(line, name + " needs an attribute name");
            attr = args.pos[0].s;
            at = 1;
        }
        std::string test;
        Args rest;
        if (args.pos.size() > at) {
            if (args.pos[at].kind != K::String)
                error(line, name + " needs a test name");
            test = args.pos[at].s;
            const auto& names = testNames();
            if (std::find(names.begin(), names.end(), test) == names.end())
                error(line, "no test named '" + test + "'");
            rest.pos.assign(args.pos.begin() + std::ptrdiff_t(at) + 1, args.pos.end());
        }
        for (const Value& x : items) {
            const Value subject = byAttr ? attrOf(x, attr) : x;
            const bool pass = test.empty() ? truthy(subject) : callTest(test, subject, rest, line);
            if (pass == keepIf)
                out.push_back(x);
        }
        return Value::makeList(std::move(out));
    }
    if (name == "attr") {
        const Value n = args.get(0, "name");
        if (n.kind != K::String)
            error(line, "attr needs a name");
        return attribute(v, n.s, line);
    }
    if (name == "int") {
        const Value def = args.get(0, "default");
        const Value fallback = def.isUndefined() ? Value::integer(0) : def;
        if (v.kind == K::Int)
            return v;
        if (v.kind == K::Bool)
            return Value::integer(v.b);
        if (v.kind == K::Float)
            return std::isfinite(v.f) && std::fabs(v.f) < 9.2e18 ? Value::integer(int64_t(v.f)) : fallback;
        if (v.kind == K::String) {
            const std::string s = pyStrip(v.s, Value::none(), true, true);
            int64_t x = 0;
            const auto r = std::from_chars(s.data(), s.data() + s.size(), x);
            if (r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty())
                return Value::integer(x);
            char* end = nullptr;
            const double d = std::strtod(s.c_str(), &end);
            if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18)
                return Value::integer(int64_t(d));
        }
        return fallback;
    }
    if (name == "float") {
        const Value def = args.get(0, "default");
        if (v.isNumber())
            return Value::real(v.number());
        if (v.kind == K::String) {
            const std::string s = pyStrip(v.s, Value::none(), true, true);
            char* end = nullptr;
            const double d = std::strtod(s.c_str(), &end);
            if (!s.empty() && end == s.c_str() + s.size())
                return Value::real(d);
        }
        return def.isUndefined() ? Value::real(0) : def;
    }
    if (name == "abs") {
        if (v.kind == K::Float)
            return Value::real(std::fabs(v.f));
        if (v.kind == K::Int || v.kind == K::Bool) {
            const int64_t x = v.kind == K::Bool ? v.b : v.i;
            if (x == std::numeric_limits<int64_t>::min())
                error(line, "integer overflow");
            return Value::integer(x < 0 ? -x : x);
        }
        error(line, std::string("abs needs a number, found a ") + typeName(v));
    }
    if (name == "round") {
        if (!v.isNumber())
            error(line, std::string("round needs a number, found a ") + typeName(v));
        const Value precV = args.get(0, "precision");
        const Value methodV = args.get(1, "method");
        const int prec = precV.kind == K::Int ? int(std::clamp<int64_t>(precV.i, -300, 300)) : 0;
        const std::string method = methodV.kind == K::String ? methodV.s : "common";
        const double scale = std::pow(10.0, prec);
        const double x = v.number() * scale;
        const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
        return Value::real(r / scale);
    }
    if (name == "sum" || name == "max" || name == "min") {
        const Value attr = args.get(name == "sum" ? 0 : 99, "attribute");
        std::vector<Value> items = needList();
        if (attr.kind == K::String)
            for (Value& x : items)
                x = attrOf(x, attr.s);
        if (name == "sum") {
            const Value start = args.get(1, "start");
            Value acc = start.isUndefined() ? Value::integer(0) : start;
            for (const Value& x : items)
                acc = binaryOp("+", acc, x, line);
            return acc;
        }
        if (items.empty())
            return Value::undefined("no " + name + " of an empty sequence");
        Value best = items.front();
        for (const Value& x : items) {
            const int c = order(x, best, line);
            if (name == "max" ? c > 0 : c < 0)
                best = x;
        }
        return best;
    }
    if (name == "wordcount") {
        int64_t n = 0;
        bool in = false;
        for (std::string_view cp : codePoints(toStr(v))) {
            const uint32_t c = decodeOne(cp);
            const bool word = c >= 0x80 || std::isalnum(int(c)) || c == '_';
            if (word && !in)
                ++n;
            in = word;
        }
        return Value::integer(n);
    }
    if (name == "indent") {
        const Value widthV = args.get(0, "width");
        std::string indention =
            widthV.kind == K::String
                ? widthV.s
                : std::string(size_t(std::clamp<int64_t>(widthV.kind == K::Int ? widthV.i : 4, 0, 1024)), ' ');
        const bool first = truthy(args.get(1, "first"));
        const bool blank = truthy(args.get(2, "blank"));
        std::vector<std::string> lines;
        const std::string s = toStr(v);
        size_t pos = 0;
        while (pos < s.size()) {
            const size_t nl = s.find('\n', pos);
            lines.push_back(s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
            if (nl == std::string::npos)
                break;
            pos = nl + 1;
        }
        if (lines.empty())
            lines.emplace_back();
        std::string out = lines[0];
        for (size_t k = 1; k < lines.size(); ++k)
            out += "\n" + ((blank || !lines[k].empty()) ? indention : std::string()) + lines[k];
        if (first)
            out = indention + out;
        checkSize(out.size(), line);
        return Value::string(std::move(out));
    }
    error(line, "no filter named '" + name + "'");
}

Value callGlobalRange(Evaluator& ev, Args& a, int line)
{
    std::vector<int64_t> n;
    for (const Value& v : a.pos) {
        if (v.kind != Value::Kind::Int && v.kind != Value::Kind::Bool)
            ev.error(line, std::string("range() needs integers, found a ") + typeName(v));
        n.push_back(v.kind == Value::Kind::Bool ? v.b : v.i);
    }
    if (n.empty() || n.size() > 3)
        ev.error(line, "range() takes 1 to 3 integers");
    const int64_t start = n.size() == 1 ? 0 : n[0], stop = n.size() == 1 ? n[0] : n[1], step = n.size() == 3 ? n[2] : 1;
    if (step == 0)
        ev.error(line, "range() step cannot be zero");
    ValueList out;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
        out.push_back(Value::integer(k));
        ev.checkItems(out.size(), line);
        if ((step > 0 && k > std::numeric_limits<int64_t>::max() - step) ||
            (step < 0 && k < std::numeric_limits<int64_t>::min() - step))
            break;
    }
    return Value::makeList(std::move(out));
}

} // namespace

Template Template::parse(std::string_view source, std::string label, Options options)
{
    auto program = std::make_shared<Program>();
    program->label = std::move(label);
    Lexer lexer(source, program->label, options);
    Parser parser(lexer.run(), program->label);
    program->body = parser.parseTemplate();
    return Template(std::move(program));
}

std::string Template::render(const nlohmann::ordered_json& variables, const RenderOptions& options) const
{
    Evaluator ev(*m_program, options);
    ev.setGlobal("range", Value::function(callGlobalRange));
    ev.setGlobal("namespace", Value::function([](Evaluator& e, Args& a, int line) {
                     auto d = std::make_shared<ValueDict>();
                     d->isNamespace = true;
                     for (const Value& p : a.pos) {
                         if (p.kind != Value::Kind::Dict || p.dict->isNamespace)
                             e.error(line, "namespace() takes keyword arguments or a dict");
                         d->entries = p.dict->entries;
                     }
                     for (const auto& [k, v] : a.kw)
                         d->set(k, v);
                     e.track(d);
                     return Value::makeDict(std::move(d));
                 }));
    ev.setGlobal("dict", Value::function([](Evaluator& e, Args& a, int line) {
                     auto d = std::make_shared<ValueDict>();
                     for (const auto& [k, v] : a.kw)
                         d->set(k, v);
                     return e.checkDepth(Value::makeDict(std::move(d)), line);
                 }));
    ev.setGlobal("raise_exception", Value::function([](Evaluator& e, Args& a, int line) -> Value {
                     throw RaiseSignal{toStr(a.get(0, "message")), line};
                     (void)e;
                 }));
    ev.setGlobal("strftime_now", Value::function([](Evaluator& e, Args& a, int line) {
                     const Value fmt = a.get(0, "format");
                     if (fmt.kind != Value::Kind::String)
                         e.error(line, "strftime_now() needs a format string");
                     std::tm tm{};
                     if (e.options().now) {
                         const std::time_t t = std::time_t(*e.options().now);
                         gmtime_r(&t, &tm);
                     } else {
                         const std::time_t t = std::time(nullptr);
                         localtime_r(&t, &tm);
                     }
                     char buf[512];
                     const size_t n = fmt.s.size() < 200 ? std::strftime(buf, sizeof buf, fmt.s.c_str(), &tm) : 0;
                     return Value::string(std::string(buf, n));
                 }));
    if (variables.is_object())
        for (auto it = variables.begin(); it != variables.end(); ++it)
            ev.setGlobal(it.key(), fromJson(it.value()));
    try {
        return ev.run();
    } catch (const RaiseSignal& r) {
        throw Error(ErrorKind::InvalidInput, m_program->label + ": line " + std::to_string(r.line) +
                                                 ": the template refused the conversation: " + r.message);
    }
}

} // namespace novaq::jinja
