#!/usr/bin/python3
"""make_seeds.py — writes the hand-made seed inputs of tests/fuzz/corpus/<target>/ (run from anywhere).

Names say what the regression test (tests/test_fuzz_regress.cpp) demands: ok-* must be accepted, bad-* must be
refused with an exception; other files (fuzzer finds) may go either way. The files are committed; rerun this
only to change them. The 100 MB claimed header stays a 32-byte file: only its length field claims 100 MB.
Left out: seeds for shapes of real checkpoints beyond the few key names here (the dictionary adds those).
"""
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- safetensors ----------------------------------------------------------------------------------------------
def st(header, data=b"", pad=True, raw=False):
    """A safetensors file: header (dict or raw bytes/str) with its u64 length, then the data region."""
    h = header if raw else json.dumps(header, separators=(",", ":"))
    if isinstance(h, str):
        h = h.encode("utf-8", "surrogatepass")
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


S = "safetensors"
f32x2 = struct.pack("<2f", 1.5, -2.0)
put(S, "ok-two-adjacent", st({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 8, 16)}, f32x2 * 2))
put(S, "ok-metadata-strings", st({"__metadata__": {"format": "pt", "": "", "k\u00e9y": "v\u2603"},
                                  "w": t("F16", [1, 2], 0, 4)}, b"\x00\x3c\x00\xc0"))
put(S, "ok-zero-size-tensors", st({"e": t("F32", [0, 5], 0, 0), "f": t("BF16", [3, 0, 2], 0, 0),
                                   "g": t("F32", [1], 0, 4)}, b"\x00" * 4))
put(S, "ok-zero-dim-with-huge-dims", st({"z": t("F32", [0, 9223372036854775807, 9223372036854775807], 0, 0)}))
put(S, "ok-rank5-listed-not-usable", st({"r5": t("F32", [1, 1, 1, 1, 2], 0, 8)}, f32x2))
put(S, "ok-rank0-scalar", st({"s": t("F32", [], 0, 4)}, f32x2[:4]))
put(S, "ok-i64-and-u8", st({"ids": t("I64", [2], 0, 16), "u": t("U8", [3], 16, 19)}, b"\x01" * 19))
put(S, "ok-f4-even-count", st({"q": t("F4", [4], 0, 2)}, b"\x12\x34"))
put(S, "ok-unaligned-f32", st({"pad": t("U8", [1], 0, 1), "x": t("F32", [2], 1, 9)}, b"\x00" + f32x2))
put(S, "ok-unpadded-header", st({"x": t("F32", [1], 0, 4)}, f32x2[:4], pad=False))
put(S, "ok-extra-entry-keys", st({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": [1, {}]}},
                                 f32x2[:4]))
put(S, "ok-escaped-name", st('{"a\\u00e9\\ud83d\\ude00\\n":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
                             f32x2[:4], raw=True))
put(S, "ok-trailing-data", st({"x": t("F32", [1], 0, 4)}, f32x2 + b"junk"))
put(S, "ok-sd1-inpaint-like", st({"model.diffusion_model.input_blocks.0.0.weight": t("F16", [2, 9, 1, 1], 0, 36),
                                  "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight":
                                      t("F16", [1, 2], 36, 40)}, b"\x00" * 40))
put(S, "ok-taesd-like-1d", st({"1.weight": t("F32", [1], 0, 4), "0.weight": t("F32", [], 4, 8)}, f32x2))

put(S, "bad-empty-file", b"")
put(S, "bad-seven-bytes", b"\x02\x00\x00\x00\x00\x00\x00")
put(S, "bad-header-len-zero", struct.pack("<Q", 0))
put(S, "bad-header-past-end", struct.pack("<Q", 1000) + b'{"a":1}')
put(S, "bad-header-claims-100MB", struct.pack("<Q", 100 << 20) + b"{}" + b" " * 22)
put(S, "bad-header-claims-100MB-plus-1", struct.pack("<Q", (100 << 20) + 1) + b"{}" + b" " * 22)
put(S, "bad-header-len-2^64-1", struct.pack("<Q", 2**64 - 1) + b"{}      ")
put(S, "bad-header-len-2^63", struct.pack("<Q", 2**63) + b"{}      ")
put(S, "bad-header-not-object", st([1, 2]))
put(S, "bad-header-nul-padding", st({"x": t("F32", [1], 0, 4)}, pad=False) .replace(b"}}", b"}}\x00\x00", 1))
put(S, "bad-header-trailing-garbage", st('{} x', raw=True))
put(S, "bad-offset-2^63", st({"x": t("F32", [1], 2**63, 2**63 + 4)}, f32x2))
put(S, "bad-offset-2^64-1", st({"x": t("F32", [0], 2**64 - 1, 2**64 - 1)}, f32x2))
put(S, "bad-offset-2^64", st('{"x":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551616,4]}}', raw=True))
put(S, "bad-offset-end-wraps", st({"x": t("F32", [1], 2**64 - 4, 0)}, f32x2))
put(S, "bad-offset-begin-after-end", st({"x": t("F32", [1], 4, 0)}, f32x2))
put(S, "bad-offset-negative", st({"x": t("F32", [1], -4, 0)}, f32x2))
put(S, "bad-offset-float", st('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0.0,4]}}', f32x2, raw=True))
put(S, "bad-offset-exponent", st('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4e0]}}', f32x2, raw=True))
put(S, "bad-offset-three-entries", st({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}, f32x2))
put(S, "bad-offset-strings", st({"x": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}, f32x2))
put(S, "bad-overlap", st({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 4, 12)}, f32x2 * 2))
put(S, "bad-overlap-same-span", st({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 0, 8)}, f32x2))
put(S, "bad-overlap-contained", st({"a": t("F32", [4], 0, 16), "b": t("F32", [1], 4, 8)}, f32x2 * 2))
put(S, "bad-overlap-zero-size-inside", st({"a": t("F32", [2], 0, 8), "b": t("F32", [0], 4, 4)}, f32x2))
put(S, "bad-shape-overflows-64-bits", st({"x": t("F32", [4294967296, 4294967296, 2], 0, 8)}, f32x2))
put(S, "bad-shape-overflow-to-span", st({"x": t("F32", [2**62, 2], 0, 8)}, f32x2))  # 2^62*2*32 bits wraps to 0
put(S, "bad-shape-product-wraps-to-8", st({"x": t("U8", [2**32 + 1, 2**32 - 1, 8], 0, 8)}, f32x2))
put(S, "bad-shape-2^63", st({"x": t("F32", [2**63], 0, 8)}, f32x2))
put(S, "bad-shape-negative-dim", st({"x": t("F32", [-1, 2], 0, 8)}, f32x2))
put(S, "bad-shape-float-dim", st('{"x":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', f32x2, raw=True))
put(S, "bad-shape-not-array", st({"x": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}, f32x2))
put(S, "bad-shape-mismatch-span", st({"x": t("F32", [3], 0, 8)}, f32x2))
put(S, "bad-dtype-unknown", st({"x": t("F33", [2], 0, 8)}, f32x2))
put(S, "bad-dtype-lowercase", st({"x": t("f32", [2], 0, 8)}, f32x2))
put(S, "bad-dtype-empty", st({"x": t("", [2], 0, 8)}, f32x2))
put(S, "bad-dtype-with-nul", st('{"x":{"dtype":"F32\\u0000","shape":[2],"data_offsets":[0,8]}}', f32x2, raw=True))
put(S, "bad-dtype-number", st({"x": {"dtype": 32, "shape": [2], "data_offsets": [0, 8]}}, f32x2))
put(S, "bad-f4-odd-count", st({"q": t("F4", [3], 0, 2)}, b"\x12\x34"))
put(S, "bad-metadata-number", st({"__metadata__": {"a": 1}}))
put(S, "bad-metadata-nested", st({"__metadata__": {"a": {"b": "c"}}}))
put(S, "bad-metadata-array", st({"__metadata__": ["a", "b"]}))
put(S, "bad-metadata-null", st({"__metadata__": {"a": None}}))
put(S, "bad-metadata-twice", st('{"__metadata__":{},"__metadata__":{}}', raw=True))
put(S, "bad-duplicate-names", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                 '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32x2, raw=True))
put(S, "bad-nul-in-name", st('{"a\\u0000b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32x2, raw=True))
put(S, "bad-raw-nul-in-name", st(b'{"a\x00b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32x2, raw=True))
put(S, "bad-invalid-utf8-name", st(b'{"\xc3\x28":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32x2, raw=True))
put(S, "bad-lone-surrogate-name", st('{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32x2, raw=True))
put(S, "bad-entry-not-object", st({"x": [1, 2]}))
put(S, "bad-entry-missing-dtype", st({"x": {"shape": [1], "data_offsets": [0, 4]}}, f32x2))
put(S, "bad-truncated-data", st({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 8, 16)}, f32x2 + f32x2[:5]))
put(S, "bad-truncated-header", st({"x": t("F32", [1], 0, 4)})[:20])
put(S, "bad-deep-nesting", st("[" * 10000 + "]" * 10000, raw=True))
put(S, "bad-deep-nesting-in-entry", st('{"x":' + '{"a":' * 70 + "1" + "}" * 70 + "}", raw=True))

# ---- json ---------------------------------------------------------------------------------------------------------
J = "json"
put(J, "ok-every-kind", '{"a":[1,-0.5e+3,true,false,null,"s\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/\\b\\f\\r\\t"],"b":{}}')
put(J, "ok-whitespace", ' \t\r\n[ 1 , { "k" : [ ] } ] \n')
put(J, "ok-big-integers", "[18446744073709551615,18446744073709551616,9223372036854775808,-9223372036854775809]")
put(J, "ok-out-of-range-numbers", "[1e400,-1e400,1e-400,123456789012345678901234567890e-999999999999]")
put(J, "ok-depth-64", "[" * 64 + "]" * 64)
put(J, "ok-utf8-raw", '"\u00e9\u2603\U0001F600 \u0000"'.replace("\u0000", "\\u0000"))
put(J, "ok-empty-key", '{"":"","\\u0000":0}')
put(J, "ok-scalar", "  0  ")
put(J, "bad-depth-65", "[" * 65 + "]" * 65)
put(J, "bad-deep-10000", "[" * 10000)
put(J, "bad-deep-objects", '{"a":' * 1000)
put(J, "bad-duplicate-keys", '{"a":1,"b":2,"a":3}')
put(J, "bad-duplicate-escaped-keys", '{"a":1,"\\u0061":2}')
put(J, "bad-trailing-comma", "[1,2,]")
put(J, "bad-comment", "[1 /* c */]")
put(J, "bad-nan", "[NaN]")
put(J, "bad-infinity", "[-Infinity]")
put(J, "bad-leading-zero", "[01]")
put(J, "bad-plus-sign", "[+1]")
put(J, "bad-dot-only", "[1.]")
put(J, "bad-exponent-only", "[1e]")
put(J, "bad-lone-high-surrogate", '"\\ud83d"')
put(J, "bad-lone-low-surrogate", '"\\ude00"')
put(J, "bad-high-then-high", '"\\ud83d\\ud83d"')
put(J, "bad-short-escape", '"\\u12"')
put(J, "bad-unknown-escape", '"\\x41"')
put(J, "bad-raw-control", '"a\x01b"')
put(J, "bad-raw-nul", '"a\x00b"')
put(J, "bad-overlong-utf8", b'"\xc0\xaf"')
put(J, "bad-utf8-surrogate", b'"\xed\xa0\x80"')
put(J, "bad-utf8-above-10ffff", b'"\xf4\x90\x80\x80"')
put(J, "bad-utf8-truncated", b'"\xe2\x98"')
put(J, "bad-bom", b"\xef\xbb\xbf{}")
put(J, "bad-two-values", "{} {}")
put(J, "bad-empty", "")
put(J, "bad-vertical-tab", "\x0b[]")
put(J, "bad-single-quotes", "{'a':1}")
put(J, "bad-unquoted-key", "{a:1}")
put(J, "bad-truncated-true", "tru")
put(J, "bad-unterminated-string", '"abc')

# ---- tokenizer (every input must be accepted) --------------------------------------------------------------------
T = "tokenizer"
put(T, "ok-empty", "")
put(T, "ok-prompt", "a photograph of an astronaut riding a horse, 4k, highly detailed")
put(T, "ok-webui-syntax", "(masterpiece:1.2), [cat|dog], {blue}, <lora:x:0.5>, BREAK AND")
put(T, "ok-emoji", "\U0001F600\U0001F468\u200D\U0001F469\u200D\U0001F467 \U0001F1EF\U0001F1F5 \u2764\ufe0f")
put(T, "ok-invalid-utf8", b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xe2\x82\x28\xf0\x28\x8c\xbc\xf0\x90\x28\xbc\xc0\xaf"
    b"\xed\xa0\x80\xf4\x90\x80\x80\xf8\x88\x80\x80\x80 end \xe2\x82")
put(T, "ok-nul-bytes", b"a\x00b\x00\x00c")
put(T, "ok-html-entities", "&amp;amp; &lt;b&gt; &#x1F600; &#128512; &#0; &#xD800; &#x110000; &#99999999999999999999;"
    " &notit; &notin; &AMP &ampx &#x; &#; &", )
put(T, "ok-html-entity-long-name", "&" + "a" * 40 + ";" + "&" * 200 + "#" * 100)
put(T, "ok-long-run-letters", "a" * 4000)
put(T, "ok-long-run-digits", "7" * 4000)
put(T, "ok-long-run-punct", "!" * 2000 + "'" * 2000)
put(T, "ok-long-run-cjk", "\u6f22" * 1300)
put(T, "ok-long-run-spaces", " \t\n\u3000\u0085\u2028" * 500)
put(T, "ok-contractions", "it's I'M we've they'll 'S 's's 'd'd'll")
put(T, "ok-special-tokens", "<|startoftext|>x<|endoftext|> <|endoftext|><|startoftext|>")
put(T, "ok-case-changes", "\u0130stanbul \u1E9E \u03A3\u03A3 \uFB01 \u0345 \u2126 \u212A \u00DF")
put(T, "ok-combining", "e\u0301\u0301\u0301 \u0915\u094d\u0937 \u05d0\u05b7 z\u0351\u0360\u0361")
put(T, "ok-many-chunks", "cat, " * 300)
put(T, "ok-control-chars", "".join(chr(c) for c in range(1, 32)) + "\x7f\u0080\u009f")
put(T, "ok-private-and-noncharacters", "\ue000\uffff\U0010FFFF\U000E0001\ufeff")

# ---- args (NUL-separated argv[1..]) -------------------------------------------------------------------------------
A = "args"


def argv(*words):
    return "\0".join(words)


put(A, "ok-generate", argv("-m", "model.safetensors", "-p", "a cat", "--steps", "30", "--cfg-scale", "7.5",
                           "-W", "768", "-H", "512", "--seed", "42", "--sampler", "DPM++ 2M Karras"))
put(A, "ok-info", argv("info", "model.safetensors"))
put(A, "ok-info-with-m", argv("info", "-m", "x"))
put(A, "ok-tokenize", argv("tokenize", "a \u00e9 \U0001F600"))
put(A, "ok-help", argv("--help"))
put(A, "ok-help-with-flags", argv("-p", "x", "--help", "-W", "64"))
put(A, "bad-help-then-bad-steps", argv("--help", "--steps", "nan"))
put(A, "ok-seed-max", argv("--seed", "9223372036854775807"))
put(A, "ok-seed-minus-one", argv("--seed", "-1"))
put(A, "ok-cfg-negative-zero", argv("--cfg-scale", "-0"))
put(A, "ok-cfg-hex", argv("--cfg-scale", "0x1p3"))
put(A, "ok-cfg-limit", argv("--cfg-scale", "100", "--cfg", "-100"))
put(A, "ok-empty-prompts", argv("-p", "", "-n", ""))
put(A, "bad-empty-output", argv("-o", ""))
put(A, "ok-every-flag", argv("-v", "--taesd", "--vae-tiling", "--no-vae-tiling", "--rng", "cpu", "--precision", "bf16",
                             "--clip-skip", "12", "-t", "1024", "-b", "10000", "--runs", "100", "--dump-latents", "d",
                             "--scheduler", "karras", "--steps", "1000", "-W", "8192", "-H", "64"))
put(A, "ok-no-args", b"")
put(A, "bad-steps-nan", argv("--steps", "nan"))
put(A, "bad-cfg-nan", argv("--cfg-scale", "nan"))
put(A, "bad-cfg-inf", argv("--cfg-scale", "inf"))
put(A, "bad-cfg-minus-infinity", argv("--cfg-scale", "-infinity"))
put(A, "bad-cfg-huge", argv("--cfg-scale", "1e308"))
put(A, "bad-cfg-overflow", argv("--cfg-scale", "1e999"))
put(A, "bad-cfg-just-above", argv("--cfg-scale", "100.0000001"))
put(A, "bad-seed-huge", argv("--seed", "99999999999999999999999"))
put(A, "bad-seed-minus-two", argv("--seed", "-2"))
put(A, "bad-seed-int64-min", argv("--seed", "-9223372036854775808"))
put(A, "bad-steps-zero", argv("--steps", "0"))
put(A, "bad-steps-trailing", argv("--steps", "20x"))
put(A, "bad-steps-float", argv("--steps", "20.5"))
put(A, "bad-steps-empty", argv("--steps", ""))
put(A, "bad-steps-2^31", argv("--steps", "2147483648"))
put(A, "bad-width-not-64", argv("-W", "500"))
put(A, "bad-width-huge", argv("-W", "9223372036854775807"))
put(A, "bad-width-negative", argv("-W", "-64"))
put(A, "bad-missing-value", argv("-p"))
put(A, "bad-missing-value-last", argv("-p", "x", "--seed"))
put(A, "bad-unknown-flag", argv("--stepz", "20"))
put(A, "bad-triple-dash", argv("---steps", "20"))
put(A, "bad-positional", argv("a cat"))
put(A, "bad-two-empty-args", argv("", ""))
put(A, "bad-trailing-empty-arg", argv("-p", "x", ""))
put(A, "bad-lone-dash", argv("-"))
put(A, "bad-rng", argv("--rng", "cuda"))
put(A, "bad-precision", argv("--precision", "fp16"))
put(A, "bad-info-no-model", argv("info"))
put(A, "bad-info-two-models", argv("info", "a", "b"))
put(A, "bad-tokenize-nothing", argv("tokenize"))
put(A, "bad-threads-zero", argv("-t", "0"))
put(A, "bad-clip-skip-13", argv("--clip-skip", "13"))

# ---- png_text -----------------------------------------------------------------------------------------------------
P = "png_text"
SIG = b"\x89PNG\r\n\x1a\n"


def chunk(kind, data, crc=None):
    c = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", c & 0xffffffff)


IHDR = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
IDAT = chunk(b"IDAT", zlib.compress(b"\x00\x01\x02\x03"))
IEND = chunk(b"IEND", b"")
PARAMS = ("a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, "
          "Size: 512x512, Model hash: 6ce0161689, Version: sd").encode()


def png(*chunks):
    return SIG + IHDR + b"".join(chunks) + IDAT + IEND


put(P, "ok-tEXt-parameters", png(chunk(b"tEXt", b"parameters\0" + PARAMS)))
put(P, "ok-tEXt-latin1", png(chunk(b"tEXt", b"parameters\0caf\xe9 \xff")))
put(P, "ok-iTXt-utf8", png(chunk(b"iTXt", b"parameters\0\0\0\0\0" + "\u732b \U0001F600".encode())))
put(P, "ok-iTXt-lang", png(chunk(b"iTXt", b"Title\0\0\0en\0T\xc3\xadtulo\0value")))
put(P, "ok-iTXt-compressed-skipped", png(chunk(b"iTXt", b"k\0\1\0\0\0" + zlib.compress(b"v"))))
put(P, "ok-iTXt-invalid-utf8", png(chunk(b"iTXt", b"k\0\0\0\0\0\xff\xfe\xc3")))
put(P, "ok-tEXt-no-nul-skipped", png(chunk(b"tEXt", b"no separator")))
put(P, "ok-tEXt-empty-key-and-value", png(chunk(b"tEXt", b"\0")))
put(P, "ok-tEXt-nul-in-value", png(chunk(b"tEXt", b"k\0a\0b\0")))
put(P, "ok-many-chunks", png(*[chunk(b"tEXt", b"k%d\0v" % i) for i in range(50)]))
put(P, "ok-text-after-iend-ignored", png() + chunk(b"tEXt", b"late\0x"))
put(P, "ok-no-iend", SIG + IHDR + chunk(b"tEXt", b"k\0v"))
put(P, "ok-trailing-bytes", png(chunk(b"tEXt", b"k\0v")) + b"\x00" * 11)
put(P, "ok-zTXt-skipped", png(chunk(b"zTXt", b"k\0\0" + zlib.compress(b"v"))))
put(P, "ok-signature-only", SIG)
put(P, "bad-empty", b"")
put(P, "bad-signature", b"\x89PNG\r\n\x1a\x0b" + IHDR)
put(P, "bad-jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
put(P, "bad-crc", png(chunk(b"tEXt", b"k\0v", crc=0)))
put(P, "bad-length-ffffffff", SIG + struct.pack(">I", 0xffffffff) + b"tEXt" + b"k\0v" + b"\0" * 9)
put(P, "bad-length-past-end", SIG + struct.pack(">I", 100) + b"tEXt" + b"k\0v" + b"\0" * 4)
put(P, "bad-length-2^31", SIG + struct.pack(">I", 0x80000000) + b"tEXt" + b"\0" * 8)
put(P, "bad-truncated-text", png(chunk(b"tEXt", b"parameters\0" + PARAMS))[:60])
put(P, "bad-iTXt-crc", png(chunk(b"iTXt", b"k\0\0\0\0\0v", crc=1)))

# ---- image: decode_image (stb_image) -------------------------------------------------------------------------------
# Real encodings from PIL (small, so mutations reach every decoder branch), plus headers that claim huge sizes.
def image_seeds():
    import io

    from PIL import Image

    def enc(img, fmt, **kw):
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        return b.getvalue()

    rgb = Image.new("RGB", (13, 7))
    rgb.putdata([((x * 19) % 256, (y * 37) % 256, (x * y * 5) % 256) for y in range(7) for x in range(13)])
    I = "image"
    put(I, "ok-png-rgb", enc(rgb, "PNG"))
    put(I, "ok-png-rgba", enc(rgb.convert("RGBA"), "PNG"))
    put(I, "ok-png-gray", enc(rgb.convert("L"), "PNG"))
    put(I, "ok-png-gray-alpha", enc(rgb.convert("LA"), "PNG"))
    put(I, "ok-png-palette", enc(rgb.convert("P"), "PNG"))
    put(I, "ok-png-1bit", enc(rgb.convert("1"), "PNG"))
    put(I, "ok-png-16bit", enc(rgb.convert("L").convert("I"), "PNG"))
    # (PIL writes no interlaced PNGs; stb checks no CRCs, so a mutated IHDR interlace byte reaches that decoder)
    put(I, "ok-jpeg-baseline", enc(rgb, "JPEG", quality=90))
    put(I, "ok-jpeg-progressive", enc(rgb, "JPEG", progressive=True))
    put(I, "ok-jpeg-gray", enc(rgb.convert("L"), "JPEG"))
    put(I, "ok-jpeg-444", enc(rgb, "JPEG", subsampling=0))
    put(I, "ok-jpeg-420-odd-size", enc(rgb.resize((41, 23)), "JPEG", subsampling=2))
    put(I, "ok-bmp", enc(rgb, "BMP"))
    put(I, "ok-gif", enc(rgb.convert("P"), "GIF"))
    put(I, "ok-tga", enc(rgb, "TGA"))
    put(I, "ok-ppm", enc(rgb, "PPM"))
    put(I, "bad-empty", b"")
    put(I, "bad-text", b"a cat, masterpiece\n")
    put(I, "bad-png-truncated", enc(rgb, "PNG")[:60])
    put(I, "bad-jpeg-truncated", enc(rgb, "JPEG")[:200])
    ihdr = lambda w, h: chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    put(I, "bad-png-claims-16385-wide", SIG + ihdr(16385, 1) + IDAT + IEND)
    put(I, "bad-png-claims-9000x9000", SIG + ihdr(9000, 9000) + IDAT + IEND)
    put(I, "bad-png-claims-2^31", SIG + ihdr(0x7fffffff, 0x7fffffff) + IDAT + IEND)
    jpeg = enc(rgb, "JPEG")
    sof = jpeg.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    put(I, "bad-jpeg-claims-65535x65535", jpeg[:sof + 5] + b"\xff\xff\xff\xff" + jpeg[sof + 9:])
    put(I, "bad-jpeg-claims-9000x9000", jpeg[:sof + 5] + struct.pack(">HH", 9000, 9000) + jpeg[sof + 9:])


image_seeds()
