#!/usr/bin/env python3
"""gen_corpus.py — writes the seed corpora fuzz/corpus/<target>/ (committed).

Seeds come from the repository's test data (tests/data: golden configs and
checkpoint headers, the real Qwen3 / ModernBERT tokenizers, template cases),
from ../shared when present (Gemma3 tokenizer, Llama 3.2 template, chats), and
from the malformed-file cases of tests/io/test_safetensors.c. Big inputs are
shrunk (a tokenizer keeps every component but a few hundred vocabulary
entries), because a fuzzer mutates small inputs far faster.

    python3 fuzz/gen_corpus.py            # rewrites fuzz/corpus/*/ (not gguf)
Re-running gives the same files. fuzz/corpus/gguf/ belongs to its harness.
"""
import hashlib, json, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
SHARED = os.environ.get("TPIPE_SHARED") or os.path.join(os.path.dirname(ROOT), "shared")
if not os.path.isdir(SHARED) and os.path.isdir("/work/shared"):
    SHARED = "/work/shared"
OUT = os.path.join(ROOT, "fuzz", "corpus")


def rd(*p):
    with open(os.path.join(*p), "rb") as f:
        return f.read()


def shared(*p):
    q = os.path.join(SHARED, *p)
    return q if os.path.exists(q) else None


class Corpus:
    def __init__(self, target):
        self.dir = os.path.join(OUT, target)
        os.makedirs(self.dir, exist_ok=True)
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        self.n = 0

    def add(self, name, data):
        if isinstance(data, str):
            data = data.encode()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
        with open(os.path.join(self.dir, safe), "wb") as f:
            f.write(data)
        self.n += 1


def jl(path, limit=None):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
            if limit and len(out) >= limit:
                break
    return out


# ---- safetensors ----------------------------------------------------------
def st_file(header, data=b"", hlen=None, pad=True):
    h = header.encode() if isinstance(header, str) else header
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def st_from_tensors(tensors, meta=None):
    """tensors: list of (name, dtype, shape); data filled with a byte pattern."""
    size = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
            "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8}
    hdr, off = {}, 0
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape in tensors:
        n = size[dt]
        for d in shape:
            n *= d
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    data = bytes((i * 37 + 11) & 0x7F for i in range(off))  # small finite floats
    return st_file(json.dumps(hdr, separators=(",", ":")), data)


def gen_safetensors():
    c = Corpus("safetensors")
    c.add("one_f32", st_from_tensors([("w", "F32", [2, 3])]))
    c.add("all_dtypes", st_from_tensors(
        [(f"t.{d}", d, [3]) for d in ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8",
                                       "BOOL"]], meta={"format": "pt"}))
    c.add("scalar_and_empty", st_from_tensors([("s", "F32", []), ("e", "F32", [0, 4]),
                                               ("v", "BF16", [5])]))
    c.add("empty_header", st_file("{}"))
    c.add("meta_only", st_file('{"__metadata__":{"format":"pt","x":"y"}}'))
    # real tensor names and dtypes of the golden checkpoints, shapes shrunk
    for case in sorted(os.listdir(os.path.join(DATA, "golden"))):
        p = os.path.join(DATA, "golden", case, "model.safetensors")
        if not os.path.exists(p):
            continue
        raw = rd(p)
        (hl,) = struct.unpack("<Q", raw[:8])
        hdr = json.loads(raw[8:8 + hl])
        ts = [(k, v["dtype"], [2] * min(len(v["shape"]), 2)) for k, v in sorted(hdr.items())
              if k != "__metadata__"][:12]
        c.add("golden_" + case, st_from_tensors(ts, hdr.get("__metadata__")))
    # the malformed cases of tests/io/test_safetensors.c
    bad = {
        "hl_past_end": ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 5000, 4),
        "hl_huge": ("{}", 0x4000000000000000, 0),
        "not_json": ("{this is not json}", None, 0),
        "json_trailing": ("{} x", None, 0),
        "json_cut": ('{"a":{"dtype":"F32","sha', None, 0),
        "meta_bad": ('{"__metadata__":3}', None, 0),
        "overlap": ('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
                    '"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', None, 16),
        "out_of_range": ('{"w":{"dtype":"F32","shape":[25],"data_offsets":[0,100]}}', None, 16),
        "begin_gt_end": ('{"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}', None, 16),
        "three_offsets": ('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', None, 8),
        "neg_offset": ('{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', None, 8),
        "size_mismatch": ('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}', None, 16),
        "bad_dtype": ('{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}', None, 1),
        "fp8": ('{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', None, 1),
        "neg_dim": ('{"w":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}}', None, 16),
        "frac_dim": ('{"w":{"dtype":"F32","shape":[2,2.5],"data_offsets":[0,20]}}', None, 20),
        "huge_dim": ('{"w":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}}', None, 4),
        "overflow": ('{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],'
                     '"data_offsets":[0,0]}}', None, 0),
        "nine_dims": ('{"w":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}',
                      None, 1),
        "bad_utf8_name": (b'{"bad\xff\xfe":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', None,
                          1),
        "dup_name": ('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                     '"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', None, 2),
        "entry_not_obj": ('{"w":5}', None, 0),
    }
    for name, (h, hl, dlen) in bad.items():
        c.add("bad_" + name, st_file(h, bytes(dlen), hlen=hl, pad=hl is None))
    c.add("short", b"\x02\x00\x00")
    return c


# ---- config.json ----------------------------------------------------------
def gen_config():
    c = Corpus("config")
    for case in sorted(os.listdir(os.path.join(DATA, "golden"))):
        p = os.path.join(DATA, "golden", case, "config.json")
        if os.path.exists(p):
            raw = rd(p)
            c.add(case, raw)
            cfg = json.loads(raw)
            # variants: nested text_config (Gemma3ForConditionalGeneration), rope_scaling
            if cfg.get("model_type") == "gemma3_text":
                c.add(case + "_nested", json.dumps({"architectures": [
                    "Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                    "text_config": cfg}))
            if cfg.get("model_type") == "qwen3":
                v = dict(cfg, rope_scaling={"rope_type": "linear", "factor": 2.0},
                         use_sliding_window=True, sliding_window=4, max_window_layers=1)
                c.add(case + "_sliding", json.dumps(v))
            if cfg.get("model_type") == "modernbert":
                v = dict(cfg, id2label={"0": "neg", "1": "pos"}, label2id={"neg": 0, "pos": 1},
                         problem_type="multi_label_classification")
                c.add(case + "_labels", json.dumps(v))
    c.add("empty_obj", "{}")
    c.add("not_obj", "[1,2,3]")
    c.add("unknown_family", '{"model_type":"llama","architectures":["LlamaForCausalLM"]}')
    return c


# ---- tokenizers -----------------------------------------------------------
def shrink_tokenizer(tj, keep=300, keep_merges=200):
    """Every component kept; vocab cut to the first `keep` ids plus the ids of
    added tokens; merges limited to those whose parts and result survive."""
    t = json.loads(tj)
    model = t.get("model", {})
    vocab = model.get("vocab")
    # Gemma3 lists thousands of unused added tokens: keep the first 24 and the
    # ones its templates and post-processor use
    used = {"<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>",
            "<start_of_image>", "<end_of_image>", "<image_soft_token>"}
    t["added_tokens"] = [a for i, a in enumerate(t.get("added_tokens", []))
                         if i < 24 or a["content"] in used]
    added_ids = {a["id"] for a in t.get("added_tokens", [])}
    if isinstance(vocab, dict):
        keep_ids = set(range(keep)) | added_ids
        nv = {k: v for k, v in vocab.items() if v in keep_ids}
        # ids must stay dense enough: renumber in order, remap added tokens
        order = sorted(nv.items(), key=lambda kv: kv[1])
        remap = {old: i for i, (_, old) in enumerate(order)}
        model["vocab"] = {k: remap[v] for k, v in order}
        base = len(order)
        for a in t.get("added_tokens", []):
            if a["id"] in remap:
                a["id"] = remap[a["id"]]
            else:
                a["id"] = base
                base += 1
        merges = model.get("merges") or []
        out = []
        for m in merges:
            a, b = (m.split(" ", 1) if isinstance(m, str) else m) + ([] if not isinstance(m, str) or " " in m else [""])
            if a in model["vocab"] and b in model["vocab"] and (a + b) in model["vocab"]:
                out.append(m)
            if len(out) >= keep_merges:
                break
        model["merges"] = out
        # post-processor special token ids follow the added tokens
        pp = t.get("post_processor") or {}
        procs = pp.get("processors", [pp]) if pp else []
        for p in procs:
            for name, st in (p.get("special_tokens") or {}).items():
                st["ids"] = [next((a["id"] for a in t["added_tokens"] if a["content"] == tok), 0)
                             for tok in st.get("tokens", [])]
            for key in ("sep", "cls"):
                if isinstance(p.get(key), list) and len(p[key]) == 2:
                    tok = p[key][0]
                    p[key][1] = next((a["id"] for a in t["added_tokens"] if a["content"] == tok),
                                     0)
    return t


def small_config(cfg_bytes, keep_template=True):
    cfg = json.loads(cfg_bytes)
    out = {}
    for k, v in cfg.items():
        if k == "added_tokens_decoder":
            out[k] = dict(list(v.items())[:8])
        elif k == "chat_template" and not keep_template:
            continue
        elif isinstance(v, (str, int, float, bool)) or v is None:
            if not isinstance(v, str) or len(v) < 8000:
                out[k] = v
        elif isinstance(v, list) and len(json.dumps(v)) < 2000:
            out[k] = v
        elif isinstance(v, dict) and len(json.dumps(v)) < 2000:
            out[k] = v
    return json.dumps(out, ensure_ascii=False).encode()


def gen_tokenizer_load():
    c = Corpus("tokenizer_load")
    srcs = [("qwen3", os.path.join(DATA, "tokenizers", "qwen3")),
            ("modernbert", os.path.join(DATA, "tokenizers", "modernbert"))]
    g = shared("tokenizers", "gemma3")
    if g:
        srcs.append(("gemma3", g))
    small = {}
    for name, d in srcs:
        t = shrink_tokenizer(rd(d, "tokenizer.json"), keep=260 if name != "gemma3" else 300)
        small[name] = t
        tj = json.dumps(t, ensure_ascii=False).encode()
        c.add(name, tj)
        cfgp = os.path.join(d, "tokenizer_config.json")
        if os.path.exists(cfgp):
            c.add(name + "_with_config", tj + b"\0" + small_config(rd(cfgp)))
    # components moved between tokenizers: other normalizers / pre-tokenizers /
    # decoders / post-processors on each model
    names = sorted(small)
    for a in names:
        for b in names:
            if a == b:
                continue
            for comp in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
                t = json.loads(json.dumps(small[a]))
                t[comp] = small[b].get(comp)
                c.add(f"{a}_{comp}_of_{b}", json.dumps(t, ensure_ascii=False))
    t = json.loads(json.dumps(small["qwen3"]))
    t["model"]["type"] = "WordPiece"
    c.add("unsupported_model", json.dumps(t, ensure_ascii=False))
    t = json.loads(json.dumps(small["modernbert"]))
    t["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True,
                                                  "strip_right": True},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        {"type": "Prepend", "prepend": "\u2581"}]}
    t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "\u2581",
                                      "prepend_scheme": "first", "split": True}]}
    c.add("sequences", json.dumps(t, ensure_ascii=False))
    c.add("minimal", '{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}')
    c.add("minimal_bytefallback", json.dumps({
        "added_tokens": [{"id": 3, "content": "<s>", "special": True, "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False}],
        "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
                  "vocab": dict([("<unk>", 0), ("a", 1), ("b", 2), ("<s>", 3)] +
                                [(f"<0x{i:02X}>", 4 + i) for i in range(256)] + [("ab", 260)]),
                  "merges": [["a", "b"]]},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}))
    return c


def gen_tokenizer():
    c = Corpus("tokenizer")
    texts = []
    for name in ("qwen3", "modernbert", "gemma3"):
        p = os.path.join(DATA, "tokenizers", name, "golden.jsonl")
        if os.path.exists(p):
            for r in jl(p):
                t = r.get("text", "")
                if 0 < len(t.encode()) <= 400 and t not in texts:
                    texts.append(t)
    sel = texts[:: max(1, len(texts) // 60)][:60]
    for i, t in enumerate(sel):
        flags = (i * 29 + 5) & 0x7F
        c.add(f"text{i:02d}", bytes([flags, 8 + i % 40]) + t.encode())
    c.add("bad_utf8", b"\x04\x10" + b"ok \xff\xfe \xc3 \xed\xa0\x80 end")
    c.add("nul", b"\x05\x10" + b"a\x00b")
    c.add("specials", b"\x06\x20" + "<|im_start|>user\nhi<|im_end|> [MASK] [CLS] <bos>".encode())
    c.add("ids", b"\x40\x00" + struct.pack("<8i", 0, 1, 2, 100, 151643, 50280, 262143, -1))
    return c


# ---- chat templates --------------------------------------------------------
def gen_template():
    c = Corpus("template")
    templates = {}
    for name in ("qwen3", "gemma3"):
        p = os.path.join(DATA, "templates", f"{name}_tokenizer_config.json")
        if os.path.exists(p):
            cfg = json.loads(rd(p))
            if isinstance(cfg.get("chat_template"), str):
                templates[name] = (cfg["chat_template"], small_config(rd(p), keep_template=False))
    p = os.path.join(DATA, "templates", "llama3_2_chat_template.jinja")
    if os.path.exists(p):
        templates["llama3_2"] = (rd(p).decode(), None)
    chats = [json.loads(l) for l in open(os.path.join(DATA, "templates", "chats2.jsonl"),
                                         encoding="utf-8") if l.strip()]
    extra = shared("tokenizers", "chats.jsonl")
    if extra:
        chats += [json.loads(l) for l in open(extra, encoding="utf-8") if l.strip()]
    for tname, (src, cfg) in sorted(templates.items()):
        for i, ch in enumerate(chats[:12]):
            obj = {k: v for k, v in ch.items() if k not in ("id", "note", "rendered", "ids")}
            data = src.encode() + b"\0" + json.dumps(obj, ensure_ascii=False).encode()
            if cfg and i % 3 == 0:
                data += b"\0" + cfg
            c.add(f"{tname}_{i:02d}", data)
    msgs = '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},' \
           '{"role":"assistant","content":"Hello"},{"role":"user","content":"Bye"}],' \
           '"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"n":3}'
    small_tpls = {
        "loop": "{% for m in messages %}{{ loop.index }}:{{ m.role|upper }}={{ m['content']|trim }}"
                "{% if not loop.last %}, {% endif %}{% endfor %}",
        "macro": "{% macro r(x, sep='-') %}{{ x ~ sep }}{% endmacro %}{{ r('a') }}{{ r(1, '+') }}",
        "namespace": "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                     "{% endfor %}{{ ns.n }}",
        "filters": "{{ messages|length }}{{ messages[0].content|replace('B','b')|tojson }}"
                   "{{ messages|map(attribute='role')|join(',') }}{{ (tools|first).function.name }}",
        "slices": "{{ messages[1:3] }}{{ 'héllo'[::-1] }}{{ 'abc'[1] }}{{ range(5)|list }}",
        "raise": "{% if messages|length > 2 %}{{ raise_exception('too many') }}{% endif %}",
        "strftime": "{{ strftime_now('%Y-%m-%d %H:%M') }} {{ bos_token }}{{ eos_token }}",
        "dict": "{% set d = {'a': 1, 'b': [1, 2.5, none, true]} %}{{ d|tojson(indent=2) }}"
                "{{ d.items()|list }}{{ d.get('c', 'x') }}",
        "strings": "{{ 'a,b'.split(',') }}{{ '  x '.strip() }}{{ 'X'.lower() }}{{ 'ab'.startswith('a') }}"
                   "{{ '%s-%d'|format('q', 3) }}{{ 'abc' in 'xabcx' }}",
        "generation": "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}",
        "whitespace": "{%- for m in messages -%}\n  {{- m.content -}}\n{%- endfor %}\n{# c #}",
        "numbers": "{{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 1.5 * 2 }} {{ n is divisibleby 3 }}"
                   "{{ -n|abs }} {{ 10 / 4 }} {{ 12345678901234567890 }}",
    }
    for name, src in small_tpls.items():
        c.add("small_" + name, src.encode() + b"\0" + msgs.encode())
    c.add("config_only", b"\0" + msgs.encode() + b"\0" +
          b'{"chat_template":"{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}",'
          b'"bos_token":"<s>","eos_token":{"content":"</s>"}}')
    c.add("bad_syntax", b"{% for m in messages %}{{ m.content }\0" + msgs.encode())
    c.add("no_messages", b"{{ x }}\0{\"x\": 1}")
    return c


# ---- CLI JSON lines --------------------------------------------------------
def gen_jsonl():
    c = Corpus("jsonl")
    c.add("plain", "I love this movie!\nThis was terrible.\n")
    c.add("json_strings", '"a \\"quoted\\" text"\n  "x"  \n"\\u00e9t\\u00e9"\n')
    c.add("objects", '{"text": "Paris is the [MASK] of France.", "id": 7}\n'
          '{"text": "The film was great", "labels": ["positive", "negative"]}\n'
          '{"text": "x", "labels": "sports,politics, food"}\n')
    c.add("generate", '{"text": "Once upon a time", "max_new_tokens": 16, "temperature": 0.7, '
          '"top_k": 40, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.1, "seed": 3, '
          '"stop": ["\\n\\n", "END"]}\n'
          '{"messages": [{"role": "user", "content": "hi"}], "stop": "x", "max_new_tokens": 0}\n')
    c.add("bad_fields", '{"text": 5}\n{"max_new_tokens": -1, "text": "a"}\n'
          '{"text": "a", "temperature": "hot"}\n{"text": "a", "labels": []}\n'
          '{"text": "a", "labels": [""]}\n{"text": "a", "stop": [1]}\n{"text": null}\n'
          '{"text": "a", "top_k": 1e300}\n{"text": "a", "seed": 1.5}\n')
    c.add("crlf_and_empty", "first\r\n\r\n\n{\"text\": \"x\"}\r\nlast")
    c.add("broken_json", '{"text": "unterminated\n{"text": "a"} trailing\n["a", "list"]\n42\n')
    c.add("nul", b'"a\\u0000b"\nraw\x00nul\n{"text": "\\u0000"}\n')
    c.add("bad_utf8", b'caf\xc3\n"\xff\xfe"\n{"text": "\xed\xa0\x80"}\n')
    return c


def main():
    only = set(sys.argv[1:])
    for fn in (gen_safetensors, gen_config, gen_tokenizer_load, gen_tokenizer, gen_template,
               gen_jsonl):
        name = fn.__name__[4:]
        if only and name not in only:
            continue
        c = fn()
        size = sum(os.path.getsize(os.path.join(c.dir, f)) for f in os.listdir(c.dir))
        print(f"{name}: {c.n} seeds, {size} bytes")


if __name__ == "__main__":
    main()
