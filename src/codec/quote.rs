//! Quoting input in messages: at most a bounded prefix of any string, with its full length.

use std::borrow::Cow;

/// How many characters of an input string (a name, a pointer, a node label) a message quotes.
pub const QUOTE_CHARS: usize = 200;

/// How many characters of a whole message are shown; a message quoting inputs at most
/// [`QUOTE_CHARS`] each stays below it, so only an unbounded quote is ever cut.
pub const MESSAGE_CHARS: usize = 1000;

/// `s` for a message: whole if it has at most `max` characters, else its first `max`
/// characters followed by `… (N bytes)`, N being the length of all of `s`.
#[must_use]
pub fn bounded_to(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes)", &s[..cut], s.len())),
    }
}

/// [`bounded_to`] with [`QUOTE_CHARS`]: the one way an input string is quoted in a message.
#[must_use]
pub fn bounded(s: &str) -> Cow<'_, str> {
    bounded_to(s, QUOTE_CHARS)
}
