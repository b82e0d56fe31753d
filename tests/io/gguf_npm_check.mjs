// gguf_npm_check.mjs — reads a GGUF file with the independent reader
// @huggingface/gguf (installed by test_gguf_npm into a cache folder) and
// compares its typed metadata and tensor infos with the expectation the C test
// wrote from the values it gave tpipe's writer.
// usage: node gguf_npm_check.mjs <cache dir> <file.gguf> <expected.json>
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [cache, file, expectedPath] = process.argv.slice(2);
const mod = await import(pathToFileURL(`${cache}/node_modules/@huggingface/gguf/dist/index.mjs`).href);
const r = await mod.gguf(file, { allowLocalFile: true, typedMetadata: true });
const exp = JSON.parse(readFileSync(expectedPath, "utf8"));
let bad = 0;
const fail = (m) => { console.log("MISMATCH " + m); bad++; };
const norm = (v) => (typeof v === "bigint" ? Number(v) : v);
const tm = r.typedMetadata;
if (norm(tm.version.value) !== exp.version) fail(`version ${tm.version.value}`);
if (norm(tm.kv_count.value) !== exp.kv.length) fail(`kv_count ${tm.kv_count.value}`);
if (norm(tm.tensor_count.value) !== exp.tensors.length) fail(`tensor_count ${tm.tensor_count.value}`);
for (const e of exp.kv) {
  const got = tm[e.key];
  if (!got) { fail(`missing key ${e.key}`); continue; }
  if (got.type !== e.type) fail(`${e.key}: type ${got.type} != ${e.type}`);
  if (e.subType !== undefined && got.subType !== e.subType) fail(`${e.key}: subType ${got.subType} != ${e.subType}`);
  const gv = Array.isArray(got.value) ? got.value.map(norm) : norm(got.value);
  if (JSON.stringify(gv) !== JSON.stringify(e.value)) fail(`${e.key}: value ${JSON.stringify(gv)} != ${JSON.stringify(e.value)}`);
}
const infos = r.tensorInfos;
exp.tensors.forEach((t, i) => {
  const g = infos[i];
  if (!g) { fail(`missing tensor ${t.name}`); return; }
  const got = { name: g.name, n_dims: g.n_dims, shape: g.shape.map(norm), dtype: g.dtype, offset: norm(g.offset) };
  if (JSON.stringify(got) !== JSON.stringify(t)) fail(`tensor ${i}: ${JSON.stringify(got)} != ${JSON.stringify(t)}`);
});
if (norm(r.tensorDataOffset) !== exp.data_offset) fail(`tensorDataOffset ${r.tensorDataOffset} != ${exp.data_offset}`);
console.log(bad ? `FAIL ${bad} mismatches` : `PASS @huggingface/gguf read ${exp.kv.length} keys and ${exp.tensors.length} tensors as written`);
process.exit(bad ? 1 : 0);
