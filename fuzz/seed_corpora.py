#!/usr/bin/env python3
"""Seeds the fuzz corpora from the project's own test vectors.

Reads every string and byte-string literal in the crates' sources and tests,
picks those each target can use, puts the target's settings byte(s) in
front (see each target's doc comment), and writes them to
fuzz/corpus/<target>/seed-<sha1>. Run it from anywhere, then shrink the
corpora with `cargo fuzz cmin` (see README.md):

    python3 fuzz/seed_corpora.py
"""

import hashlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ["httpserver", "httpclient", "web", "tests", "src"]

# A Rust string literal: optional b prefix, then "…" or r#"…"#.
LITERAL = re.compile(r'(b?)(?:"((?:[^"\\]|\\.)*)"|r(#*)"(.*?)"\3)', re.S)


def unescape(body: str, is_bytes: bool) -> bytes:
    """The bytes a Rust (byte) string literal's body stands for."""
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = body[i + 1]
        i += 2
        if n == "\n":  # line continuation: skip the next line's indent
            while i < len(body) and body[i] in " \t\n\r":
                i += 1
        elif n in "nrt0\\\"'":
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0"}.get(n, n.encode())
        elif n == "x":
            value = int(body[i:i + 2], 16)
            out += bytes([value]) if is_bytes else chr(value).encode()
            i += 2
        elif n == "u":
            end = body.index("}", i)
            out += chr(int(body[i + 1:end], 16)).encode()
            i = end + 1
    return bytes(out)


def literals():
    """Every literal of the Rust files under SOURCES, as bytes."""
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.rs")):
            text = path.read_text(errors="replace")
            for m in LITERAL.finditer(text):
                is_bytes = m.group(1) == "b"
                if m.group(2) is not None:
                    try:
                        yield unescape(m.group(2), is_bytes)
                    except (ValueError, IndexError):
                        continue
                else:
                    yield m.group(4).encode()


def multipart_seed(lit: bytes):
    """`[settings, len(boundary)] + boundary + body` for a multipart body."""
    m = re.search(rb"(?:^|\n)--([^\r\n]{1,70})\r?\n", lit)
    if not m or b"Content-Disposition" not in lit:
        return None
    boundary = m.group(1).rstrip(b"-")
    start = lit.find(b"--" + boundary)
    return bytes([0, len(boundary)]) + boundary + lit[start:]


def chunked_seed(lit: bytes):
    """The body after a head that says chunked, or a bare chunked body."""
    if b"chunked" in lit.lower() and b"\r\n\r\n" in lit:
        body = lit.split(b"\r\n\r\n", 1)[1]
        return b"\0" + body if body else None
    if re.match(rb"[0-9a-fA-F]+(;[^\r\n]*)?\r?\n", lit):
        return b"\0" + lit
    return None


def signed_seed(lit: bytes):
    """A signed value with the name it was signed for, under the secret
    `secret` (settings 0)."""
    m = re.match(rb"2\|\d+:-?\d+\|\d+:\d+\|\d+:([^|]*)\|", lit)
    if m:
        name = m.group(1)
    elif re.match(rb"[A-Za-z0-9+/=]*\|\d+\|[0-9a-f]+$", lit):
        name = b"user"
    else:
        return None
    return bytes([0, len(name)]) + name + lit


def main():
    seeds = {name: set() for name in [
        "request_head", "chunked", "multipart", "query", "cookie", "signed_value",
        "xsrf_token"]}
    for lit in literals():
        if not lit or len(lit) > 4096:
            continue
        if re.search(rb"HTTP/\d", lit) and re.match(rb"\s*[A-Z]+ ", lit):
            seeds["request_head"].add(b"\0" + lit)
        if (c := chunked_seed(lit)) is not None:
            seeds["chunked"].add(c)
        if (m := multipart_seed(lit)) is not None:
            seeds["multipart"].add(m)
            seeds["multipart"].add(bytes([1]) + m[1:])
        if b"=" in lit and b"\n" not in lit and len(lit) < 512:
            seeds["query"].add(b"\0" + lit)
            seeds["query"].add(b"\x03" + lit)
            if b";" in lit or b'"' in lit:
                seeds["cookie"].add(lit)
        if (s := signed_seed(lit)) is not None:
            seeds["signed_value"].add(s)
        if re.match(rb"\d\|", lit) or re.fullmatch(rb"[0-9a-fA-F]{8,64}", lit):
            seeds["xsrf_token"].add(b"\0" + lit)
    for target, found in seeds.items():
        out = ROOT / "fuzz" / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for seed in found:
            (out / ("seed-" + hashlib.sha1(seed).hexdigest())).write_bytes(seed)
        print(f"{target}: {len(found)} seeds")


if __name__ == "__main__":
    main()
