//! Punycode (RFC 3492) encoding, as CPython's `punycode` codec writes it: what
//! Python/importdl.c uses to name the entry point of a module whose name is not ASCII (PEP 489).
//!
//! The codec's output is RFC 3492 §6.3 without the IDNA `xn--` prefix and without case
//! annotations: the basic (ASCII) code points in order and unchanged (upper case stays upper
//! case), then `-` if there were any, then the deltas as generalized variable-length integers in
//! lower-case digits. Written here (about 50 lines) rather than taken from a crate: the crates
//! that carry it (`idna`, `punycode`) add IDNA mapping or case rules around it, and what must
//! match is CPython's codec exactly, which `abi-tests/tests/loader_names.rs` compares with the
//! interpreters' own over hundreds of names.

/// RFC 3492 §5 parameters.
const BASE: u64 = 36;
const TMIN: u64 = 1;
const TMAX: u64 = 26;
const SKEW: u64 = 38;
const DAMP: u64 = 700;
const INITIAL_BIAS: u64 = 72;
const INITIAL_N: u32 = 0x80;

/// RFC 3492 §6.1.
fn adapt(delta: u64, points: u64, first: bool) -> u64 {
    let mut delta = if first { delta / DAMP } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - TMIN) * TMAX) / 2 {
        delta /= BASE - TMIN;
        k += BASE;
    }
    k + (BASE - TMIN + 1) * delta / (delta + SKEW)
}

/// The digit for `d` (< 36): `a`–`z`, then `0`–`9`.
fn digit(d: u64) -> char {
    let d = d as u8; // d < BASE
    char::from(if d < 26 { b'a' + d } else { b'0' + d - 26 })
}

/// `text` in punycode (RFC 3492 §6.3, no `xn--`), as Python's `text.encode('punycode')`.
///
/// Arithmetic is in `u64`: a delta is at most about (length + 1) × 0x110000, far from overflow
/// for any name a file system or a zip archive can hold.
pub(crate) fn encode(text: &str) -> String {
    let input: Vec<u32> = text.chars().map(u32::from).collect();
    let mut out: String = text.chars().filter(char::is_ascii).collect();
    let basic = out.len() as u64;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias, mut handled) = (INITIAL_N, 0u64, INITIAL_BIAS, basic);
    while handled < input.len() as u64 {
        // The smallest code point not yet handled (there is one: handled < length).
        let m = input.iter().copied().filter(|&c| c >= n).min().unwrap_or(n);
        delta += u64::from(m - n) * (handled + 1);
        n = m;
        for &c in &input {
            if c < n {
                delta += 1;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias { TMIN } else { (k - bias).min(TMAX) };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta += 1;
        n += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    /// RFC 3492 §7.1's samples (lower-cased where the RFC shows case annotations, which the
    /// codec does not write) and values from CPython 3.13's codec.
    #[test]
    fn rfc_samples_and_cpython_values() {
        for (text, expected) in [
            ("café", "caf-dma"),
            ("ÉCOLE", "COLE-pka"),
            ("naïve_x1", "nave_x1-pza"),
            ("aééb", "ab-bjaa"),
            ("日本語", "wgv71a119e"),
            ("Ünïcödé", "ncd-ska2e7a2c"),
            // RFC 3492 7.1 (A) Arabic (Egyptian), (B) Chinese (simplified), (L) 3年B組金八先生.
            (
                "\u{0644}\u{064A}\u{0647}\u{0645}\u{0627}\u{0628}\u{062A}\u{0643}\u{0644}\u{0645}\u{0648}\u{0634}\u{0639}\u{0631}\u{0628}\u{064A}\u{061F}",
                "egbpdaj6bu4bxfgehfvwxn",
            ),
            (
                "\u{4ED6}\u{4EEC}\u{4E3A}\u{4EC0}\u{4E48}\u{4E0D}\u{8BF4}\u{4E2D}\u{6587}",
                "ihqwcrb4cv8a8dqg056pqjye",
            ),
            ("3\u{5E74}B\u{7D44}\u{91D1}\u{516B}\u{5148}\u{751F}", "3B-ww4c5e180e575a65lsy2b"),
        ] {
            assert_eq!(encode(text), expected, "{text:?}");
        }
    }
}
