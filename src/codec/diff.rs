//! Structural differences between two JSON trees, addressed by JSON pointers (RFC 6901).
//!
//! Objects are compared member by member. Arrays whose elements are all objects carrying a
//! unique text `id` (or else `name`) are matched by that key, so inserting a plan step or a
//! manifest entry shows as one addition rather than a cascade of changes; other arrays are
//! compared position by position.

use super::json::{Json, pointer_escape};

/// One difference between `a` and `b`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Present only in `b`.
    Added {
        /// Where, in `b`.
        pointer: String,
        /// The new value.
        new: Json,
    },
    /// Present only in `a`.
    Removed {
        /// Where, in `a`.
        pointer: String,
        /// The old value.
        old: Json,
    },
    /// Present in both with different values (and not both objects or both arrays).
    Changed {
        /// Where (in `b`; equal to the place in `a` unless array elements moved).
        pointer: String,
        /// The old value.
        old: Json,
        /// The new value.
        new: Json,
    },
}

impl Change {
    /// The JSON pointer of the change.
    #[must_use]
    pub fn pointer(&self) -> &str {
        match self {
            Self::Added { pointer, .. }
            | Self::Removed { pointer, .. }
            | Self::Changed { pointer, .. } => pointer,
        }
    }

    /// `added`, `removed` or `changed`.
    #[must_use]
    pub fn op(&self) -> &'static str {
        match self {
            Self::Added { .. } => "added",
            Self::Removed { .. } => "removed",
            Self::Changed { .. } => "changed",
        }
    }
}

/// Every difference between `a` and `b`, in document order.
#[must_use]
pub fn diff(a: &Json, b: &Json) -> Vec<Change> {
    let mut out = Vec::new();
    walk(a, b, "", &mut out);
    out
}

fn walk(a: &Json, b: &Json, at: &str, out: &mut Vec<Change>) {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            for (k, va) in x {
                let p = format!("{at}/{}", pointer_escape(k));
                match y.iter().find(|(k2, _)| k2 == k) {
                    Some((_, vb)) => walk(va, vb, &p, out),
                    None => out.push(Change::Removed {
                        pointer: p,
                        old: va.clone(),
                    }),
                }
            }
            for (k, vb) in y {
                if !x.iter().any(|(k2, _)| k2 == k) {
                    out.push(Change::Added {
                        pointer: format!("{at}/{}", pointer_escape(k)),
                        new: vb.clone(),
                    });
                }
            }
        }
        (Json::Array(x), Json::Array(y)) => {
            match identity_key(x).filter(|k| identity_key(y) == Some(k)) {
                Some(key) => {
                    for (i, va) in x.iter().enumerate() {
                        let id = ident(va, key);
                        match y.iter().position(|vb| ident(vb, key) == id) {
                            Some(j) => walk(va, &y[j], &format!("{at}/{j}"), out),
                            None => out.push(Change::Removed {
                                pointer: format!("{at}/{i}"),
                                old: va.clone(),
                            }),
                        }
                    }
                    for (j, vb) in y.iter().enumerate() {
                        let id = ident(vb, key);
                        if !x.iter().any(|va| ident(va, key) == id) {
                            out.push(Change::Added {
                                pointer: format!("{at}/{j}"),
                                new: vb.clone(),
                            });
                        }
                    }
                }
                None => {
                    for (i, va) in x.iter().enumerate() {
                        match y.get(i) {
                            Some(vb) => walk(va, vb, &format!("{at}/{i}"), out),
                            None => out.push(Change::Removed {
                                pointer: format!("{at}/{i}"),
                                old: va.clone(),
                            }),
                        }
                    }
                    for (j, vb) in y.iter().enumerate().skip(x.len()) {
                        out.push(Change::Added {
                            pointer: format!("{at}/{j}"),
                            new: vb.clone(),
                        });
                    }
                }
            }
        }
        _ if a == b => {}
        _ => out.push(Change::Changed {
            pointer: at.to_owned(),
            old: a.clone(),
            new: b.clone(),
        }),
    }
}

fn ident<'a>(v: &'a Json, key: &str) -> Option<&'a str> {
    match v {
        Json::Object(m) => m.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
            Json::String(s) => Some(s.as_str()),
            _ => None,
        }),
        _ => None,
    }
}

/// `id` or `name`, if every element is an object with a distinct text value under it.
fn identity_key(items: &[Json]) -> Option<&'static str> {
    ["id", "name"].into_iter().find(|key| {
        let ids: Option<Vec<&str>> = items.iter().map(|v| ident(v, key)).collect();
        ids.is_some_and(|mut ids| {
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            ids.len() == n && n > 0
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::parse_json;

    fn d(a: &str, b: &str) -> Vec<(String, &'static str)> {
        diff(&parse_json(a).unwrap(), &parse_json(b).unwrap())
            .iter()
            .map(|c| (c.pointer().to_owned(), c.op()))
            .collect()
    }

    #[test]
    fn objects_arrays_and_scalars() {
        assert!(d(r#"{"a": [1, 2]}"#, r#"{"a": [1, 2]}"#).is_empty());
        assert_eq!(
            d(r#"{"a": 1, "b": 2}"#, r#"{"a": 3, "c": 2}"#),
            [
                ("/a".into(), "changed"),
                ("/b".into(), "removed"),
                ("/c".into(), "added")
            ]
        );
        assert_eq!(
            d("[1, 2, 3]", "[1, 5]"),
            [("/1".into(), "changed"), ("/2".into(), "removed")]
        );
        assert_eq!(
            d(r#"{"a/b~": 1}"#, r#"{"a/b~": 2}"#),
            [("/a~1b~0".into(), "changed")]
        );
        assert_eq!(d("1", r#""1""#), [(String::new(), "changed")]);
    }

    #[test]
    fn arrays_of_named_items_match_by_identity() {
        let a = r#"[{"id": "a", "op": "x"}, {"id": "b", "op": "y"}]"#;
        let b = r#"[{"id": "new", "op": "z"}, {"id": "a", "op": "x"}, {"id": "b", "op": "w"}]"#;
        assert_eq!(
            d(a, b),
            [("/2/op".into(), "changed"), ("/0".into(), "added")]
        );
        let a = r#"[{"name": "s/A@1"}, {"name": "s/B@1"}]"#;
        let b = r#"[{"name": "s/B@1"}]"#;
        assert_eq!(d(a, b), [("/0".into(), "removed")]);
    }
}
