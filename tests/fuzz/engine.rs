//! A small deterministic mutation engine: a SplitMix64 generator, byte- and text-level mutations of seed
//! files, and the time budget. Case `k` of a target is a pure function of (seed, target, k), so a failure
//! is reproduced by its seed and case number (both in the saved file's name).

use std::time::Duration;

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, fast, well-mixed 64-bit generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// The run's seed: `NEUROTWIN_FUZZ_SEED` (decimal), default a fixed constant so CI is reproducible.
pub fn fuzz_seed() -> u64 {
    std::env::var("NEUROTWIN_FUZZ_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(20)
}

/// The generator of case `case` of `target`.
pub fn case_rng(target: &str, case: u64) -> Rng {
    let h = target.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01B3));
    let mut r = Rng::new(fuzz_seed() ^ h ^ case.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next_u64();
    r
}

/// Time budget per target: `NEUROTWIN_FUZZ_SECONDS` (default 3 s).
pub fn budget() -> Duration {
    let s = std::env::var("NEUROTWIN_FUZZ_SECONDS").ok().and_then(|s| s.trim().parse::<f64>().ok()).unwrap_or(3.0);
    Duration::from_secs_f64(s.clamp(0.0, 86_400.0))
}

/// What a seed file is: text (CSV, TOML, JSON) gets line and token mutations too.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    Text,
    Binary,
}

/// A mutated input, the mutations applied and what it is (for the failure report).
pub struct Mutated {
    pub bytes: Vec<u8>,
    pub ops: Vec<&'static str>,
    /// Which file it replaces and the rest of the case's setup, set by the target.
    pub note: String,
}

/// Largest mutated input (bytes); longer results are truncated.
const MAX_LEN: usize = 4 << 20;

/// Numbers that break parsers and arithmetic: zero, negatives, overflow, non-finite, huge lengths.
pub const EXTREME_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0",
    "0.0",
    "1e308",
    "-1e308",
    "1e-320",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "4294967295",
    "4294967296",
    "2147483648",
    "65536",
    "1e9",
    "1e12",
    "99999999999999999999999",
    "0x7fffffff",
    "1.5",
];

/// Bytes that are syntax somewhere (TOML, JSON, CSV, paths).
const TOKENS: &[&[u8]] = &[
    b"\"", b"'", b"[", b"]", b"{", b"}", b",", b"\n", b"\r\n", b"=", b":", b"\t", b"\0", b"#", b"\\", b"[[", b"]]",
    b"\"\"\"", b"../", b"/", b"null", b"true", b"[]", b"{}", b"-", b".", b"e",
];

/// Invalid UTF-8 sequences.
const BAD_UTF8: &[&[u8]] = &[b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xf0\x28\x8c\x28", b"\xed\xa0\x80", b"\xc0\xaf"];

/// Applies 1–4 (text) or 1–3 (binary) random mutations to a random corpus entry.
pub fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], shape: Shape) -> Mutated {
    let base = rng.below(corpus.len());
    mutate_from(rng, &corpus[base], corpus, shape)
}

/// Applies 1–4 (text) or 1–3 (binary) random mutations to `base` (half the time one); `corpus` supplies
/// splices.
pub fn mutate_from(rng: &mut Rng, base: &[u8], corpus: &[Vec<u8>], shape: Shape) -> Mutated {
    let mut bytes = base.to_vec();
    let mut ops = Vec::new();
    // Mostly one mutation, so that many cases still parse and reach the code behind the parser.
    let n = match rng.below(8) {
        0..=3 => 1,
        4 | 5 => 2,
        6 => 3,
        _ if shape == Shape::Text => 4,
        _ => 3,
    };
    for _ in 0..n {
        let op = match shape {
            Shape::Text => text_op(rng, &mut bytes, corpus),
            Shape::Binary => binary_op(rng, &mut bytes, corpus),
        };
        ops.push(op);
        bytes.truncate(MAX_LEN);
    }
    Mutated { bytes, ops, note: String::new() }
}

/// A random offset in `0..=len`; for binary files biased towards the first 4 KiB (HDF5 superblock and
/// root object headers).
fn offset(rng: &mut Rng, len: usize, head_bias: bool) -> usize {
    if head_bias && rng.chance(1, 2) { rng.below(len.min(4096) + 1) } else { rng.below(len + 1) }
}

fn text_op(rng: &mut Rng, b: &mut Vec<u8>, corpus: &[Vec<u8>]) -> &'static str {
    match rng.below(23) {
        20..=22 => swap_word(rng, b, corpus),
        0 => bit_flip(rng, b, false),
        1 => random_bytes(rng, b, false),
        2 => delete_range(rng, b, false),
        3 => truncate(rng, b),
        4 => duplicate_chunk(rng, b, false),
        5 => splice(rng, b, corpus),
        6 => line_shuffle(rng, b),
        7 | 8 => line_duplicate(rng, b, corpus),
        9 => line_delete(rng, b),
        10..=13 => extreme_number(rng, b),
        14 | 15 => long_string(rng, b),
        16 => {
            if rng.chance(1, 4) {
                b.clear();
                "empty"
            } else {
                insert_token(rng, b)
            }
        }
        17 => invalid_utf8(rng, b),
        _ => insert_token(rng, b),
    }
}

fn binary_op(rng: &mut Rng, b: &mut Vec<u8>, corpus: &[Vec<u8>]) -> &'static str {
    match rng.below(12) {
        0..=2 => bit_flip(rng, b, true),
        3 | 4 => int_overwrite(rng, b),
        5 => random_bytes(rng, b, true),
        6 => delete_range(rng, b, true),
        7 => truncate(rng, b),
        8 => duplicate_chunk(rng, b, true),
        9 => splice(rng, b, corpus),
        10 => zero_range(rng, b),
        _ => {
            let i = offset(rng, b.len().saturating_sub(1), true);
            if let Some(x) = b.get_mut(i) {
                *x = *rng.pick(&[0u8, 1, 0x7f, 0x80, 0xfe, 0xff]);
            }
            "interesting_byte"
        }
    }
}

fn bit_flip(rng: &mut Rng, b: &mut [u8], head: bool) -> &'static str {
    for _ in 0..1 + rng.below(4) {
        let i = offset(rng, b.len().saturating_sub(1), head);
        if let Some(x) = b.get_mut(i) {
            *x ^= 1 << rng.below(8);
        }
    }
    "bit_flip"
}

fn random_bytes(rng: &mut Rng, b: &mut Vec<u8>, head: bool) -> &'static str {
    let at = offset(rng, b.len(), head);
    let n = 1 + rng.below(16);
    let new: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
    b.splice(at..at, new);
    "insert_random_bytes"
}

fn delete_range(rng: &mut Rng, b: &mut Vec<u8>, head: bool) -> &'static str {
    let at = offset(rng, b.len(), head);
    let n = (1 + rng.below(64)).min(b.len() - at);
    b.drain(at..at + n);
    "delete_range"
}

fn truncate(rng: &mut Rng, b: &mut Vec<u8>) -> &'static str {
    let at = rng.below(b.len() + 1);
    b.truncate(at);
    "truncate"
}

fn duplicate_chunk(rng: &mut Rng, b: &mut Vec<u8>, head: bool) -> &'static str {
    if b.is_empty() {
        return "duplicate_chunk";
    }
    let from = rng.below(b.len());
    let n = (1 + rng.below(256)).min(b.len() - from);
    let chunk = b[from..from + n].to_vec();
    let at = offset(rng, b.len(), head);
    b.splice(at..at, chunk);
    "duplicate_chunk"
}

/// Replaces the tail from a random point with the tail of another corpus entry (same offset for
/// binaries of similar layout, anywhere for text).
fn splice(rng: &mut Rng, b: &mut Vec<u8>, corpus: &[Vec<u8>]) -> &'static str {
    let other = rng.pick(corpus);
    let at = rng.below(b.len() + 1);
    let from = if rng.chance(1, 2) { at.min(other.len()) } else { rng.below(other.len() + 1) };
    b.truncate(at);
    b.extend_from_slice(&other[from..]);
    "splice"
}

fn zero_range(rng: &mut Rng, b: &mut [u8]) -> &'static str {
    let at = offset(rng, b.len(), true);
    let n = (1 + rng.below(32)).min(b.len() - at);
    b[at..at + n].fill(0);
    "zero_range"
}

/// Overwrites 1, 2, 4 or 8 bytes with an extreme little-endian integer (lengths, offsets, sizes).
fn int_overwrite(rng: &mut Rng, b: &mut [u8]) -> &'static str {
    let width = *rng.pick(&[1usize, 2, 4, 8]);
    let value: u64 = *rng.pick(&[0, 1, u64::MAX, u64::MAX >> 1, 1 << 63, u32::MAX as u64, 1 << 31, 1 << 32, 0xffff]);
    if b.len() < width {
        return "int_overwrite";
    }
    let at = offset(rng, b.len() - width, true);
    b[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
    "int_overwrite"
}

/// Line boundaries `[start, end)` of `b` (without the newline).
fn lines(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            out.push((start, i));
            start = i + 1;
        }
    }
    if start < b.len() {
        out.push((start, b.len()));
    }
    out
}

fn join_lines(b: &[u8], order: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + order.len());
    for &(s, e) in order {
        out.extend_from_slice(&b[s..e]);
        out.push(b'\n');
    }
    out
}

fn line_shuffle(rng: &mut Rng, b: &mut Vec<u8>) -> &'static str {
    let mut ls = lines(b);
    if ls.len() > 1 {
        for _ in 0..1 + rng.below(4) {
            let (i, j) = (rng.below(ls.len()), rng.below(ls.len()));
            ls.swap(i, j);
        }
        *b = join_lines(b, &ls);
    }
    "line_shuffle"
}

/// Copies a line (of this file or another corpus entry) to a random place, 1–3 times.
fn line_duplicate(rng: &mut Rng, b: &mut Vec<u8>, corpus: &[Vec<u8>]) -> &'static str {
    let src = if rng.chance(1, 3) { rng.pick(corpus).clone() } else { b.clone() };
    let src_lines = lines(&src);
    if src_lines.is_empty() {
        return "line_duplicate";
    }
    let (s, e) = *rng.pick(&src_lines);
    let mut line = src[s..e].to_vec();
    line.push(b'\n');
    let targets = lines(b);
    let at = if targets.is_empty() { 0 } else { targets[rng.below(targets.len())].0 };
    for _ in 0..1 + rng.below(3) {
        b.splice(at..at, line.iter().copied());
    }
    "line_duplicate"
}

fn line_delete(rng: &mut Rng, b: &mut Vec<u8>) -> &'static str {
    let mut ls = lines(b);
    if !ls.is_empty() {
        ls.remove(rng.below(ls.len()));
        *b = join_lines(b, &ls);
    }
    "line_delete"
}

/// Spans of ASCII numbers (`-?[0-9][0-9.eE+-]*`).
fn number_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'_') {
            let start = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_digit() || matches!(b[j], b'.' | b'e' | b'E' | b'+' | b'-')) {
                j += 1;
            }
            out.push((start, j));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn extreme_number(rng: &mut Rng, b: &mut Vec<u8>) -> &'static str {
    let spans = number_spans(b);
    if spans.is_empty() {
        return insert_token(rng, b);
    }
    let (s, e) = *rng.pick(&spans);
    let v = rng.pick(EXTREME_NUMBERS).as_bytes();
    b.splice(s..e, v.iter().copied());
    "extreme_number"
}

/// Replaces the content of a quoted string (or, without one, a random place) with a long run of a
/// character: 1 kB to 1 MB.
fn long_string(rng: &mut Rng, b: &mut Vec<u8>) -> &'static str {
    let quotes: Vec<usize> = b.iter().enumerate().filter(|(_, c)| **c == b'"').map(|(i, _)| i).collect();
    let n = *rng.pick(&[1_000usize, 10_000, 100_000, 1 << 20]);
    let fill = *rng.pick(b"A9/ .");
    let long = vec![fill; n];
    if quotes.len() >= 2 {
        let k = rng.below(quotes.len() - 1);
        let (s, e) = (quotes[k] + 1, quotes[k + 1]);
        b.splice(s..e, long);
    } else {
        let at = rng.below(b.len() + 1);
        b.splice(at..at, long);
    }
    "long_string"
}

/// Spans of "words": runs of bytes that are not TOML/JSON/CSV syntax (keys, values, names, numbers).
fn word_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let syntax = |c: u8| b" ,\t\n\r\"'=:[]{}".contains(&c);
    let mut out = Vec::new();
    let mut start = None;
    for (i, &c) in b.iter().enumerate() {
        match (syntax(c), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, b.len()));
    }
    out
}

/// Replaces a word with a word of a corpus entry: the syntax stays valid, keys and values change (another
/// section's key, a name where a number was, a neuron name that does not exist, …).
fn swap_word(rng: &mut Rng, b: &mut Vec<u8>, corpus: &[Vec<u8>]) -> &'static str {
    let (here, other) = (word_spans(b), rng.pick(corpus));
    let there = word_spans(other);
    if here.is_empty() || there.is_empty() {
        return insert_token(rng, b);
    }
    let (s, e) = *rng.pick(&here);
    let (os, oe) = *rng.pick(&there);
    b.splice(s..e, other[os..oe].iter().copied());
    "swap_word"
}

fn insert_token(rng: &mut Rng, b: &mut Vec<u8>) -> &'static str {
    let t = *rng.pick(TOKENS);
    let at = rng.below(b.len() + 1);
    if rng.chance(1, 3) && at < b.len() {
        b[at] = t[0];
    } else {
        b.splice(at..at, t.iter().copied());
    }
    "token"
}

fn invalid_utf8(rng: &mut Rng, b: &mut Vec<u8>) -> &'static str {
    let t = *rng.pick(BAD_UTF8);
    let at = rng.below(b.len() + 1);
    b.splice(at..at, t.iter().copied());
    "invalid_utf8"
}
