// Load test for `loom serve` with autocannon (programmatic): N connections for D seconds on loopback,
// cycling short completions, long completions and chat completions. Prints one JSON line with p50/p99
// latency, status counts, errors and timeouts.
//   CLIENTS_DIR=... BASE=http://127.0.0.1:8080 MODEL=id CONNECTIONS=64 DURATION=30 node serve_load.cjs
const path = require('path');
const autocannon = require(path.join(process.env.CLIENTS_DIR, 'node_modules', 'autocannon'));
const model = process.env.MODEL;
const json = { 'content-type': 'application/json' };
const requests = [
  { method: 'POST', path: '/v1/completions', headers: json,
    body: JSON.stringify({ model, prompt: 'And God said', max_tokens: 4, temperature: 0.8, seed: 1 }) },
  { method: 'POST', path: '/v1/completions', headers: json,
    body: JSON.stringify({ model, prompt: 'In the beginning God created the heaven and the earth.', max_tokens: 48 }) },
  { method: 'POST', path: '/v1/chat/completions', headers: json,
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Tell me of the flood.' }], max_tokens: 16 }) },
  { method: 'GET', path: '/v1/models' },
];
autocannon({ url: process.env.BASE, connections: +(process.env.CONNECTIONS || 64), duration: +(process.env.DURATION || 30),
             timeout: 120, requests }, (err, r) => {
  if (err) { console.error(err); process.exit(1); }
  const codes = {};
  for (const [k, v] of Object.entries(r.statusCodeStats || {})) codes[k] = v.count;
  console.log(JSON.stringify({ requests: r.requests.total, p50_ms: r.latency.p50, p99_ms: r.latency.p99,
                               max_ms: r.latency.max, status: codes, non2xx: r.non2xx, errors: r.errors,
                               timeouts: r.timeouts }));
});
