//! Input quoted back to users. A problem quotes at most [`QUOTE_MAX`]
//! characters of any value it names (a 300 KB annotation pasted by mistake,
//! a key among it, must not come back whole), and a problem as a whole stays
//! under 4 KB whatever the input. Nothing here imports the crate: it sits at
//! the bottom of the import graph so that every layer can quote through it.

use std::borrow::Cow;
use std::fmt;

/// The most characters of one input value a message quotes.
pub const QUOTE_MAX: usize = 200;

/// A value quoted as Rust's `{:?}` does, cut after [`QUOTE_MAX`] characters.
pub struct Quoted<'a>(&'a str);

/// `quote(v)` in a `format!` instead of `{v:?}`.
pub fn quote(value: &str) -> Quoted<'_> {
    Quoted(value)
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.chars().count();
        if count <= QUOTE_MAX {
            return write!(f, "{:?}", self.0);
        }
        let cut: String = self.0.chars().take(QUOTE_MAX).collect();
        write!(f, "{cut:?}… ({count} characters)")
    }
}

/// `text` made fit for a problem's field: every run between quotes (`"` or
/// `` ` ``, as our messages and serde's quote values) and every unquoted
/// word cut after [`QUOTE_MAX`] characters, control characters as spaces,
/// and the whole at most `max_bytes` bytes (on a character boundary). Most
/// texts pass unchanged and borrowed.
pub fn bounded(text: &str, max_bytes: usize) -> Cow<'_, str> {
    let mut out = String::new();
    let mut changed = false;
    let mut open: Option<char> = None;
    let (mut run, mut escaped) = (0usize, false);
    for c in text.chars() {
        let shown = if c.is_control() { ' ' } else { c };
        changed |= shown != c;
        let escaping = escaped;
        escaped = open.is_some() && shown == '\\' && !escaping;
        match open {
            Some(q) if shown == q && !escaping => {
                open = None;
                run = 0;
            }
            None if matches!(shown, '"' | '`') => {
                open = Some(shown);
                run = 0;
            }
            // Outside quotes a run is a word.
            None if shown.is_whitespace() => run = 0,
            _ => run += 1,
        }
        if run > QUOTE_MAX {
            if run == QUOTE_MAX + 1 {
                changed = true;
                if !push_within(&mut out, '…', max_bytes) {
                    break;
                }
            }
            continue;
        }
        if !push_within(&mut out, shown, max_bytes) {
            changed = true;
            break;
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn push_within(out: &mut String, c: char, max_bytes: usize) -> bool {
    if out.len() + c.len_utf8() > max_bytes {
        return false;
    }
    out.push(c);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_value_is_quoted_as_debug_and_a_long_one_is_cut() {
        assert_eq!(quote("a\"b").to_string(), "\"a\\\"b\"");
        let long = "k".repeat(300_000);
        let shown = quote(&long).to_string();
        assert!(shown.starts_with(&format!("\"{}\"", "k".repeat(QUOTE_MAX))));
        assert!(shown.ends_with("… (300000 characters)"), "{shown}");
        assert!(shown.len() < 300);
    }

    #[test]
    fn quoted_runs_are_cut_and_the_whole_is_bounded() {
        assert!(matches!(bounded("plain text", 100), Cow::Borrowed(_)));
        let serde_like = format!(
            "unknown variant `{}`, expected one of `a`",
            "x".repeat(5000)
        );
        let b = bounded(&serde_like, 1000);
        assert!(b.contains(&"x".repeat(QUOTE_MAX)) && !b.contains(&"x".repeat(QUOTE_MAX + 1)));
        assert!(b.ends_with("expected one of `a`"), "{b}");
        // An unquoted word too.
        let word = format!("is {} not", "y".repeat(5000));
        let b = bounded(&word, 1000);
        assert!(
            !b.contains(&"y".repeat(QUOTE_MAX + 1)) && b.ends_with("… not"),
            "{b}"
        );
        let huge = "é ".repeat(10_000);
        let b = bounded(&huge, 999);
        assert!(b.len() <= 999 && b.chars().all(|c| c == 'é' || c == ' '));
        assert_eq!(bounded("a\u{1}b", 100), "a b");
        // An escaped quote does not end the run.
        let escaped = format!("string {:?}", "\"".repeat(400));
        assert!(bounded(&escaped, 4000).len() < 2 * QUOTE_MAX + 20);
    }
}
