// t/qdrant_js.cjs: Qdrant's official JavaScript REST client
// (@qdrant/js-client-rest, installed by t/qdrant_js.sh) against shoald:
// the calls of its README and documentation, checked as a Qdrant user
// would.  Prints TAP.  Usage: node t/qdrant_js.cjs URL [CONSISTENCY]
'use strict';
const { QdrantClient } = require('@qdrant/js-client-rest');

const url = process.argv[2];
const consistency = process.argv[3] || undefined; // shoal's levels pass as Qdrant's param
const client = new QdrantClient({ url, checkCompatibility: true });
const DIM = 16, N = 10000, BATCH = 500, COLL = 'jsdocs';
let n = 0, failed = 0;

function ok(cond, what) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${what}`);
}
function diag(s) { console.log('# ' + String(s).replace(/\n/g, '\n# ')); }
// a deterministic generator (xorshift), so that runs compare
let seed = 42;
function rnd() { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return ((seed >>> 0) % 1e6) / 1e6; }
function vec() { return Array.from({ length: DIM }, () => rnd() - 0.5); }
function uuidOf(i) { const h = i.toString(16).padStart(12, '0'); return `00000000-0000-4000-8000-${h}`; }
function idOf(i) { return i % 10 === 0 ? uuidOf(i) : i; }
const colors = ['red', 'green', 'blue', 'black'];
function payloadOf(i) {
  return { i, color: colors[i % 4], price: i % 100, tags: [`t${i % 3}`, `u${i % 5}`],
           meta: { year: 2000 + (i % 20), shop: { city: i % 2 ? 'Paris' : 'Oslo' } } };
}
async function refused(p, want, what) {
  try { await p; ok(false, what + ': refused'); }
  catch (e) {
    const msg = e && e.data && e.data.status ? e.data.status.error : String(e);
    ok(e.status >= 400 && e.status < 500, `${what}: refused with HTTP ${e.status}`);
    ok(typeof msg === 'string' && msg.includes(want), `  names it: ${msg}`);
  }
}
function dot(a, b) { let s = 0; for (let k = 0; k < a.length; k++) s += a[k] * b[k]; return s; }

async function main() {
  const info = await client.versionInfo();
  ok(typeof info.version === 'string', `versionInfo: ${info.version}`);
  if (await client.collectionExists(COLL).then((r) => r.exists)) await client.deleteCollection(COLL);
  ok(await client.createCollection(COLL, { vectors: { size: DIM, distance: 'Cosine' } }),
     'createCollection Cosine');
  ok((await client.collectionExists(COLL)).exists === true, 'collectionExists');
  const vectors = [];
  let t0 = Date.now(), last;
  for (let b = 0; b < N; b += BATCH) {
    const points = [];
    for (let i = b; i < b + BATCH; i++) {
      vectors[i] = vec();
      points.push({ id: idOf(i), vector: vectors[i], payload: payloadOf(i) });
    }
    last = await client.upsert(COLL, { wait: true, points });
  }
  ok(last.status === 'completed', `upsert ${N} points in batches of ${BATCH} (${Date.now() - t0} ms)`);
  const ci = await client.getCollection(COLL);
  ok(ci.points_count === N, `getCollection: points_count ${ci.points_count}`);
  ok(ci.config.params.vectors.size === DIM && ci.config.params.vectors.distance === 'Cosine',
     'getCollection: vectors size and distance');
  ok((await client.getCollections()).collections.some((c) => c.name === COLL), 'getCollections');

  const red = { must: [{ key: 'color', match: { value: 'red' } }] };
  ok((await client.count(COLL, { filter: red, exact: true })).count === N / 4, 'count with a filter');
  const q = vectors[7];
  let res = await client.search(COLL, { vector: q, limit: 10, filter: red, with_payload: true, consistency });
  ok(res.length === 10 && res.every((p) => p.payload.color === 'red'), 'search with a filter: 10 red points');
  ok(res.every((p, k) => k === 0 || res[k - 1].score >= p.score), '  scores from best down');
  const f2 = { must: [{ key: 'meta.shop.city', match: { value: 'Paris' } },
                      { key: 'price', range: { gte: 10, lt: 50 } }],
               must_not: [{ key: 'tags', match: { any: ['t0'] } }],
               should: [{ key: 'color', match: { except: ['black'] } }] };
  res = await client.search(COLL, { vector: q, limit: 20, filter: f2, with_payload: true, consistency });
  ok(res.length === 20 && res.every((p) => p.payload.meta.shop.city === 'Paris' && p.payload.price >= 10 &&
     p.payload.price < 50 && !p.payload.tags.includes('t0') && p.payload.color !== 'black'),
     'search with must, must_not, should, nested keys, range, any, except');
  res = await client.search(COLL, { vector: vectors[10], limit: 1, consistency });
  ok(res[0].id === uuidOf(10) && Math.abs(res[0].score - 1) < 1e-4, 'search: a UUID point finds itself, score 1');

  // recall against exact search
  let hit = 0, total = 0;
  for (let k = 0; k < 20; k++) {
    const v = vectors[(k * 499) % N];
    const a = await client.search(COLL, { vector: v, limit: 10, consistency });
    const e = await client.search(COLL, { vector: v, limit: 10, params: { exact: true }, consistency });
    const want = new Set(e.map((p) => String(p.id)));
    hit += a.filter((p) => want.has(String(p.id))).length;
    total += 10;
  }
  ok(hit / total >= 0.9, `recall@10 against exact search: ${(hit / total).toFixed(3)}`);
  const ex = await client.search(COLL, { vector: q, limit: 3, params: { exact: true }, with_vector: true, consistency });
  const norm = Math.sqrt(dot(q, q));
  ok(Math.abs(ex[0].score - dot(q, ex[0].vector) / norm) < 1e-4, '  Cosine score = cosine similarity');

  const qr = await client.query(COLL, { query: q, limit: 5, filter: red, with_payload: ['i'], consistency });
  ok(qr.points.length === 5 && Object.keys(qr.points[0].payload).join() === 'i',
     'query: 5 points, payload cut to the keys asked');
  const batch = await client.searchBatch(COLL, { searches: [{ vector: q, limit: 2 }, { vector: vectors[1], limit: 3 }], consistency });
  ok(batch.length === 2 && batch[1].length === 3, 'searchBatch');
  const qb = await client.queryBatch(COLL, { searches: [{ query: q, limit: 2 }, { query: { nearest: vectors[1] }, limit: 1 }], consistency });
  ok(qb.length === 2 && qb[1].points.length === 1, 'queryBatch');

  // scroll through all points
  const seen = new Set();
  let offset, pages = 0;
  do {
    const page = await client.scroll(COLL, { limit: 1000, offset, with_payload: false, consistency });
    page.points.forEach((p) => seen.add(String(p.id)));
    offset = page.next_page_offset;
    pages++;
  } while (offset !== null && offset !== undefined && pages < 100);
  ok(seen.size === N && seen.has(uuidOf(20)) && seen.has('21'), `scroll: all ${seen.size} points in ${pages} pages, ids as given`);

  // get by ids
  const got = await client.retrieve(COLL, { ids: [uuidOf(30), 31, 999999], with_payload: true, with_vector: true, consistency });
  ok(got.length === 2 && got[0].id === uuidOf(30) && got[0].payload.i === 30 && got[1].payload.i === 31,
     'retrieve: a UUID and an integer id, an absent one skipped');
  ok(got[0].vector.length === DIM, '  with the vector');

  // payloads
  await client.setPayload(COLL, { payload: { sale: true }, points: [31, uuidOf(30)], wait: true });
  await client.setPayload(COLL, { payload: { flag: 1 }, filter: { must: [{ key: 'i', range: { lt: 5 } }] }, wait: true });
  let g = await client.retrieve(COLL, { ids: [31, 2], consistency });
  ok(g[0].payload.sale === true && g[0].payload.color === colors[31 % 4] && g[1].payload.flag === 1,
     'setPayload by ids and by filter: merged');
  await client.overwritePayload(COLL, { payload: { only: 'this' }, points: [31], wait: true });
  g = await client.retrieve(COLL, { ids: [31], consistency });
  ok(JSON.stringify(g[0].payload) === '{"only":"this"}', 'overwritePayload');
  await client.deletePayload(COLL, { keys: ['sale'], points: [uuidOf(30)], wait: true });
  g = await client.retrieve(COLL, { ids: [uuidOf(30)], consistency });
  ok(g.length === 1 && g[0].payload.sale === undefined && g[0].payload.i === 30, 'deletePayload');
  await client.clearPayload(COLL, { points: [uuidOf(30)], wait: true });
  g = await client.retrieve(COLL, { ids: [uuidOf(30)], consistency });
  ok(g.length === 1 && Object.keys(g[0].payload || {}).length === 0, 'clearPayload: a UUID point keeps its UUID');

  // delete by filter and by ids
  const black = { must: [{ key: 'color', match: { value: 'black' } }] };
  const nblack = (await client.count(COLL, { filter: black })).count;
  ok(nblack === N / 4 - 1, `${nblack} black points (point 31's payload was overwritten)`);
  const d = await client.delete(COLL, { filter: black, wait: true });
  ok(d.status === 'completed', 'delete by filter');
  const left = (await client.count(COLL, {})).count;
  ok((await client.count(COLL, { filter: black })).count === 0 && left === N - nblack,
     `  ${left} left, none black`);
  await client.delete(COLL, { points: [1, uuidOf(40)], wait: true });
  ok((await client.count(COLL, {})).count === left - 2, 'delete by ids');
  ok((await client.retrieve(COLL, { ids: [1, uuidOf(40)], consistency })).length === 0, '  gone');

  // what shoal does not do: a clear error naming it
  await refused(client.createCollection('sparse', { vectors: { size: 4, distance: 'Dot' }, sparse_vectors: { s: {} } }),
                'sparse vectors', 'sparse vectors');
  await refused(client.createCollection('man', { vectors: { size: 4, distance: 'Manhattan' } }), 'Manhattan', 'Manhattan distance');
  await refused(client.recommend(COLL, { positive: [2], limit: 3 }), 'recommendations', 'recommend');
  await refused(client.query(COLL, { prefetch: [{ query: q, limit: 10 }], query: { fusion: 'rrf' } }), 'prefetch', 'hybrid query (prefetch)');
  await refused(client.search(COLL, { vector: q, filter: { must: [{ key: 'loc', geo_radius: { center: { lon: 0, lat: 0 }, radius: 1 } }] } }),
                'geo conditions', 'geo filter');
  await refused(client.createSnapshot(COLL), 'snapshots', 'snapshots');
  await refused(client.search(COLL, { vector: [1, 2], limit: 1 }), 'dimension', 'a vector of the wrong size');

  ok(await client.deleteCollection(COLL), 'deleteCollection');
  ok((await client.collectionExists(COLL)).exists === false, '  gone');
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  ok(false, 'the client threw: ' + (e && e.stack ? e.stack : e) + (e && e.data ? ' ' + JSON.stringify(e.data) : ''));
  console.log(`1..${n}`);
  process.exit(1);
});
