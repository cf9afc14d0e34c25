#!/usr/bin/python3
"""prompt_reference.py — an independent Python statement of the webui's prompt syntax, and the goldens for
tests/test_prompt.cpp (tests/data/prompt_golden.json).

What it states, following the webui's modules/prompt_parser.py and sd_hijack_clip.py (v1.10.1):
  attention(text)          emphasis runs with their weights (parse_prompt_attention)
  schedule(prompt, steps)  [[end_at_step, text], ...] (get_learned_conditioning_prompt_schedules, one prompt)
  split_and(prompt)        [[text, weight], ...] (get_multicond_prompt_list, one prompt)
  chunks(prompt)           77-token chunks as "id:weight" (tokenize_line, comma_padding_backtrack 20)
The schedule grammar is read with lark (Debian: apt-get install python3-lark), as the webui does; token ids
come from `./sd tokenize` (the tokenizer has its own goldens).

    /usr/bin/python3 tools/prompt_reference.py                 # writes tests/data/prompt_golden.json
    /usr/bin/python3 tools/prompt_reference.py --digits        # writes pipeline/prompt_digits.inc (\\d's table)
    /usr/bin/python3 tools/prompt_reference.py --webui DIR     # also compares with the webui's own
                                                               # modules/prompt_parser.py from a checkout in DIR
                                                               # on the goldens and N random prompts
"""
import json
import random
import re
import subprocess
import sys

import lark
import numpy as np

# ---- emphasis -----------------------------------------------------------------------------------------------------

TOKEN = re.compile(r"\\[()\[\]\\]|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")
BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def attention(text):
    runs = []            # [text, weight]
    opened = {"(": [], "[": []}

    def scale(start, m):
        for r in runs[start:]:
            r[1] *= m

    for m in TOKEN.finditer(text):
        t, w = m.group(0), m.group(1)
        if t[0] == "\\":
            runs.append([t[1:], 1.0])
        elif t in ("(", "["):
            opened[t].append(len(runs))
        elif w is not None and opened["("]:
            scale(opened["("].pop(), float(w))
        elif t == ")" and opened["("]:
            scale(opened["("].pop(), 1.1)
        elif t == "]" and opened["["]:
            scale(opened["["].pop(), 1 / 1.1)
        else:
            for k, part in enumerate(BREAK.split(t)):
                if k:
                    runs.append(["BREAK", -1])
                runs.append([part, 1.0])
    for start in opened["("]:
        scale(start, 1.1)
    for start in opened["["]:
        scale(start, 1 / 1.1)
    if not runs:
        runs = [["", 1.0]]
    merged = [runs[0]]
    for r in runs[1:]:
        if merged[-1][1] == r[1]:
            merged[-1][0] += r[0]
        else:
            merged.append(r)
    return merged


# ---- schedules ----------------------------------------------------------------------------------------------------

GRAMMAR = r"""
!start: (prompt | /[][():]/+)*
prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
!emphasized: "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
alternate: "[" prompt ("|" [prompt])+ "]"
WHITESPACE: /\s+/
plain: /([^\\\[\]():|]|\\.)+/
%import common.SIGNED_NUMBER -> NUMBER
"""
PARSER = lark.Lark(GRAMMAR)


def schedule(prompt, steps):
    try:
        tree = PARSER.parse(prompt)
    except lark.exceptions.LarkError:
        return [[steps, prompt]]
    at = {steps}
    for node in tree.iter_subtrees():
        if node.data == "scheduled":
            s = str(node.children[-2])
            v = float(s) * steps if "." in s else float(s)
            node.children[-2] = min(steps, int(v))
            if node.children[-2] >= 1:
                at.add(node.children[-2])
        elif node.data == "alternate":
            at.update(range(1, steps + 1))

    def text(node, t):
        if isinstance(node, lark.Token):
            return str(node)
        if node is None:
            return ""
        if node.data == "scheduled":
            before, after, when = node.children[0], node.children[1], node.children[-2]
            return text(before, t) if t <= when else text(after, t)
        if node.data == "alternate":
            options = node.children
            return text(options[(t - 1) % len(options)], t)
        return "".join(text(c, t) for c in node.children)

    return [[t, text(tree, t)] for t in sorted(at)]


# ---- AND ----------------------------------------------------------------------------------------------------------

AND = re.compile(r"\bAND\b")
WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


def split_and(prompt):
    out = []
    for part in AND.split(prompt):
        m = WEIGHT.search(part)
        out.append([m.group(1), float(m.group(2)) if m.group(2) is not None else 1.0])
    return out


# ---- chunks -------------------------------------------------------------------------------------------------------

_ids = {}


def token_ids(texts):
    need = [t for t in set(texts) if t not in _ids]
    for t in need:
        out = subprocess.run(["./sd", "tokenize", t], capture_output=True, text=True, check=True).stdout.split()
        _ids[t] = [int(x) for x in out[1:-1]]
    return [_ids[t] for t in texts]


def weight_text(w):
    f = np.float32(w)
    for prec in range(1, 10):
        s = "%.*g" % (prec, float(f))
        if np.float32(float(s)) == f:
            return s


def chunks(prompt, comma=267, start=49406, end=49407):
    parsed = attention(prompt)
    result, tokens, weights = [], [], []
    last_comma = -1

    def close():
        nonlocal tokens, weights, last_comma
        pad = 75 - len(tokens)
        tokens += [end] * pad
        weights += [1.0] * pad
        result.append([start] + tokens + [end])
        result[-1] = " ".join("%d:%s" % (i, weight_text(w)) for i, w in zip(result[-1], [1.0] + weights + [1.0]))
        tokens, weights, last_comma = [], [], -1

    for ids, (text, weight) in zip(token_ids([t for t, _ in parsed]), parsed):
        if text == "BREAK" and weight == -1:
            close()
            continue
        for tok in ids:
            if tok == comma:
                last_comma = len(tokens)
            elif len(tokens) == 75 and last_comma != -1 and len(tokens) - last_comma <= 20:
                keep = last_comma + 1
                moved_t, moved_w = tokens[keep:], weights[keep:]
                tokens, weights = tokens[:keep], weights[:keep]
                close()
                tokens, weights = moved_t, moved_w
            if len(tokens) == 75:
                close()
            tokens.append(tok)
            weights.append(weight)
    if tokens or not result:
        close()
    return result


# ---- the cases ----------------------------------------------------------------------------------------------------

def cases():
    words = " ".join("w%d" % i for i in range(80))
    commas = ", ".join("tag%d" % i for i in range(60))
    yield from [
        "", "normal text", "an (important) word", "(unbalanced", r"\(literal\]", "(unnecessary)(parens)",
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", "(masterful:1.2), best quality, [blurry], (detailed eyes)",
        "a [b:3]", "a [b: 3]", "a [[[b]]:2]", "[(a:2):3]", "a [b : c : 1] d", "a[b:[c:d:2]:1]e", "a [unbalanced",
        "a [b:.5] c", "a [{b|d{:.5] c", "((a][:b:c [d:3]", "[a|(b:1.1)]", "[fe|]male", "[fe|||]male",
        "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75][ in foreground::0.6]"
        "[: in background:0.25] [shoddy:masterful:0.5]",
        "a BREAK b", "(a BREAK b)", "BREAK", "a BREAKfast BREAK", "x\\\\y \\a", "(a:1.5", "(a:-1)", "[a:b:1e1]",
        "a | b", "[[a:1]", "([a:1])", ")[a:1]", "[a:1:2]", "[a::3] [:b:4]", "cat AND dog :1.2", "a AND b:0.5 AND c",
        "<lora:x:0.5> a cat", "((((((((deep))))))))", "[[[[[[[[shallow]]]]]]]]", "(a [b) c]", "emb (x:1.0) y",
        words, commas, commas + ", " + words, "a, " * 40 + "b " * 10, "BREAK ".join(["x y z"] * 5),
        " ".join(["w"] * 74) + " BREAK tail", " ".join(["w"] * 75) + " BREAK tail",
        ", ".join(["word"] * 120), " ".join("(w%d:1.%d)" % (i, i % 10) for i in range(240)),
        # weights in other scripts' digits: re's \d matches every decimal digit (Nd) and float() reads them
        "(cat:\uff11.\uff15)", "(cat:\u0661.\u0665) dog", "(x:\uff11\uff12)", "(x:1\u0662.5)", "(x:.\u0665)",
        "(x: \uff12 )", "(x:\u0e51.\u0e52)", "(x:\U0001D7D9.\U0001D7DC)", "(x:\u0661\u066b\u0665)",
        "(x:\uff11\uff0e\uff15)", "[a:b:\u0660.\u0665]", "a AND b :\u0662", "a AND b :\u0661.\u0665 AND c",
        "(x:\u00b2)", "(x:\u2155)", "(x:\u0967\u0966)",
    ]


def random_prompt(rng):
    alphabet = ["a", "b", " ", "(", ")", "[", "]", ":", "|", "1", ".", "5", "\\", ",", "BREAK", "AND", "0.3", "2",
                "[:", ":2]", "[a:", "]:", "\n", "\t", "\u00e9", "\u3000"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))


HASH_SEEDS = range(6)


def schedules_across_hash_seeds(prompts, steps_list):
    """lark resolves some ambiguous parses by iterating a set, so for prompts like 'b[b:2]:2]' (a bracket that
    can open a schedule or stand alone, with more brackets after it) the webui's own result depends on Python's
    per-process string-hash seed. Each prompt's schedules under several seeds: [[schedule, ...] per steps]."""
    import os
    results = []
    for seed in HASH_SEEDS:
        env = dict(os.environ, PYTHONHASHSEED=str(seed))
        out = subprocess.run([sys.executable, __file__, "--schedules"], input=json.dumps([prompts, steps_list]),
                             capture_output=True, text=True, env=env, check=True).stdout
        results.append(json.loads(out))
    return results


def write_digits(path="pipeline/prompt_digits.inc"):
    """The table of Python re's \\d (str patterns): every decimal digit (Nd), as the webui's weight regexes match
    them and float() reads them."""
    import unicodedata
    runs = []
    for c in range(0x110000):
        if not 0xD800 <= c <= 0xDFFF and re.match(r"\d", chr(c)):
            if runs and runs[-1][1] == c - 1:
                runs[-1][1] = c
            else:
                runs.append([c, c])
    assert all((b - a + 1) % 10 == 0 and unicodedata.decimal(chr(a)) == 0 for a, b in runs)
    lines = ["// prompt_digits.inc — GENERATED by tools/prompt_reference.py --digits; do not edit by hand.", "//",
             "// Python re's \\d in str patterns (Python %s, Unicode %s): the decimal digits (category Nd), in runs of"
             % (sys.version.split()[0], unicodedata.unidata_version),
             "// ten from 0, so a digit's value is (c - first) % 10. float() reads every one of them as its ASCII digit.",
             "const unicode::CodeRange kDecimal[] = {"]
    for i in range(0, len(runs), 6):
        lines.append("    " + " ".join("{0x%X, 0x%X}," % (a, b) for a, b in runs[i:i + 6]))
    lines.append("};")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", path)


def main():
    argv = sys.argv[1:]
    if argv == ["--digits"]:
        return write_digits()
    if argv == ["--schedules"]:  # one process's answers, for schedules_across_hash_seeds
        prompts, steps_list = json.load(sys.stdin)
        json.dump([[schedule(p, s) for s in steps_list] for p in prompts], sys.stdout)
        return
    steps_list = [10, 20]
    out = []
    for p in cases():
        out.append({"prompt": p, "attention": attention(p), "and": split_and(p), "chunks": chunks(p)})
    rng = random.Random(1)
    randoms = [random_prompt(rng) for _ in range(600)]
    for p in randoms:
        try:
            a = attention(p)
        except ValueError:
            a = None  # float() refuses the weight: the webui fails too
        out.append({"prompt": p, "attention": a, "and": split_and(p)})
    # Schedules: every answer the webui's parser gives across hash seeds ("schedules": {steps: [answer, ...]}).
    # lark's Earley parser takes minutes on long prompts (ambiguous whitespace): only those up to 200 bytes.
    short = [c for c in out if len(c["prompt"]) <= 200]
    per_seed = schedules_across_hash_seeds([c["prompt"] for c in short], steps_list)
    for k, c in enumerate(short):
        c["schedules"] = {}
        for j, s in enumerate(steps_list):
            answers = []
            for r in per_seed:
                if r[k][j] not in answers:
                    answers.append(r[k][j])
            c["schedules"][str(s)] = answers
    with open("tests/data/prompt_golden.json", "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in out) + "\n]\n")
    print("wrote tests/data/prompt_golden.json: %d prompts" % len(out))

    if "--webui" in argv:
        sys.path.insert(0, argv[argv.index("--webui") + 1])
        from modules import prompt_parser as webui  # the webui's own code, from a checkout outside this repo
        n = int(argv[argv.index("-n") + 1]) if "-n" in argv else 20000
        prompts = list(cases()) + randoms + [random_prompt(rng) for _ in range(n)]
        bad = 0
        for p in prompts:
            for s in (1, 10, 20):
                if len(p) <= 200 and webui.get_learned_conditioning_prompt_schedules([p], s)[0] != schedule(p, s):
                    bad += 1
                    print("schedule differs:", repr(p), s, flush=True)
            try:
                w = webui.parse_prompt_attention(p)
            except ValueError:
                w = None
            try:
                r = attention(p)
            except ValueError:
                r = None
            if w != r:
                bad += 1
                print("attention differs:", repr(p))
            idx, flat, _ = webui.get_multicond_prompt_list([p])
            if [[flat[i], wt] for i, wt in idx[0]] != split_and(p):
                bad += 1
                print("AND differs:", repr(p))
        print("compared %d prompts with the webui's prompt_parser.py: %d differences" % (len(prompts), bad))
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
