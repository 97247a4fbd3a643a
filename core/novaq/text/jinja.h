#pragma once
// A Jinja subset for chat templates: what the templates models ship with actually use.
//
// Written by hand because Debian 12 packages no C++ Jinja library; it follows the Jinja
// documentation (template designer docs) and the semantics transformers renders chat
// templates with: an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, the
// loopcontrols extension, Python's str methods and json.dumps-style tojson.
//
// Supported: {{ }}, {% if/elif/else %}, {% for %} (tuple targets, `if` filter, else, loop.*,
// break/continue), {% set %} (names, tuples, ns.attr, block set), {% macro %}, {% with %},
// {% filter %}, {% raw %}, {% generation %}, comments, whitespace control (-, +, trim_blocks,
// lstrip_blocks), the usual expressions (literals, lists, dicts, tuples, attribute/item
// access, slices, arithmetic, ~, comparisons, in, and/or/not, conditional expressions,
// '%s' % x), filters, tests, str/dict methods (str.format included), and the globals
// namespace(), range(), dict(), raise_exception() and strftime_now(). Not supported:
// {% call %}, {% include/import/extends/block %}, recursive loops, %(name)s formatting.
// Rendering is bounded (output size, steps, call depth, nesting) so a hostile template
// cannot run away.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace novaq::jinja {

struct Options {
    bool trimBlocks = true;   // drop the first newline after a block tag (HF sets it)
    bool lstripBlocks = true; // strip spaces before a block tag at the start of a line (HF sets it)
};

struct Limits {
    size_t maxOutputBytes = size_t{16} << 20; // rendered text (and any one string built)
    uint64_t maxSteps = 20'000'000;           // statements, expressions and loop iterations
    int maxCallDepth = 100;                   // nested macro calls
    size_t maxItems = size_t{1} << 20;        // elements of one list built by the template
};

struct RenderOptions {
    Limits limits;
    // Seconds since the epoch for strftime_now (rendered in UTC); the local clock when unset.
    std::optional<int64_t> now;
};

class Template {
public:
    // Throws Error(InvalidInput) "<label>: line N: ..." on a syntax error.
    static Template parse(std::string_view source, std::string label, Options options = {});

    // `variables` is a JSON object of the template's globals. Throws Error(InvalidInput) on a
    // runtime error or raise_exception(), naming the label and line.
    std::string render(const nlohmann::ordered_json& variables, const RenderOptions& options = {}) const;

    struct Program;

private:
    explicit Template(std::shared_ptr<const Program> program) : m_program(std::move(program)) {}
    std::shared_ptr<const Program> m_program;
};

} // namespace novaq::jinja
