//! Identifiers of AIR: qualified names (`namespace/name@N`), small identifiers, and the
//! lowercase dotted strings of effect kinds and capability types.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid identifier of some sort.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {text:?}: {why}")]
pub struct NameError {
    /// What sort of identifier was expected.
    pub what: &'static str,
    /// The rejected text.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

fn err(what: &'static str, text: &str, why: &'static str) -> NameError {
    NameError {
        what,
        text: text.chars().take(100).collect(),
        why,
    }
}

/// A qualified name `namespace/name@N`: namespace `[a-z][a-z0-9._-]*`, name
/// `[A-Za-z][A-Za-z0-9._-]*`, N a positive integer without leading zeros.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Validates `s` as a qualified name.
    ///
    /// # Errors
    /// [`NameError`] naming the rule broken.
    pub fn new(s: &str) -> Result<Self, NameError> {
        const W: &str = "name";
        let (ns, rest) = s
            .split_once('/')
            .ok_or_else(|| err(W, s, "expected namespace/name@version"))?;
        let (name, ver) = rest
            .rsplit_once('@')
            .ok_or_else(|| err(W, s, "expected a version suffix @N"))?;
        let mut ns_chars = ns.bytes();
        if !ns_chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
            return Err(err(
                W,
                s,
                "the namespace must start with a lowercase letter",
            ));
        }
        if !ns_chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        }) {
            return Err(err(
                W,
                s,
                "the namespace may contain only a-z, 0-9, '.', '_' and '-'",
            ));
        }
        let mut name_chars = name.bytes();
        if !name_chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
            return Err(err(W, s, "the name must start with a letter"));
        }
        if !name_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')) {
            return Err(err(
                W,
                s,
                "the name may contain only letters, digits, '.', '_' and '-'",
            ));
        }
        let ok_version = !ver.is_empty()
            && !ver.starts_with('0')
            && ver.bytes().all(|c| c.is_ascii_digit())
            && ver.parse::<u64>().is_ok();
        if !ok_version {
            return Err(err(
                W,
                s,
                "the version must be a positive integer without leading zeros",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The whole name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace (before `/`).
    #[must_use]
    pub fn namespace(&self) -> &str {
        self.0.split_once('/').map_or("", |(ns, _)| ns)
    }

    /// Whether the name is in the reserved `sys/` namespace.
    #[must_use]
    pub fn is_sys(&self) -> bool {
        self.namespace() == "sys"
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::new(s)
    }
}

/// Checks a small identifier (step id, variable name, cap grant name, slot name):
/// `[A-Za-z_][A-Za-z0-9_.-]{0,63}`.
///
/// # Errors
/// [`NameError`] naming the rule broken; `what` says which sort of identifier it is.
pub fn check_ident(what: &'static str, s: &str) -> Result<(), NameError> {
    let mut b = s.bytes();
    if !b
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
    {
        return Err(err(what, s, "must start with a letter or '_'"));
    }
    if s.len() > 64 {
        return Err(err(what, s, "at most 64 characters"));
    }
    if !b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')) {
        return Err(err(
            what,
            s,
            "may contain only letters, digits, '_', '.' and '-'",
        ));
    }
    Ok(())
}

/// Checks an effect kind or capability type: lowercase dotted, `[a-z][a-z0-9_.-]*`.
///
/// # Errors
/// [`NameError`] naming the rule broken.
pub fn check_dotted(what: &'static str, s: &str) -> Result<(), NameError> {
    let mut b = s.bytes();
    if !b.next().is_some_and(|c| c.is_ascii_lowercase()) {
        return Err(err(what, s, "must start with a lowercase letter"));
    }
    if !b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')) {
        return Err(err(what, s, "may contain only a-z, 0-9, '_', '.' and '-'"));
    }
    if s.ends_with('.') || s.contains("..") {
        return Err(err(what, s, "dots separate non-empty parts"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "com.acme/rss_fetch@1",
            "sys/HttpRequestParams@1",
            "demo/Counter-v2.x@12",
            "a/B@1",
        ] {
            assert!(Name::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "Com/x@1",
            "com/x",
            "com/x@0",
            "com/x@01",
            "com/x@",
            "com/1x@1",
            "/x@1",
            "com/@1",
            "com/x y@1",
            "com/x@1a",
            "com/x@99999999999999999999",
            "comx@1",
        ] {
            assert!(Name::new(bad).is_err(), "{bad}");
        }
        assert!(Name::new("sys/X@1").unwrap().is_sys());
    }

    #[test]
    fn idents_and_dotted() {
        assert!(check_ident("step id", "fetch_1.a-b").is_ok());
        assert!(check_ident("step id", "_x").is_ok());
        assert!(check_ident("step id", "1x").is_err());
        assert!(check_ident("step id", &"a".repeat(65)).is_err());
        assert!(check_ident("step id", &"a".repeat(64)).is_ok());
        assert!(check_dotted("effect kind", "http.request").is_ok());
        assert!(check_dotted("effect kind", "Http.request").is_err());
        assert!(check_dotted("effect kind", "http..x").is_err());
        assert!(check_dotted("effect kind", "http.").is_err());
    }
}
