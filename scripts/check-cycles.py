#!/usr/bin/env python3
"""Report import cycles between the modules of a Rust crate.

Usage: check-cycles.py [--graph] <crate src dir>   (e.g. broker/src)

Nodes are the crate's top-level modules and, for a directory module
(`foo/mod.rs`), each of its direct children (`foo::bar`); `foo` itself is the
node of `foo/mod.rs`. Edges come from `crate::a::b` paths (in `use` lines and
inline), `super::x` paths and `self::x` paths, resolved against the file's
own module. A directory module depends on the children it declares with
`mod x;` (it re-exports or uses them), so a child must never reference its
parent directory module: that is reported as a cycle. Code under
`#[cfg(test)]` is ignored, and so are whole files declared as
`#[cfg(test)] mod x;`. Prints every cycle found and exits 1, else exits 0.
With --graph, also prints every dependency edge (module -> module).
Standard library only.
"""

import os
import re
import sys


def module_path(src, path):
    """File path -> module path list (crate root = [])."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main") and len(rel) == 1:
        return []
    if rel[-1] == "mod":
        rel = rel[:-1]
    return rel


def strip_tests(text):
    """Remove `#[cfg(test)]` items (a module block or a single item)."""
    out = []
    i = 0
    while True:
        j = text.find("#[cfg(test)]", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        k = j + len("#[cfg(test)]")
        # Skip to the end of the next item: `;` before any `{`, or the
        # matching `}` of the first block.
        depth = 0
        while k < len(text):
            c = text[k]
            if c == ";" and depth == 0:
                k += 1
                break
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    k += 1
                    break
            k += 1
        i = k
    return "".join(out)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def expand_use_groups(text):
    """`use a::{b, c::{d}}` -> occurrences `a::b`, `a::c::d` (as text)."""
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand(m.group(1).replace("\n", " ").strip()))
    return paths


def expand(tree):
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree.split(" as ")[0].strip()]
    prefix = tree[:i]
    inner = tree[i + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for c in inner:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        cur += c
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            out.extend(prefix + q for q in expand(p))
    return out


def node_of(mods, dirs, path):
    """Module path list -> graph node name (top-level or dir-module child)."""
    if not path:
        return None
    top = path[0]
    if top not in mods:
        return None
    if top in dirs and len(path) > 1 and path[1] in dirs[top]:
        return top + "::" + path[1]
    return top


def main():
    args = sys.argv[1:]
    graph = "--graph" in args
    args = [a for a in args if a != "--graph"]
    if len(args) != 1:
        print(__doc__)
        return 2
    src = args[0]
    files = []
    for root, _, names in os.walk(src):
        if os.path.relpath(root, src).split(os.sep)[0] == "bin":
            continue
        files.extend(os.path.join(root, n) for n in names if n.endswith(".rs"))
    # Files declared under #[cfg(test)] are test code: skip them.
    test_only = set()
    for f in files:
        raw = strip_comments(open(f, encoding="utf-8").read())
        for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", raw):
            base = os.path.dirname(f) if os.path.basename(f) in ("mod.rs", "lib.rs", "main.rs") else f[:-3]
            for cand in (os.path.join(base, m.group(1) + ".rs"), os.path.join(base, m.group(1), "mod.rs")):
                test_only.add(os.path.normpath(cand))
    files = [f for f in files if os.path.normpath(f) not in test_only]
    mods = set()
    dirs = {}
    for f in files:
        mp = module_path(src, f)
        if not mp:
            continue
        mods.add(mp[0])
        if len(mp) >= 2:
            dirs.setdefault(mp[0], set()).add(mp[1])
    edges = {}
    where = {}
    for f in files:
        mp = module_path(src, f)
        me = node_of(mods, dirs, mp)
        if me is None:
            continue
        text = strip_comments(strip_tests(open(f, encoding="utf-8").read()))
        refs = expand_use_groups(text)
        # A directory module depends on the children it declares.
        if os.path.basename(f) == "mod.rs" and len(mp) == 1:
            refs += ["self::" + c for c in re.findall(r"\bmod\s+(\w+)\s*;", text)]
        refs += re.findall(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", text)
        for r in refs:
            segs = [s for s in r.split("::") if s]
            if not segs:
                continue
            if segs[0] == "crate":
                target = segs[1:]
            elif segs[0] in ("super", "self"):
                base = list(mp)
                # A file `a/b.rs` is module a::b: `super` is a, `self` is a::b.
                while segs and segs[0] in ("super", "self"):
                    if segs[0] == "super":
                        base = base[:-1]
                    segs = segs[1:]
                target = base + segs
            else:
                continue
            t = node_of(mods, dirs, target)
            if t is None or t == me:
                continue
            edges.setdefault(me, set()).add(t)
            where.setdefault((me, t), os.path.relpath(f, src))
    if graph:
        for a in sorted(edges):
            print(f"{a} -> {', '.join(sorted(edges[a]))}")
    # Find cycles: strongly connected components (Tarjan) with > 1 node.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(set(edges) | {t for ts in edges.values() for t in ts}):
        if v not in index:
            visit(v)
    if not sccs:
        n = sum(len(t) for t in edges.values())
        print(f"no cycle: {len(index)} modules, {n} dependencies")
        return 0
    for comp in sccs:
        print("cycle among: " + ", ".join(comp))
        for a in comp:
            for b in sorted(edges.get(a, ())):
                if b in comp:
                    print(f"  {a} -> {b}   ({where[(a, b)]})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
