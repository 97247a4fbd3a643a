// Drives `novaq serve` with the official OpenAI client for Node.js, as an application would.
// Usage: node client.mjs BASE_URL MODEL [API_KEY]; prints one JSON object with what it got
// (tests/test_serve.cpp checks it against the server's own answers) and exits 1 on any error.
import OpenAI from "openai";

const [baseURL, model, apiKey = "unused"] = process.argv.slice(2);
if (!baseURL || !model) {
  console.error("usage: node client.mjs BASE_URL MODEL [API_KEY]");
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });
const messages = [
  { role: "system", content: "Answer in the words of scripture." },
  { role: "user", content: "In the beginning" },
];
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

const chat = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 16 });
out.chat = chat.choices[0].message.content;
out.chatRole = chat.choices[0].message.role;
out.chatFinish = chat.choices[0].finish_reason;
out.chatUsage = chat.usage;

const chatStream = await client.chat.completions.create({
  model, messages, temperature: 0, max_tokens: 16, stream: true, stream_options: { include_usage: true },
});
out.chatStream = "";
out.chatStreamChunks = 0;
for await (const chunk of chatStream) {
  if (chunk.usage) out.chatStreamUsage = chunk.usage;
  for (const choice of chunk.choices) {
    out.chatStream += choice.delta?.content ?? "";
    if (choice.finish_reason) out.chatStreamFinish = choice.finish_reason;
  }
  out.chatStreamChunks += 1;
}

const completion = await client.completions.create({ model, prompt: "In the beginning", temperature: 0, max_tokens: 16 });
out.completion = completion.choices[0].text;
out.completionFinish = completion.choices[0].finish_reason;
out.completionUsage = completion.usage;

const completionStream = await client.completions.create({
  model, prompt: "In the beginning", temperature: 0, max_tokens: 16, stream: true,
});
out.completionStream = "";
for await (const chunk of completionStream) out.completionStream += chunk.choices[0]?.text ?? "";

try {
  await client.chat.completions.create({ model: "no-such-model", messages });
  out.unknownModelStatus = 200;
} catch (e) {
  if (!(e instanceof OpenAI.APIError)) throw e;
  out.unknownModelStatus = e.status;
  out.unknownModelCode = e.code;
}

console.log(JSON.stringify(out));
