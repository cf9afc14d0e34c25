#!/usr/bin/python3
"""tokenizer_reference.py — an independent Python CLIP tokenizer: the golden source for tokenizer/clip_tokenizer.cpp.

Follows the algorithm of OpenAI CLIP's published simple_tokenizer.py (MIT), written anew:
  clean:  html.unescape twice, str.strip(); whitespace runs (regex \\s+) -> one space, strip(); str.lower()
          (CLIP also runs ftfy.fix_text first; ftfy is not available here and the C++ does not run it either)
  split:  regex <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+, IGNORECASE
  bpe:    each piece's UTF-8 bytes -> byte-level symbols, "</w>" on the last one, then repeatedly merge every
          occurrence of the lowest-ranked adjacent pair
  vocab:  256 byte symbols (bytes_to_unicode order), the same with </w>, one per merge, <|startoftext|>, <|endoftext|>
The input of every case is bytes; invalid UTF-8 is decoded with errors="replace" (one U+FFFD per maximal
ill-formed subpart), the rule the C++ implements.

Modes (run from the repository root with Debian's /usr/bin/python3; needs python3-regex; reads CLIP's vocabulary
from ../shared beside the project root, or $SD_SHARED):
  tools/tokenizer_reference.py              cross-check the vocabulary with the HF files, write tests/data/tokenizer_golden.txt
  tools/tokenizer_reference.py --merges     write tokenizer/merges.txt (lines 2..48895 of the .gz: the merges used)
  tools/tokenizer_reference.py --tables     write tokenizer/unicode_tables.cpp (character classes, lowercase, HTML entities)
  tools/tokenizer_reference.py --encode T   print the ids of T (start + ids + end, like `./sd tokenize`)
"""
import argparse
import gzip
import html
import html.entities
import json
import os
import random
import sys
import unicodedata

import regex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SD_SHARED", os.path.join(ROOT, "..", "shared"))  # $SD_SHARED, else ../shared
BPE_GZ = f"{SHARED}/clip/bpe_simple_vocab_16e6.txt.gz"
HF_DIR = f"{SHARED}/weights/clip-vit-large-patch14-tokenizer"
N_MERGES = 49152 - 256 - 2  # 48,894: the merges CLIP uses
START, END = 49406, 49407


# ---- vocabulary ---------------------------------------------------------------------------------------------------
def byte_symbols():
    """The 256 byte-level symbols, in vocabulary order: (byte, symbol) pairs. Printable Latin-1 bytes stand for
    themselves; the others (controls, space, 0x7f-0xa0, 0xad) are given the code points 256, 257, ... in byte order."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    pairs = [(b, chr(b)) for b in printable]
    extra = 0
    for b in range(256):
        if b not in printable:
            pairs.append((b, chr(256 + extra)))
            extra += 1
    return pairs


def need(path):
    """path, or exit with one sentence when the shared data is not there (never an empty golden)."""
    if not os.path.exists(path):
        sys.exit(f"tokenizer_reference.py: {path} not found; set SD_SHARED to the folder holding "
                 "clip/ and weights/clip-vit-large-patch14-tokenizer/")
    return path


def read_merges():
    with gzip.open(need(BPE_GZ), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    return [tuple(line.split()) for line in lines[1:1 + N_MERGES]]


class Tokenizer:
    def __init__(self):
        pairs = byte_symbols()
        self.byte_to_symbol = dict(pairs)
        self.merges = read_merges()
        vocab = [s for _, s in pairs] + [s + "</w>" for _, s in pairs] + ["".join(m) for m in self.merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.vocab = vocab
        self.encoder = {s: i for i, s in enumerate(vocab)}  # a later duplicate would win, as in CLIP
        self.rank = {m: r for r, m in enumerate(self.merges)}
        self.cache = {"<|startoftext|>": ["<|startoftext|>"], "<|endoftext|>": ["<|endoftext|>"]}
        self.split = regex.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"
                                   r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", regex.IGNORECASE)

    def bpe(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        word = list(piece[:-1]) + [piece[-1] + "</w>"]
        while len(word) > 1:
            ranked = [(self.rank.get((a, b), None), a, b) for a, b in zip(word, word[1:])]
            ranked = [t for t in ranked if t[0] is not None]
            if not ranked:
                break
            _, a, b = min(ranked)
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[piece] = word
        return word

    @staticmethod
    def clean(text):
        text = html.unescape(html.unescape(text)).strip()
        text = regex.sub(r"\s+", " ", text).strip()
        return text.lower()

    def encode(self, raw: bytes):
        text = self.clean(raw.decode("utf-8", errors="replace"))
        ids = []
        for piece in self.split.findall(text):
            symbols = "".join(self.byte_to_symbol[b] for b in piece.encode("utf-8"))
            ids += [self.encoder[s] for s in self.bpe(symbols)]
        return ids


def chunks(ids):
    """The webui's long-prompt rule: 75 tokens per chunk, each start + tokens + end, padded to 77 with end."""
    out = []
    for c in range(0, max(len(ids), 1), 75):
        part = [START] + ids[c:c + 75] + [END]
        out.append(part + [END] * (77 - len(part)))
    return out


def cross_check(tok):
    """The vocabulary built from the .gz must be exactly HF's vocab.json, and its merges HF's merges.txt."""
    with open(need(f"{HF_DIR}/vocab.json"), encoding="utf-8") as f:
        hf_vocab = json.load(f)
    assert len(tok.vocab) == 49408 and len(tok.encoder) == 49408, "duplicate vocabulary entries"
    assert hf_vocab == tok.encoder, "vocabulary differs from HF vocab.json"
    with open(need(f"{HF_DIR}/merges.txt"), encoding="utf-8") as f:
        hf_merges = [tuple(l.split()) for l in f.read().split("\n")[1:] if l]
    assert hf_merges == tok.merges, "merges differ from HF merges.txt"
    print(f"vocabulary cross-checked with {HF_DIR}: 49,408 ids and 48,894 merges identical", file=sys.stderr)


# ---- golden cases ---------------------------------------------------------------------------------------------------
def fixed_cases():
    s = lambda t: t.encode("utf-8")
    cases = [
        s("a photo of an astronaut riding a horse, highly detailed, 8k"),
        s(""), s("   "), s("a"), s("A"), s("!"), s("hello world"),
        s("Hello, World! How's it going?"), s("don't it's we're you've I'm we'll he'd"),
        s("DON'T IT'S WE'RE"), s("it'sx rock'n'roll ''s 's 'll"), s("!!'s ?'t"),
        s("1234"), s("3.14"), s("1,000,000 dollars 2nd 3rd 42nd 007"), s("v1.5 sd-1.5 512x512 16:9 f/1.8"),
        s("café naïve résumé Ærøskøbing Straße"), s("CAFÉ NAÏVE ÉLAN"), s("ﬁne ligature ﬀ"),
        s("東京 タワー 夜景, 中文字符 한국어"), s("Привет МИР"), s("ΟΔΟΣ ΣΑΣ Σ σ ΑΣ. ΑΣ'Σ"),
        s("İstanbul DİYARBAKIR ıi"), s("ſ it'ſ <|ſtartoftext|>"), s("مرحبا بالعالم"), s("नमस्ते दुनिया"),
        s("😀 🎉🎉 👍🏽 👨‍👩‍👧 🏳️‍🌈 ❤️"), s("emoji😀inside"), s("e\u0301 combining a\u0308"),
        s("&amp; &lt; &gt; &quot; &#39; &#x27; &apos; &nbsp;x &copy; &hellip; &mdash;"),
        s("&amp;lt; &amp;amp; &ampx &AMP; &LT &Amp; &notit; &notin; &lang; &#128512; &#x1F600;"),
        s("&#0; &#13; &#128; &#150; &#xD800; &#1114112; &#99999999999999999999; &#1; &#x; &#; & ; &&amp;"),
        s("&" + "a" * 40 + "; &eacute &eacute; &Eacute; &szlig;"),
        s("multiple   spaces\n\nnewlines\ttabs\r\n end  "), s("\u00a0nbsp\u3000ideographic\u2028line\x85next"),
        s("file\x1cseparator \x1c lead"), s("\x1c\x1d trail \x1e\x1f"), s("\x00nul\x00byte"),
        s("UPPER CASE PROMPT, MASTERPIECE"), s("supercalifragilisticexpialidocious " + "a" * 300),
        s("pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism"),
        s("(masterpiece:1.2), [bad hands], {best quality}, <lora:foo:0.8>"),
        s("<|startoftext|>a cat<|endoftext|> !<|endoftext|> <|ENDOFTEXT|>"),
        s("$100 #hashtag @user 50% a+b=c ~tilde `tick` ^caret \\back/slash|pipe"),
        s("“smart quotes” ‘single’ — dash – en … ellipsis ©®™"), s("٣ ١٢ ½ ² Ⅻ ⑳"),
        s(", ".join(["a beautiful painting of a castle on a hill"] * 12)),  # a >75-token prompt
        s(" ".join(["tok"] * 75)), s(" ".join(["tok"] * 76)), s(" ".join(["tok"] * 150)),
        b"\xff", b"\xff\xfe invalid", b"a\xc0\x80b", b"\xed\xa0\x80 surrogate", b"trunc \xe2\x82",
        b"\xe2\x82\xac euro \xe2\x82", b"\xf0\x9f\x98 cut emoji", b"\xf4\x90\x80\x80 above", b"\xc3",
        b"\xe0\x80\xaf overlong", b"\xf0\x80\x80\x80", b"\x80\x80\xbf lone continuations", b"caf\xe9 latin1",
    ]
    return cases


def fuzz_cases(n, seed=1234):
    """Random byte strings mixing the pieces the tokenizer treats specially, for broad exact coverage."""
    rng = random.Random(seed)
    pool = ["a", "Z", "cat", "HORSE", "9", "42", "3.5", " ", "  ", "\t", "\n", ",", "!", "?", "...", "'", "'s", "'LL",
            "'re", "é", "Ü", "ß", "Σ", "ΣΑ", "ω", "İ", "ſ", "ж", "Ж", "東", "京", "한", "ا", "न", "्", "\u0301", "😀",
            "👍🏽", "\u200d", "\ufe0f", "&amp;", "&lt", "&#39;", "&#x1F600;", "&nbsp", "&AMP", "&notin;", "&#150;",
            "&", "#", ";", "\x1c", "\x85", "\u00a0", "\u3000", "<|endoftext|>", "<|", "|>", "½", "Ⅻ", "٣", "ﬁ",
            "K", "Ω", "ǅ", "ᾈ"]
    raw = [b"\xff", b"\xc0", b"\xe2\x82", b"\xed\xa0\x80", b"\xf0\x9f", b"\x80", b"\xf4\x90\x80\x80"]
    cases = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 24)):
            if rng.random() < 0.1:
                parts.append(rng.choice(raw))
            else:
                parts.append(rng.choice(pool).encode("utf-8"))
        cases.append(b"".join(parts))
    return cases


def readable(raw):
    return repr(raw.decode("utf-8", errors="backslashreplace"))[:150]


def write_golden(tok, path):
    lines = [
        "# tokenizer_golden.txt — written by tools/tokenizer_reference.py (CLIP's tokenizer without ftfy); do not edit.",
        f"# python {sys.version.split()[0]}, regex {regex.__version__}, unicodedata {unicodedata.unidata_version}.",
        "# Per case: '#' + a readable form; 'text' + the input's bytes in hex (may be invalid UTF-8);",
        "# 'ids' + encode() (no start/end); for prompts over 75 tokens also 'chunk' + 77 ids per chunk.",
    ]
    for raw in fixed_cases() + fuzz_cases(300):
        ids = tok.encode(raw)
        lines += [f"# {readable(raw)}", f"text {raw.hex()}".rstrip(), f"ids {' '.join(map(str, ids))}".rstrip()]
        if len(ids) > 75 or not ids:
            lines += [f"chunk {' '.join(map(str, c))}" for c in chunks(ids)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}", file=sys.stderr)


# ---- tables for the C++ ---------------------------------------------------------------------------------------------
def code_ranges(test):
    """The code points c with test(chr(c)) as inclusive ranges; test is a regex pattern or a predicate."""
    if isinstance(test, str):
        test = regex.compile(test).match
    out, start = [], None
    for cp in range(0x110001):
        hit = cp <= 0x10FFFF and not 0xD800 <= cp <= 0xDFFF and bool(test(chr(cp)))
        if hit and start is None:
            start = cp
        elif not hit and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def lower_runs():
    """str.lower() for code points with a one-code-point lowercase, as runs (first, last, step, delta):
    lower(c) = c + delta for c = first, first+step, ..., last."""
    runs = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        low = chr(cp).lower()
        if low == chr(cp) or len(low) != 1:
            continue
        delta = ord(low) - cp
        if runs:
            first, last, step, d = runs[-1]
            if d == delta and (cp - last == step or (first == last and cp - last in (1, 2))):
                runs[-1] = (first, cp, cp - last, d)
                continue
        runs.append((cp, cp, 1, delta))
    return runs


def emit_ranges(name, ranges, doc):
    body = []
    for i in range(0, len(ranges), 6):
        body.append("    " + " ".join(f"{{0x{a:X}, 0x{b:X}}}," for a, b in ranges[i:i + 6]))
    return [f"// {doc}", f"const CodeRange {name}[] = {{"] + body + ["};",
            f"const size_t {name}_count = sizeof({name}) / sizeof({name}[0]);", ""]


def write_tables(path):
    multi = {cp: chr(cp).lower() for cp in range(0x110000)
             if not 0xD800 <= cp <= 0xDFFF and len(chr(cp).lower()) > 1}
    assert multi == {0x130: "i\u0307"}, multi  # the C++ special-cases U+0130 alone
    h5 = html.entities.html5
    names = sorted(set(html.entities.name2codepoint) | {"apos"} | {k for k in h5 if not k.endswith(";")})
    entities = []
    for n in names:
        value = h5[n + ";"]
        assert len(value) == 1 and (n not in h5 or h5[n] == value)
        entities.append((n, ord(value), n in h5))
    legacy = {k for k in h5 if not k.endswith(";")}
    assert legacy == {n for n, _, l in entities if l}, "every name valid without ';' must be in the table"
    charref = html._invalid_charrefs  # the HTML5 numeric-reference replacements (0x00, 0x0D, 0x80-0x9F)
    invalid = sorted(html._invalid_codepoints)

    out = [
        "// unicode_tables.cpp — GENERATED by tools/tokenizer_reference.py --tables; do not edit by hand.",
        "//",
        "// The character facts CLIP's tokenizer relies on, taken from the Python it runs under:",
        f"// the regex module's \\p{{L}}, \\p{{N}}, \\s, \\p{{Cased}}, \\p{{Case_Ignorable}} (regex {regex.__version__}),",
        f"// str.lower() and str.isspace() (Python {sys.version.split()[0]}, Unicode {unicodedata.unidata_version}), and",
        "// html.unescape's rules: the HTML 4 named entities plus &apos; and every name HTML5 accepts without ';'",
        "// (the rest of HTML5's 2,231 names are left out), and the numeric-reference replacements.",
        '#include "tokenizer/unicode_tables.h"',
        "",
        "namespace sd {",
        "namespace unicode {",
        "",
    ]
    out += emit_ranges("kLetter", code_ranges(r"\p{L}"), "[\\p{L}]: letters")
    out += emit_ranges("kNumber", code_ranges(r"\p{N}"), "[\\p{N}]: numbers")
    out += emit_ranges("kRegexSpace", code_ranges(r"\s"), "regex's \\s (used by the whitespace collapse and the split)")
    out += emit_ranges("kPySpace", code_ranges(str.isspace), "str.isspace() (used by strip())")
    out += emit_ranges("kCased", code_ranges(r"\p{Cased}"), "Cased (final-sigma context of str.lower())")
    out += emit_ranges("kCaseIgnorable", code_ranges(r"\p{Case_Ignorable}"), "Case_Ignorable (final sigma)")
    runs = lower_runs()
    out += ["// str.lower(): lower(c) = c + delta for c in first, first+step, ..., last (U+0130 -> i U+0307 aside)",
            "const CaseRun kLower[] = {"]
    for i in range(0, len(runs), 4):
        out.append("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, {s}, {d}}}," for a, b, s, d in runs[i:i + 4]))
    out += ["};", "const size_t kLower_count = sizeof(kLower) / sizeof(kLower[0]);", ""]
    out += ["// Named character references, sorted by name; `bare`: also valid without the ';'.",
            "const Entity kEntity[] = {"]
    for i in range(0, len(entities), 4):
        out.append("    " + " ".join(f'{{"{n}", 0x{v:X}, {str(l).lower()}}},' for n, v, l in entities[i:i + 4]))
    out += ["};", "const size_t kEntity_count = sizeof(kEntity) / sizeof(kEntity[0]);", ""]
    out += ["// Numeric references to these code points become another character (HTML5's table).",
            "const CharRef kCharRefReplace[] = {"]
    items = sorted(charref.items())
    for i in range(0, len(items), 6):
        out.append("    " + " ".join(f"{{0x{k:X}, 0x{ord(v):X}}}," for k, v in items[i:i + 6]))
    out += ["};", "const size_t kCharRefReplace_count = sizeof(kCharRefReplace) / sizeof(kCharRefReplace[0]);", ""]
    # The check below pins the sets the range list must reproduce.
    rng, start = [], None
    for cp in invalid + [None]:
        if start is not None and (cp is None or cp != prev + 1):
            rng.append((start, prev))
            start = None
        if cp is not None and start is None:
            start = cp
        prev = cp
    out += emit_ranges("kCharRefDrop", rng, "Numeric references to these code points are dropped")
    out += ["}  // namespace unicode", "}  // namespace sd", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    print(f"wrote {path}", file=sys.stderr)


def write_merges(tok, path):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(" ".join(m) for m in tok.merges) + "\n")
    print(f"wrote {path}: {len(tok.merges)} merges", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--merges", action="store_true")
    ap.add_argument("--tables", action="store_true")
    ap.add_argument("--encode")
    args = ap.parse_args()
    if args.tables:
        return write_tables("tokenizer/unicode_tables.cpp")
    tok = Tokenizer()
    if args.encode is not None:
        print(" ".join(map(str, [START] + tok.encode(args.encode.encode("utf-8", "surrogateescape")) + [END])))
        return
    cross_check(tok)
    if args.merges:
        return write_merges(tok, "tokenizer/merges.txt")
    write_golden(tok, "tests/data/tokenizer_golden.txt")


if __name__ == "__main__":
    main()
