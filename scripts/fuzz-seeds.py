#!/usr/bin/env python3
"""Writes the seed corpus of a fuzz target into DIR (scripts/fuzz.sh calls it).

spec: every experiment of experiments/ as one fuzz_spec input (the experiment, then each
file it extends or includes after a line "#@file NAME", names relative to experiments/),
every text the tests put into a spec file (put("x.yaml", "...") in tests/test_*.c), and
fuzz/seeds/spec/*.
idx: the test fixtures' IDX files (raw, cut to a few images), and fuzz/seeds/idx/*.
"""
import gzip, os, re, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
n = 0


def put(data):
    global n
    with open(os.path.join(out, "seed-%04d" % n), "wb") as f:
        f.write(data)
    n += 1


def refs(text):
    return re.findall(r"^\s*(?:extends|include):\s*([^\s#]+)", text, re.M)


if target == "spec":
    exp = os.path.join(root, "experiments")
    for dirpath, _, files in os.walk(exp):
        for name in sorted(files):
            if not name.endswith(".yaml"):
                continue
            path = os.path.join(dirpath, name)
            main = open(path).read()
            parts, seen, todo = [main], set(), [(os.path.relpath(dirpath, exp), main)]
            while todo:
                where, text = todo.pop()
                for r in refs(text):
                    rel = os.path.normpath(os.path.join(where, r))
                    full = os.path.join(exp, rel)
                    if rel in seen or not os.path.exists(full):
                        continue
                    seen.add(rel)
                    t = open(full).read()
                    # the harness calls the experiment exp.yaml at the top: names relative to it
                    parts.append("#@file %s\n%s" % (os.path.relpath(rel, os.path.relpath(dirpath, exp)), t))
                    todo.append((os.path.dirname(rel), t))
            put("\n".join(parts).encode())
    lit = r'"(?:[^"\\]|\\.)*"'
    for t in sorted(os.listdir(os.path.join(root, "tests"))):
        if not (t.startswith("test_") and t.endswith(".c")):
            continue
        src = open(os.path.join(root, "tests", t)).read()
        for m in re.finditer(r'put\(\s*"[^"]+\.yaml"\s*,\s*((?:%s\s*)+)\)' % lit, src):
            s = "".join(re.findall(lit, m.group(1)))
            s = s.replace('""', "")[1:-1]
            put(s.encode().decode("unicode_escape").encode("latin-1", "replace"))
elif target == "idx":
    fx = os.path.join(root, "tests", "fixtures", "mnist")
    for name in sorted(os.listdir(fx)):
        b = open(os.path.join(fx, name), "rb").read()
        if name.endswith(".gz"):
            b = gzip.decompress(b)
        if b[3] == 3:  # images: keep 2 of them
            b = b[:8] + (2).to_bytes(4, "big") + b[12:16] + b[16:16 + 2 * 28 * 28]
        else:
            b = b[:4] + (16).to_bytes(4, "big") + b[8:24]
        put(b)
extra = os.path.join(root, "fuzz", "seeds", target)
if os.path.isdir(extra):
    for name in sorted(os.listdir(extra)):
        put(open(os.path.join(extra, name), "rb").read())
print(n)
