// rest_load.cjs: REST load for doc/benchmarks.md ("Qdrant dialect"): a
// collection of N random points (dimension D, Cosine) loaded in batches,
// then R searches for random vectors at concurrency C, over keep-alive
// HTTP/1.1 connections.  Prints upsert points/s and search QPS with latency
// percentiles.  Node's own http module: no packages.
//
//   node rest_load.cjs URL qdrant|shoal [N D R C BATCH]
//
// "qdrant": the REST API since issue 16; "shoal": the shapes before it
// (dim/metric, points with k), for a build of the earlier tree.
'use strict';
const http = require('http');

const [url, dialect] = [process.argv[2], process.argv[3] || 'qdrant'];
const [N, D, R, C, BATCH] = process.argv.slice(4).map(Number);
const n = N || 20000, d = D || 64, r = R || 20000, c = C || 8, batch = BATCH || 500;
const agent = new http.Agent({ keepAlive: true, maxSockets: c });
const u = new URL(url);
let seed = 7;
function rnd() { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return ((seed >>> 0) % 1e6) / 1e6 - 0.5; }
function vec() { return Array.from({ length: d }, rnd); }

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : '';
    const req = http.request({ host: u.hostname, port: u.port, method, path, agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
    (res) => {
      const chunks = [];
      res.on('data', (x) => chunks.push(x));
      res.on('end', () => res.statusCode === 200 ? resolve(Buffer.concat(chunks))
        : reject(new Error(`${method} ${path}: ${res.statusCode} ${Buffer.concat(chunks)}`)));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function main() {
  const q = dialect === 'qdrant';
  await call('DELETE', '/collections/bench').catch(() => {});
  await call('PUT', '/collections/bench', q ? { vectors: { size: d, distance: 'Cosine' } }
    : { dim: d, metric: 'cosine' });
  let t0 = process.hrtime.bigint();
  const path = q ? '/collections/bench/points?wait=false' : '/collections/bench/points';
  let next = 0;
  async function loader() {
    while (next < n) {
      const from = next; next += batch;
      const points = [];
      for (let i = from; i < Math.min(from + batch, n); i++)
        points.push({ id: i, vector: vec(), payload: { i, tag: `t${i % 10}` } });
      await call('PUT', path, { points });
    }
  }
  await Promise.all(Array.from({ length: Math.min(c, 2) }, loader));
  const upsertS = Number(process.hrtime.bigint() - t0) / 1e9;
  // let the indexers catch up before timing searches
  for (;;) {
    const m = (await call('GET', '/metrics')).toString();
    const ix = /shoal_collection_points\{collection="bench"\} (\d+)/.exec(m);
    if (ix && Number(ix[1]) >= n) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  await new Promise((res) => setTimeout(res, 3000));
  const lat = [];
  let done = 0;
  const body = () => (q ? { vector: vec(), limit: 10 } : { vector: vec(), k: 10 });
  async function searcher() {
    while (done < r) {
      done++;
      const b = body(), s = process.hrtime.bigint();
      await call('POST', '/collections/bench/points/search', b);
      lat.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
  }
  for (let i = 0; i < 500; i++) await call('POST', '/collections/bench/points/search', body());
  t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: c }, searcher));
  const searchS = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  const p = (x) => lat[Math.min(lat.length - 1, Math.floor(x * lat.length))].toFixed(3);
  console.log(JSON.stringify({ dialect, points: n, dim: d, batch, upsert_points_per_s: Math.round(n / upsertS),
    searches: lat.length, concurrency: c, qps: Math.round(lat.length / searchS),
    p50_ms: p(0.5), p90_ms: p(0.9), p99_ms: p(0.99), mean_ms: (lat.reduce((a, b) => a + b, 0) / lat.length).toFixed(3) }));
  agent.destroy();
}
main().catch((e) => { console.error(e.message); process.exit(1); });
