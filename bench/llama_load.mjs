// llama.cpp's side of bench/load_bench.cpp: the wall time of loading one GGUF through node-llama-cpp (its
// prebuilt CPU llama.cpp), for docs/performance.md's loading table. Peak RSS comes from /usr/bin/time -v around
// this process (it includes node itself, ~50 MB: measure `node -e 0` the same way and subtract).
//   LLAMA_NODE_DIR=$(scripts/install_llama_cpp_node.sh) /usr/bin/time -v node bench/llama_load.mjs MODEL.gguf
// Prints one JSON line: {"bench": "llama_load", "file": ..., "seconds": ...}.
import path from "node:path";
import {pathToFileURL} from "node:url";

const dir = process.env.LLAMA_NODE_DIR;
const modelPath = process.argv[2];
if (!dir || !modelPath) {
  console.error("usage: LLAMA_NODE_DIR=DIR node llama_load.mjs MODEL.gguf");
  process.exit(2);
}
const {getLlama, LlamaLogLevel} =
    await import(pathToFileURL(path.join(dir, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
// Only the prebuilt CPU binary: never a download or a source build. The library is started before the clock.
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false});
const start = performance.now();
const model = await llama.loadModel({modelPath});
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({bench: "llama_load", file: modelPath, seconds}));
await model.dispose();
