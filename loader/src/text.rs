//! Text shown to people — the CLI's text, JUnit and SARIF messages, the C API's and the guard's
//! reasons — with the characters that could change how it is displayed written as escapes: a
//! crafted file name cannot forge a line, move the cursor or colour a terminal.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

/// `text` (a path, a name or a sentence) with every character that is not plainly displayable
/// written as an escape, so it reads back unambiguously and the bytes it came from can be
/// recovered:
///
/// - `\` as `\\`; newline, tab and carriage return as `\n`, `\t`, `\r`;
/// - the other C0 controls and DEL (so ESC, which starts terminal escape sequences) as `\x1b`;
/// - C1 controls (U+0080–U+009F), the Unicode line and paragraph separators (U+2028, U+2029)
///   and bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E,
///   U+2066–U+2069: they reorder what follows them on screen) as `\u{85}`;
/// - bytes that are not UTF-8 (a path on Linux is bytes) as `\xff`.
///
/// Everything else, `é` and `日本` included, is shown as it is. The one function every text output
/// uses; [`Report::about`](crate::Report::about) applies it to the path and the sentence.
pub fn escaped(text: impl AsRef<OsStr>) -> String {
    let bytes = text.as_ref().as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\0'..='\x1f' | '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                '\u{80}'..='\u{9f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escaped;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn controls_separators_bidi_and_bytes_are_escaped_and_the_rest_is_kept() {
        for (text, shown) in [
            ("plain/café/日本.so", "plain/café/日本.so"),
            ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
            ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
            ("\0\x07\x7f", "\\x00\\x07\\x7f"),
            ("next\u{85}line\u{9f}", "next\\u{85}line\\u{9f}"),
            ("ls\u{2028}ps\u{2029}", "ls\\u{2028}ps\\u{2029}"),
            ("abc\u{202e}fed\u{2066}\u{61c}", "abc\\u{202e}fed\\u{2066}\\u{61c}"),
            ("back\\slash", "back\\\\slash"),
        ] {
            assert_eq!(escaped(text), shown, "{text:?}");
        }
        assert_eq!(escaped(OsStr::from_bytes(b"d\xff/\xc3(\xe9.so")), "d\\xff/\\xc3(\\xe9.so");
        // Every byte that is not plainly displayable is gone from the result.
        let all: Vec<u8> = (0..=255).collect();
        let shown = escaped(OsStr::from_bytes(&all));
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
    }
}
