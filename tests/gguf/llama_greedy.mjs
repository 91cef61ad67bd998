// Greedy continuation of a GGUF model by llama.cpp (node-llama-cpp's prebuilt CPU binaries), for
// tests/test_cli_gguf.cpp and bench/gguf_vs_llama.sh:
//   LLAMA_NODE_DIR=$(scripts/install_llama_cpp_node.sh) node llama_greedy.mjs MODEL.gguf TOKEN_IDS N [PROMPT_TEXT] [THREADS]
// TOKEN_IDS is a comma-separated prompt (loom's tokenization, so both runtimes see the same ids); prints one JSON
// line: {"tokens": [N greedy ids], "tokenized": llama.cpp's own tokenization of PROMPT_TEXT, "decode_tps": ...}.
import path from "node:path";
import {pathToFileURL} from "node:url";

// The package lives in the test-only folder the install script prints, not next to this file.
const dir = process.env.LLAMA_NODE_DIR;
if (!dir) {
  console.error("set LLAMA_NODE_DIR to the folder scripts/install_llama_cpp_node.sh prints");
  process.exit(2);
}
const {getLlama, LlamaLogLevel} =
    await import(pathToFileURL(path.join(dir, "node_modules", "node-llama-cpp", "dist", "index.js")).href);

const [modelPath, idsArg, nArg, promptText = "", threadsArg = "1"] = process.argv.slice(2);
if (!modelPath || !idsArg || !nArg) {
  console.error("usage: node llama_greedy.mjs MODEL.gguf TOKEN_IDS N [PROMPT_TEXT] [THREADS]");
  process.exit(2);
}
const prompt = idsArg.split(",").map(Number);
const n = Number(nArg);
// build: "never" and gpu: false: only the prebuilt CPU binary from npm, never a download or a source build.
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: Math.max(64, prompt.length + n + 8), threads: Number(threadsArg),
                                           batchSize: Math.max(prompt.length, 8)});
const sequence = context.getSequence();
const tokens = [];
let first = 0;
const start = performance.now();
for await (const t of sequence.evaluate(prompt, {temperature: 0})) {
  if (tokens.length === 0) first = performance.now();
  tokens.push(t);
  if (tokens.length >= n) break;
}
const end = performance.now();
const decode_tps = tokens.length > 1 ? (tokens.length - 1) / ((end - first) / 1000) : 0;
const tokenized = promptText ? Array.from(model.tokenize(promptText)) : [];
console.log(JSON.stringify({tokens, tokenized, decode_tps, prefill_ms: first - start}));
await context.dispose();
await model.dispose();
