//! JSON pointers built on the stack while a tree is read: nothing is allocated until one is
//! rendered for an error.

use std::fmt;

/// Where a value sits in the tree being read: a JSON pointer (RFC 6901), kept as a chain of
/// steps that borrow their parents, so that going one member or element deeper costs no
/// allocation.
///
/// ```
/// use aos::codec::shape::Path;
/// let steps = Path::ROOT.key("steps");
/// let third = steps.index(3);
/// assert_eq!(third.key("op").pointer(), "/steps/3/op");
/// assert_eq!(Path::base("/4").key("a/b").pointer(), "/4/a~1b");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Path<'a> {
    up: Option<&'a Path<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Step<'a> {
    /// The start: a pointer already rendered (and escaped), `""` for the top.
    Base(&'a str),
    /// A member of a map.
    Key(&'a str),
    /// An element of an array.
    Index(usize),
}

impl Path<'static> {
    /// The top of the tree: the pointer `""`.
    pub const ROOT: Self = Path {
        up: None,
        step: Step::Base(""),
    };
}

impl<'a> Path<'a> {
    /// A path that starts at the rendered pointer `pointer` (for a tree read as part of a larger
    /// one, e.g. `/4` for the fifth node of a file).
    #[must_use]
    pub fn base(pointer: &'a str) -> Self {
        Path {
            up: None,
            step: Step::Base(pointer),
        }
    }

    /// The path of member `key` of the map here.
    #[must_use]
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            up: Some(self),
            step: Step::Key(key),
        }
    }

    /// The path of element `i` of the array here.
    #[must_use]
    pub fn index(&'a self, i: usize) -> Path<'a> {
        Path {
            up: Some(self),
            step: Step::Index(i),
        }
    }

    /// The JSON pointer, rendered (keys escaped: `~` as `~0`, `/` as `~1`).
    #[must_use]
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        self.render(&mut out);
        out
    }

    fn render(&self, out: &mut String) {
        if let Some(up) = self.up {
            up.render(out);
        }
        match self.step {
            Step::Base(p) => out.push_str(p),
            Step::Key(k) => {
                out.push('/');
                for c in k.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        c => out.push(c),
                    }
                }
            }
            Step::Index(i) => {
                use fmt::Write as _;
                // Writing to a String cannot fail.
                let _ = write!(out, "/{i}");
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pointer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::pointer_escape;
    use proptest::prelude::*;

    #[test]
    fn pointers_render_like_rfc_6901() {
        assert_eq!(Path::ROOT.pointer(), "");
        let a = Path::ROOT.key("a");
        let b = a.index(0);
        assert_eq!(b.key("~x/y").pointer(), "/a/0/~0x~1y");
        assert_eq!(Path::base("/3/steps").index(12).to_string(), "/3/steps/12");
        assert_eq!(Path::ROOT.key("").pointer(), "/");
    }

    proptest! {
        #[test]
        fn keys_are_escaped_as_pointer_escape_does(keys in proptest::collection::vec(".{0,6}", 0..5)) {
            let mut want = String::new();
            for k in &keys {
                want.push('/');
                want.push_str(&pointer_escape(k));
            }
            fn walk(p: &Path<'_>, keys: &[String], want: &str) -> bool {
                match keys.split_first() {
                    None => p.pointer() == want,
                    Some((k, rest)) => walk(&p.key(k), rest, want),
                }
            }
            prop_assert!(walk(&Path::ROOT, &keys, &want));
        }
    }
}
