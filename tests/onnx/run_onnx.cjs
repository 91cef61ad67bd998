// Runs an ONNX file in onnxruntime-node (CPU) for tests/test_onnx_export.cpp.
//   ORT_DIR=<install folder> node run_onnx.cjs MODEL.onnx JOB.json
// JOB.json: {"runs": [{"inputs": {"NAME": {"type": "float32"|"int64", "dims": [...], "file": "x.bin"}},
//                      "output": "logits", "out_file": "y.bin"}, ...]}; each input file holds the raw
// little-endian values; the output is written the same way (float32) and its dims printed as one JSON line
// per run. Several runs share one session, so dynamic dims are exercised with several shapes. A run with
// "repeat": N is also timed (one warm-up, then the best of N, printed as best_ms; bench/onnx_bench.cpp).
const fs = require('fs');
const path = require('path');
const ort = require(path.join(process.env.ORT_DIR, 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, jobFile] = process.argv.slice(2);
  const job = JSON.parse(fs.readFileSync(jobFile, 'utf8'));
  const session = await ort.InferenceSession.create(model, {intraOpNumThreads: 1, interOpNumThreads: 1});
  for (const run of job.runs) {
    const feeds = {};
    for (const [name, spec] of Object.entries(run.inputs)) {
      const buf = fs.readFileSync(spec.file);
      const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
      const data = spec.type === 'int64' ? new BigInt64Array(bytes) : new Float32Array(bytes);
      feeds[name] = new ort.Tensor(spec.type, data, spec.dims);
    }
    const out = (await session.run(feeds))[run.output];
    let best_ms = null;
    for (let i = 0; i < (run.repeat || 0); ++i) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      best_ms = best_ms === null ? ms : Math.min(best_ms, ms);
    }
    fs.writeFileSync(run.out_file, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
    console.log(JSON.stringify({output: run.output, dims: out.dims, type: out.type, best_ms}));
  }
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
