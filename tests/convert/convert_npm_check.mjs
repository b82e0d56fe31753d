// convert_npm_check.mjs — reads a file written by `tpipe convert` with the
// independent reader @huggingface/gguf and compares what it sees with the
// expectation test_convert_npm wrote (from config.json and the checkpoint's
// tensors, not from tpipe's reader): keys with their GGUF types and values
// (arrays: element type, length, first and last element), and every tensor's
// name, shape (ggml order) and ggml type.
// usage: node convert_npm_check.mjs <cache dir> <file.gguf> <expected.json>
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
if (norm(tm.version.value) !== 3) fail(`version ${tm.version.value}`);
for (const e of exp.kv) {
  const got = tm[e.key];
  if (!got) { fail(`missing key ${e.key}`); continue; }
  if (got.type !== e.type) fail(`${e.key}: type ${got.type} != ${e.type}`);
  if (e.subType !== undefined) {
    if (got.subType !== e.subType) fail(`${e.key}: subType ${got.subType} != ${e.subType}`);
    const v = got.value;
    if (v.length !== e.length) fail(`${e.key}: length ${v.length} != ${e.length}`);
    else if (e.length > 0) {
      const f = norm(v[0]), l = norm(v[v.length - 1]);
      if (JSON.stringify(f) !== JSON.stringify(e.first)) fail(`${e.key}[0]: ${JSON.stringify(f)} != ${JSON.stringify(e.first)}`);
      if (e.last !== undefined && JSON.stringify(l) !== JSON.stringify(e.last)) fail(`${e.key}[-1]: ${JSON.stringify(l)} != ${JSON.stringify(e.last)}`);
    }
  } else {
    let gv = norm(got.value);
    if (typeof e.value === "number" && e.type === 6) gv = Math.fround(gv);
    if (JSON.stringify(gv) !== JSON.stringify(e.value)) fail(`${e.key}: value ${JSON.stringify(gv)} != ${JSON.stringify(e.value)}`);
  }
}
const byName = new Map(r.tensorInfos.map((t) => [t.name, t]));
if (r.tensorInfos.length !== exp.tensors.length) fail(`tensor count ${r.tensorInfos.length} != ${exp.tensors.length}`);
for (const t of exp.tensors) {
  const g = byName.get(t.name);
  if (!g) { fail(`missing tensor ${t.name}`); continue; }
  const shape = g.shape.map(norm);
  if (JSON.stringify(shape) !== JSON.stringify(t.shape)) fail(`${t.name}: shape ${JSON.stringify(shape)} != ${JSON.stringify(t.shape)}`);
  if (g.dtype !== t.dtype) fail(`${t.name}: dtype ${g.dtype} != ${t.dtype}`);
  if (norm(g.offset) % 32 !== 0) fail(`${t.name}: offset ${g.offset} not aligned to 32`);
}
console.log(bad ? `FAIL ${bad} mismatches` : `PASS @huggingface/gguf read ${exp.kv.length} keys and ${exp.tensors.length} tensors as expected`);
process.exit(bad ? 1 : 0);
