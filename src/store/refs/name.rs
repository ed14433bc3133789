//! Ref names and the rules they follow (objects-spec §8).

use std::fmt;
use std::str::FromStr;

use super::{LOCK_SUFFIX, MAX_NAME_LEN, REFS_DIR, RefError};
use crate::store::fs::TMP_PREFIX;

/// A validated full ref name such as `refs/heads/main` or `refs/worlds/demo`.
///
/// Rules: at most [`MAX_NAME_LEN`] bytes; components separated by single `/`, with no
/// leading or trailing `/`; the first component is `refs` and at least one follows it; each
/// component is non-empty, is not `.` or `..`, does not start with `.` or `tmp-` (temporary
/// files), does not end with `.lock` (lock files), and consists of ASCII letters, digits and
/// `- _ . + @ =`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefName(String);

impl RefName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`RefError::InvalidName`] saying which rule `name` breaks.
    pub fn new(name: &str) -> Result<Self, RefError> {
        match check_name(name) {
            Ok(()) => Ok(Self(name.to_owned())),
            Err(why) => Err(RefError::InvalidName {
                name: name.chars().take(300).collect(),
                why,
            }),
        }
    }

    /// The full name, e.g. `refs/heads/main`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(super) fn components(&self) -> Vec<&str> {
        self.0.split('/').collect()
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RefName {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, RefError> {
        Self::new(s)
    }
}

impl AsRef<str> for RefName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '@' | '=')
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a ref name is not empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a ref name has at most {MAX_NAME_LEN} bytes, this one has {}",
            name.len()
        ));
    }
    if name.starts_with('/') {
        return Err("a ref name does not start with `/`".into());
    }
    if name.ends_with('/') {
        return Err("a ref name does not end with `/`".into());
    }
    if name.contains("//") {
        return Err("a ref name has no empty components (`//`)".into());
    }
    if let Some(c) = name.chars().find(|&c| c != '/' && !allowed_char(c)) {
        return Err(bad_char(c));
    }
    let mut parts = name.split('/');
    if parts.next() != Some(REFS_DIR) {
        return Err("a ref name starts with `refs/`".into());
    }
    let mut count = 0;
    for part in parts {
        check_component(part)?;
        count += 1;
    }
    if count == 0 {
        return Err("a ref name has at least one component after `refs/`".into());
    }
    Ok(())
}

fn bad_char(c: char) -> String {
    format!("character {c:?} is not allowed (components use ASCII letters, digits and `-_.+@=`)")
}

/// Checks one component (the part between slashes) of a ref name.
pub(super) fn check_component(part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err("a ref name has no empty components".into());
    }
    if part == "." || part == ".." {
        return Err(format!("a ref name has no `{part}` components"));
    }
    if part.starts_with('.') {
        return Err(format!("component {part:?} starts with `.`"));
    }
    if part.ends_with(LOCK_SUFFIX) {
        return Err(format!(
            "component {part:?} ends with `{LOCK_SUFFIX}` (reserved for lock files)"
        ));
    }
    if part.starts_with(TMP_PREFIX) {
        return Err(format!(
            "component {part:?} starts with `{TMP_PREFIX}` (reserved for temporary files)"
        ));
    }
    if let Some(c) = part.chars().find(|&c| !allowed_char(c)) {
        return Err(bad_char(c));
    }
    Ok(())
}
