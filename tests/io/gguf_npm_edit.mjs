// gguf_npm_edit.mjs — rewrites a GGUF header with the independent writer of
// @huggingface/gguf (buildGgufHeader: its own metadata serializer and alignment
// padding), keeping the tensor infos and data: general.name changed, two keys
// added. test_gguf_npm then reads the result with tpipe's reader.
// usage: node gguf_npm_edit.mjs <cache dir> <in.gguf> <out.gguf>
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const [cache, src, dst] = process.argv.slice(2);
const mod = await import(pathToFileURL(`${cache}/node_modules/@huggingface/gguf/dist/index.mjs`).href);
const r = await mod.gguf(src, { allowLocalFile: true, typedMetadata: true });
const md = r.typedMetadata;
md["general.name"] = { value: "edited by @huggingface/gguf", type: 8 };
md["tpipe.test.u32"] = { value: 7, type: 4 };
md["tpipe.test.strs"] = { value: ["x", "yz", ""], type: 9, subType: 8 };
const bytes = readFileSync(src);
const blob = new Blob([bytes]);
const alignment = Number(md["general.alignment"]?.value ?? 32); // the data section follows it
const header = await mod.buildGgufHeader(blob, md, { littleEndian: true, tensorInfoByteRange: r.tensorInfoByteRange, alignment });
const hb = new Uint8Array(await header.arrayBuffer());
const data = bytes.subarray(Number(r.tensorDataOffset));
writeFileSync(dst, Buffer.concat([Buffer.from(hb), data]));
console.log("header", hb.length, "data", data.length, "old data offset", r.tensorDataOffset);
