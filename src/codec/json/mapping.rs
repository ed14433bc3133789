//! The JSON mapping of the data model: JSON read as a [`Value`] and a value written as JSON
//! (the table in the [parent module](super)).

use super::*;

// ---------------------------------------------------------------------------------------------
// JSON to the data model

/// Parses `text` and reads it as the JSON form of a [`Value`] (see the
/// [module documentation](super)).
///
/// # Errors
/// [`JsonError`] if `text` is not strict JSON or not the JSON form of a value; errors of the
/// mapping carry the position and pointer of the offending value.
pub fn from_json(text: &str) -> Result<Value, JsonError> {
    let j = parse_json(text)?;
    json_to_value(&j).map_err(|mut e| {
        if let Some(p) = &e.pointer {
            e.pos = pointer_position(text, p);
        }
        e
    })
}

/// Reads a parsed JSON tree as the JSON form of a [`Value`] (see the
/// [module documentation](super)).
///
/// # Errors
/// [`JsonError`] with the pointer of the offending value and no text position.
pub fn json_to_value(j: &Json) -> Result<Value, JsonError> {
    convert(j, 0).map_err(|e| JsonError {
        pos: None,
        pointer: Some(e.rev.iter().rev().fold(String::new(), |mut p, s| {
            p.push('/');
            p.push_str(s);
            p
        })),
        message: e.message,
    })
}

/// A mapping error: message and the escaped pointer segments, innermost first.
struct ConvError {
    rev: Vec<String>,
    message: String,
}

impl ConvError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            rev: Vec::new(),
            message: message.into(),
        }
    }

    /// Adds the (unescaped) segment through which the error was reached.
    fn under(mut self, segment: &str) -> Self {
        self.rev.push(pointer_escape(segment));
        self
    }
}

fn check_depth(depth: usize) -> Result<(), ConvError> {
    crate::codec::cbor::check_depth(depth, || {
        ConvError::new(format!(
            "nesting deeper than {MAX_DEPTH} levels of arrays, maps and links"
        ))
    })
}

/// Converts `j`, which sits at data-model depth `depth`.
fn convert(j: &Json, depth: usize) -> Result<Value, ConvError> {
    match j {
        Json::Null => Ok(Value::Null),
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Number(lit) => int_from_literal(lit)
            .map(Value::Int)
            .map_err(ConvError::new),
        Json::String(s) => Ok(Value::Text(s.clone())),
        Json::Array(items) => {
            check_depth(depth)?;
            items
                .iter()
                .enumerate()
                .map(|(i, x)| convert(x, depth + 1).map_err(|e| e.under(&i.to_string())))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        Json::Object(members) => match members.as_slice() {
            [(key, x)] if key.starts_with('$') => {
                extension(key, x, depth).map_err(|e| e.under(key))
            }
            _ => {
                check_depth(depth)?;
                let entries = members
                    .iter()
                    .map(|(k, x)| {
                        convert(x, depth + 1)
                            .map(|v| (Value::Text(k.clone()), v))
                            .map_err(|e| e.under(k))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Map::from_entries(entries).map(Value::Map).map_err(|d| {
                    let name = match &d.key {
                        Value::Text(t) => t.as_str(),
                        _ => "",
                    };
                    ConvError::new(format!("duplicate key {name:?}")).under(name)
                })
            }
        },
    }
}

/// Converts the value `x` of the single-member extension object `{key: x}` at `depth`.
fn extension(key: &str, x: &Json, depth: usize) -> Result<Value, ConvError> {
    match key {
        "$bytes" => {
            let Json::String(s) = x else {
                return Err(ConvError::new(format!(
                    "`$bytes` takes a base64 string, found {}",
                    x.type_name()
                )));
            };
            match BASE64.decode(s) {
                // Belt and braces: the engine is strict, but canonical means "re-encodes to
                // the same text".
                Ok(b) if BASE64.encode(&b) == *s => Ok(Value::Bytes(b)),
                Ok(_) => Err(ConvError::new("non-canonical base64")),
                Err(e) => Err(ConvError::new(format!(
                    "invalid base64 (standard alphabet, `=` padding, zero trailing bits): {e}"
                ))),
            }
        }
        "$link" => {
            let Json::String(s) = x else {
                return Err(ConvError::new(format!(
                    "`$link` takes a string `b3:<64 hex digits>`, found {}",
                    x.type_name()
                )));
            };
            check_depth(depth)?;
            s.parse::<ObjectId>()
                .map(Value::Link)
                .map_err(|e| ConvError::new(e.to_string()))
        }
        "$map" => {
            let Json::Array(pairs) = x else {
                return Err(ConvError::new(format!(
                    "`$map` takes an array of [key, value] pairs, found {}",
                    x.type_name()
                )));
            };
            check_depth(depth)?;
            let mut entries = Vec::with_capacity(pairs.len());
            for (i, pair) in pairs.iter().enumerate() {
                let seg = i.to_string();
                let [k, v] = pair_of(pair).map_err(|e| e.under(&seg))?;
                let k = convert(k, depth + 1).map_err(|e| e.under("0").under(&seg))?;
                let v = convert(v, depth + 1).map_err(|e| e.under("1").under(&seg))?;
                entries.push((k, v));
            }
            Map::from_entries(entries).map(Value::Map).map_err(|d| {
                // Point at the second occurrence of the key. All keys converted before.
                let second = pairs
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        pair_of(p)
                            .ok()
                            .and_then(|[k, _]| convert(k, depth + 1).ok())
                            .is_some_and(|k| k == d.key)
                    })
                    .nth(1)
                    .map_or(0, |(i, _)| i);
                ConvError::new(format!("duplicate key {}", to_json(&d.key)))
                    .under("0")
                    .under(&second.to_string())
            })
        }
        _ => Err(ConvError::new(format!(
            "unknown extension `{key}` (an object with a single member whose key starts with \
             `$` must be `$bytes`, `$link` or `$map`)"
        ))),
    }
}

/// The key and value of a `$map` entry.
fn pair_of(pair: &Json) -> Result<[&Json; 2], ConvError> {
    match pair {
        Json::Array(kv) => match kv.as_slice() {
            [k, v] => Ok([k, v]),
            _ => Err(ConvError::new(format!(
                "a `$map` entry is an array [key, value] of two elements, found {}",
                kv.len()
            ))),
        },
        other => Err(ConvError::new(format!(
            "a `$map` entry is an array [key, value], found {}",
            other.type_name()
        ))),
    }
}

/// Reads a JSON number literal as an integer of the data model.
fn int_from_literal(lit: &str) -> Result<Int, String> {
    let b = lit.as_bytes();
    if !matches!(scan_number(b), Ok(n) if n == b.len()) {
        let shown: String = lit.chars().take(40).collect();
        return Err(format!("invalid JSON number {shown:?}"));
    }
    if b.iter().any(|c| matches!(c, b'.' | b'e' | b'E')) {
        return Err("not an integer: fractions and exponents are not allowed".to_owned());
    }
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    const RANGE: &str = "integer out of range (-2^64 ..= 2^64-1)";
    let mut m: i128 = 0;
    for &d in digits {
        m = m
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(d - b'0')))
            .ok_or(RANGE)?;
    }
    Int::new(if neg { -m } else { m }).ok_or_else(|| RANGE.to_owned())
}

// ---------------------------------------------------------------------------------------------
// The data model to JSON

/// Renders `v` as compact JSON: no whitespace between tokens.
#[must_use]
pub fn to_json(v: &Value) -> String {
    let mut w = Writer {
        out: String::new(),
        pretty: false,
        level: 0,
    };
    w.value(v);
    w.out
}

/// Renders `v` as indented JSON: two spaces per level, no trailing newline.
#[must_use]
pub fn to_json_pretty(v: &Value) -> String {
    let mut w = Writer {
        out: String::new(),
        pretty: true,
        level: 0,
    };
    w.value(v);
    w.out
}

impl Json {
    /// Renders the tree as JSON text, members in their stored order; `pretty` indents by two
    /// spaces per level (no trailing newline), otherwise no whitespace between tokens.
    #[must_use]
    pub fn to_text(&self, pretty: bool) -> String {
        let mut w = Writer {
            out: String::new(),
            pretty,
            level: 0,
        };
        w.json(self);
        w.out
    }
}

/// Whether `m` renders as a plain JSON object rather than as `{"$map": ...}`.
fn is_plain_object(m: &Map) -> bool {
    let e = m.entries();
    e.iter().all(|(k, _)| matches!(k, Value::Text(_)))
        && !matches!(e, [(Value::Text(k), _)] if k.starts_with('$'))
}

struct Writer {
    out: String,
    pretty: bool,
    level: usize,
}

impl Writer {
    fn newline(&mut self) {
        if self.pretty {
            self.out.push('\n');
            for _ in 0..self.level {
                self.out.push_str("  ");
            }
        }
    }

    fn seq<T>(&mut self, open: char, close: char, items: &[T], mut f: impl FnMut(&mut Self, &T)) {
        self.out.push(open);
        if !items.is_empty() {
            self.level += 1;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.newline();
                f(self, item);
            }
            self.level -= 1;
            self.newline();
        }
        self.out.push(close);
    }

    fn key(&mut self, k: &str) {
        self.string(k);
        self.out.push(':');
        if self.pretty {
            self.out.push(' ');
        }
    }

    /// `{"<key>": <f>}`.
    fn single(&mut self, key: &str, f: impl FnOnce(&mut Self)) {
        let mut f = Some(f);
        self.seq('{', '}', &[()], |w, ()| {
            w.key(key);
            if let Some(f) = f.take() {
                f(w);
            }
        });
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Int(i) => self.out.push_str(&i.to_string()),
            Value::Bytes(b) => self.single("$bytes", |w| w.string(&BASE64.encode(b))),
            Value::Text(t) => self.string(t),
            Value::Array(items) => self.seq('[', ']', items, |w, x| w.value(x)),
            Value::Map(m) if is_plain_object(m) => {
                self.seq('{', '}', m.entries(), |w, (k, x)| {
                    if let Value::Text(k) = k {
                        w.key(k);
                    }
                    w.value(x);
                });
            }
            Value::Map(m) => self.single("$map", |w| {
                w.seq('[', ']', m.entries(), |w, (k, x)| {
                    w.seq('[', ']', &[k, x], |w, y| w.value(y));
                });
            }),
            Value::Bool(true) => self.out.push_str("true"),
            Value::Bool(false) => self.out.push_str("false"),
            Value::Null => self.out.push_str("null"),
            Value::Link(id) => self.single("$link", |w| w.string(&id.to_string())),
        }
    }

    fn json(&mut self, j: &Json) {
        match j {
            Json::Null => self.out.push_str("null"),
            Json::Bool(true) => self.out.push_str("true"),
            Json::Bool(false) => self.out.push_str("false"),
            Json::Number(n) => self.out.push_str(n),
            Json::String(t) => self.string(t),
            Json::Array(items) => self.seq('[', ']', items, |w, x| w.json(x)),
            Json::Object(members) => self.seq('{', '}', members, |w, (k, x)| {
                w.key(k);
                w.json(x);
            }),
        }
    }

    fn string(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '\u{8}' => self.out.push_str("\\b"),
                '\u{c}' => self.out.push_str("\\f"),
                c if c < ' ' => {
                    let n = c as usize;
                    self.out.push_str("\\u00");
                    self.out.push(char::from(HEX[n >> 4]));
                    self.out.push(char::from(HEX[n & 0xf]));
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }
}
