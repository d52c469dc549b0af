//! Schemaless JSON as the S3 sink's `JsonFormat` writes it, without the round trip:
//! the JsonConverter parses a record into a `serde_json::Value` and the format writes
//! that value back compactly; [`compact`] gives the same bytes straight from the
//! input, dropping the whitespace between tokens (the parse and the re-serialisation
//! were a quarter of the worker's CPU in the S3 benchmark, `scripts/bench-connect.sh`).
//!
//! It is deliberately narrower than JSON: it accepts only text whose round trip
//! provably comes back as the input less its insignificant whitespace, and anything
//! else (a float or an exponent, which ryu re-writes: `1.0`, `1e3` → `1000.0`; `-0`;
//! a `\u` or `\/` escape, decoded then written differently; keys out of the sorted
//! order a `serde_json::Map` writes them in, or repeated; deep nesting; a top-level
//! `null`; invalid UTF-8; anything not JSON) goes the old way: parsed, and refused
//! there if it is not JSON, so poison records reach the error handler with the
//! parser's message as before.

/// Deeper than this is left to the parser (serde_json refuses 128 levels).
const MAX_DEPTH: usize = 64;

/// Integers of at most this many digits fit an i64 and a u64 whatever their sign,
/// so serde_json keeps them integers and writes the same digits back.
const MAX_DIGITS: usize = 18;

/// What `serde_json::to_vec(&serde_json::from_slice::<Value>(bytes)?)` gives, when
/// `bytes` is a JSON value (not `null`) of the shapes above; `None` otherwise.
pub fn compact(bytes: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(bytes).ok()?;
    let mut s = Scan {
        b: bytes,
        i: 0,
        seg: 0,
        out: Vec::with_capacity(bytes.len()),
    };
    if !s.value(0) {
        return None;
    }
    s.ws();
    if s.i != bytes.len() {
        return None;
    }
    s.flush();
    (s.out != b"null").then_some(s.out)
}

/// The index of the first `"`, `\\` or control character in `b`: 32 bytes at a
/// time (a branch-free test the compiler vectorises), then bytewise in that chunk.
fn first_special(b: &[u8]) -> Option<usize> {
    let special = |x: u8| (x == b'"') | (x == b'\\') | (x < 0x20);
    let mut chunks = b.chunks_exact(32);
    let mut base = 0;
    for c in &mut chunks {
        if c.iter().fold(false, |a, &x| a | special(x)) {
            return c.iter().position(|&x| special(x)).map(|i| base + i);
        }
        base += 32;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| special(x))
        .map(|i| base + i)
}

/// A scan of the input; the text since `seg` is copied to `out` a run at a time
/// (at each stretch of whitespace, and at the end), not byte by byte.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    seg: usize,
    out: Vec<u8>,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn flush(&mut self) {
        self.out.extend_from_slice(&self.b[self.seg..self.i]);
        self.seg = self.i;
    }

    /// Skip the whitespace serde_json skips between tokens (and leaves out when writing).
    fn ws(&mut self) {
        if matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.flush();
            while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
                self.i += 1;
            }
            self.seg = self.i;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(true).is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => false,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    /// An object whose keys are strictly ascending bytewise: serde_json's map is a
    /// `BTreeMap` (no `preserve_order` in this build), written in key order, and a
    /// repeated key keeps only its last value.
    fn object(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        self.i += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut last: Option<&'a [u8]> = None;
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return false;
            }
            // Keys with escapes would compare by their decoded text: left to the parser.
            let Some(key) = self.string(false) else {
                return false;
            };
            if last.is_some_and(|l| l >= key) {
                return false;
            }
            last = Some(key);
            if !self.eat(b':') || !self.value(depth) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        self.i += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// A string's raw content (between the quotes). serde_json writes `"`, `\` and
    /// the control characters escaped (`\b \f \n \r \t`, else `\u00xx`) and every
    /// other character as itself: the escapes it writes itself are kept, `\/` and
    /// `\uXXXX` (decoded, then written differently) are not; `escapes` false keeps none.
    /// A raw control character is not JSON: refused (the parser reports it).
    fn string(&mut self, escapes: bool) -> Option<&'a [u8]> {
        let b = self.b;
        self.i += 1;
        let start = self.i;
        loop {
            self.i += first_special(&b[self.i..])?;
            match b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Some(&b[start..self.i - 1]);
                }
                b'\\' if escapes => match b.get(self.i + 1) {
                    Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// An integer written as serde_json writes it: no leading zero, no `-0`, no
    /// fraction or exponent (floats are re-written by ryu: `1.0`, `1e3` → `1000.0`).
    fn integer(&mut self) -> bool {
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = &self.b[start..self.i];
        let ok = match digits {
            [] => false,
            [b'0'] => !neg,
            [b'0', ..] => false,
            d => d.len() <= MAX_DIGITS,
        };
        ok && !matches!(self.peek(), Some(b'.' | b'e' | b'E'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the converter + JsonFormat write today for `text`, if it parses.
    fn round_trip(text: &[u8]) -> Option<Vec<u8>> {
        let v: serde_json::Value = serde_json::from_slice(text).ok()?;
        Some(serde_json::to_vec(&v).expect("a Value serialises"))
    }

    #[test]
    fn accepted_text_comes_out_as_the_round_trip_writes_it() {
        let accepted: &[&[u8]] = &[
            br#"{"id":1,"pad":"xxxx"}"#,
            br#"{"id": 1, "pad": "xxxx"}"#,
            b" \t\r\n{ \"a\" : { \"b\" : [ 1 , -2 , true , false , null , \"s p\" ] } , \"c\" : [ ] }\n",
            br#"{"a":{"b":[1,-2,true,false,null,"s"]},"c":[]}"#,
            br#"{}"#,
            br#"[]"#,
            br#"[1, 2]"#,
            br#""plain""#,
            br#"0"#,
            br#"-7"#,
            br#"123456789012345678"#,
            br#"-123456789012345678"#,
            br#"true"#,
            "{\"caf\u{e9}\":\"\u{1f600} \u{2028} \u{7f}\"}".as_bytes(),
            br#"{"s":"q\"b\\n\nr\rt\tb\bf\f"}"#,
            br#"{"A":1,"B":2,"a":3,"b":4}"#,
            br#"{"":1,"a":2}"#,
        ];
        for text in accepted {
            let shown = String::from_utf8_lossy(text);
            let out = compact(text);
            assert!(out.is_some(), "refused: {shown}");
            assert_eq!(out, round_trip(text), "{shown}");
        }
    }

    #[test]
    fn what_the_round_trip_changes_or_refuses_is_left_to_the_parser() {
        let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
        let refused: &[&[u8]] = &[
            b"null",
            b" null ",
            br#"{"a":1.0}"#,
            br#"{"a":1e3}"#,
            br#"{"a":1E3}"#,
            br#"{"a":1.5}"#,
            br#"{"a":-0}"#,
            br#"-0"#,
            br#"{"a":01}"#,
            br#"{"a":- 1}"#,
            br#"{"a":1234567890123456789}"#,
            br#"{"a":18446744073709551616}"#,
            br#"{"a":-9223372036854775809}"#,
            br#"{"a":"\u00e9"}"#,
            br#"{"a":"\u0001"}"#,
            br#"{"a":"\/"}"#,
            br#"{"a":"\x"}"#,
            br#"{"b":1,"a":2}"#,
            br#"{"a":1,"a":2}"#,
            br#"{"a\n":1}"#,
            b"{\"a\":\"raw\ttab\"}",
            b"{\"a\":1}\x0c",
            br#"{"a":1"#,
            br#"{"a":1,}"#,
            br#"[1,]"#,
            br#"{"a":1}x"#,
            br#"{"a":1} {"b":2}"#,
            br#"{"a":tru}"#,
            br#"{"a":nul}"#,
            br#"{a:1}"#,
            br#""unterminated"#,
            b"",
            b"  ",
            b"\"\xff\"",
            deep.as_bytes(),
        ];
        for text in refused {
            assert_eq!(compact(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    /// Random text from JSON's pieces (most of it not JSON): whatever is accepted
    /// must come out exactly as the parse and the compact write give it.
    #[test]
    fn random_text_accepted_only_as_the_round_trip_writes_it() {
        const PIECES: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "\"a\"",
            "\"b\"",
            "\"\\n\"",
            "\"\\u0041\"",
            "\"\\/\"",
            "\"\u{e9}\"",
            "0",
            "1",
            "-",
            "-0",
            "12",
            ".5",
            "e3",
            "true",
            "null",
            "false",
            " ",
            "\n",
            "\\",
            "\t",
            "\"x\\\"y\"",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        let mut accepted = 0;
        for _ in 0..300_000 {
            let len = 1 + next(12);
            let text: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
            if let Some(out) = compact(text.as_bytes()) {
                accepted += 1;
                assert_eq!(Some(out), round_trip(text.as_bytes()), "{text:?}");
            }
        }
        assert!(
            accepted > 1000,
            "the generator should reach the fast path ({accepted})"
        );
    }

    #[test]
    fn the_benchmark_line_is_accepted() {
        // scripts/bench-connect.sh writes Python's json.dumps: ", " and ": ".
        let line = format!(r#"{{"id": 12345, "pad": "{}"}}"#, "x".repeat(1000));
        let want = format!(r#"{{"id":12345,"pad":"{}"}}"#, "x".repeat(1000));
        assert_eq!(compact(line.as_bytes()), Some(want.into_bytes()));
    }
}
