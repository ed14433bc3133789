//! Scalars: the canonical text of `dec128` and `uuid`, hashes, RFC 3339 times, and integer
//! text and ranges.

use super::ValueError;
use crate::air::types::{PathFail, Type};
use crate::codec::cbor::{Int, Value};
use crate::object::ObjectId;

/// The canonical text of a `dec128` value written as `s` (rules in the
/// [module documentation](super)).
///
/// # Errors
/// [`ValueError`] (with an empty path) if `s` is not decimal text or does not fit decimal128
/// exactly.
pub fn canonical_dec128(s: &str) -> Result<String, ValueError> {
    dec128(s).map_err(|message| ValueError {
        path: String::new(),
        message,
    })
}

pub(super) fn dec128(s: &str) -> Result<String, String> {
    const SYNTAX: &str = "a dec128 is decimal text like \"12.5\", \"-3\" or \"1.5E+40\"";
    let b = s.as_bytes();
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let neg = b.first() == Some(&b'-');
    let int_end = digits_from(i);
    if int_end == i {
        return Err(SYNTAX.to_owned());
    }
    let int_part = &b[i..int_end];
    i = int_end;
    let mut frac_part: &[u8] = &[];
    if b.get(i) == Some(&b'.') {
        let end = digits_from(i + 1);
        if end == i + 1 {
            return Err(SYNTAX.to_owned());
        }
        frac_part = &b[i + 1..end];
        i = end;
    }
    // The written exponent, saturated far beyond any representable one.
    let mut exp: i128 = 0;
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let eneg = b.get(i) == Some(&b'-');
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let end = digits_from(i);
        if end == i {
            return Err(SYNTAX.to_owned());
        }
        for &d in &b[i..end] {
            exp = (exp * 10 + i128::from(d - b'0')).min(1_000_000_000_000);
        }
        if eneg {
            exp = -exp;
        }
        i = end;
    }
    if i != b.len() {
        return Err(SYNTAX.to_owned());
    }
    // Coefficient digits and exponent: value = digits × 10^e.
    let all: Vec<u8> = int_part.iter().chain(frac_part).copied().collect();
    let lead = all.iter().take_while(|&&d| d == b'0').count();
    if lead == all.len() {
        return Ok("0".to_owned());
    }
    let trail = all.iter().rev().take_while(|&&d| d == b'0').count();
    let d = &all[lead..all.len() - trail];
    let n = d.len();
    if n > 34 {
        return Err(format!(
            "{n} significant digits do not fit dec128 (at most 34; nothing is rounded)"
        ));
    }
    let len = |x: usize| i128::try_from(x).unwrap_or(i128::MAX);
    let e = exp - len(frac_part.len()) + len(trail);
    let n_i = len(n);
    if e < -6176 || e > 6111 + 34 - n_i {
        return Err("exponent out of range for dec128".to_owned());
    }
    let a = e + n_i - 1;
    let digits = std::str::from_utf8(d).unwrap_or("0");
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-6..=33).contains(&a) {
        if e >= 0 {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', usize::try_from(e).unwrap_or(0)));
        } else {
            // Number of integer digits.
            let p = n_i + e;
            if p > 0 {
                let p = usize::try_from(p).unwrap_or(0);
                out.push_str(&digits[..p]);
                out.push('.');
                out.push_str(&digits[p..]);
            } else {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', usize::try_from(-p).unwrap_or(0)));
                out.push_str(digits);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('E');
        out.push(if a < 0 { '-' } else { '+' });
        out.push_str(&a.abs().to_string());
    }
    Ok(out)
}

/// The canonical text of a uuid: 32 hex digits in groups 8-4-4-4-12, separated by `-`;
/// uppercase digits are accepted and lowered.
///
/// # Errors
/// [`ValueError`] (with an empty path) if `s` is not of that form.
pub fn canonical_uuid(s: &str) -> Result<String, ValueError> {
    uuid(s).map_err(|message| ValueError {
        path: String::new(),
        message,
    })
}

pub(super) fn uuid(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "{} is not a uuid (32 hex digits in groups 8-4-4-4-12)",
            shown(s)
        ))
    }
}

pub(super) fn hash(s: &str) -> Result<String, String> {
    s.parse::<ObjectId>()
        .map(|_| s.to_owned())
        .map_err(|e| format!("{} is not a hash `b3:<64 lowercase hex>`: {e}", shown(s)))
}

/// A string for messages: quoted, at most 40 characters.
pub(super) fn shown(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        t.push_str("...");
    }
    format!("{t:?}")
}

/// Reads an RFC 3339 timestamp with a time offset as nanoseconds since the Unix epoch:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t` and `z` may be lowercase). The fraction
/// may have any number of digits, but digits after the ninth must be zero; the leap second
/// `:60` is rejected (it has no POSIX time). The result must lie between the epoch and the
/// largest `nat` (2554-07-21T23:34:33.709551615Z).
///
/// # Errors
/// [`ValueError`] (with an empty path) naming the problem.
pub fn parse_rfc3339(s: &str) -> Result<u64, ValueError> {
    rfc3339(s).map_err(|message| ValueError {
        path: String::new(),
        message,
    })
}

pub(super) fn rfc3339(s: &str) -> Result<u64, String> {
    let syntax = || {
        format!(
            "{} is not an RFC 3339 time like \"2024-05-01T12:00:00Z\" or \
             \"2024-05-01T14:00:00.5+02:00\"",
            shown(s)
        )
    };
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i128> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i128, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i128::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return Err(syntax());
    };
    if !(at(4, b'-') && at(7, b'-') && (at(10, b'T') || at(10, b't')) && at(13, b':'))
        || !at(16, b':')
    {
        return Err(syntax());
    }
    let mut i = 19;
    let mut frac_ns: i128 = 0;
    if at(i, b'.') {
        let start = i + 1;
        let mut j = start;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j == start {
            return Err(syntax());
        }
        for (k, &c) in b[start..j].iter().enumerate() {
            let d = i128::from(c - b'0');
            if k < 9 {
                frac_ns = frac_ns * 10 + d;
            } else if d != 0 {
                return Err(format!("{} is more precise than nanoseconds", shown(s)));
            }
        }
        for _ in (j - start)..9 {
            frac_ns *= 10;
        }
        i = j;
    }
    let offset_s: i128 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() && at(i + 3, b':') => {
            let (Some(oh), Some(om)) = (num(i + 1, 2), num(i + 4, 2)) else {
                return Err(syntax());
            };
            if oh > 23 || om > 59 {
                return Err(format!("{}: the offset is out of range", shown(s)));
            }
            let o = oh * 3600 + om * 60;
            if c == b'-' { -o } else { o }
        }
        _ => return Err(syntax()),
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("{}: month {month} does not exist", shown(s))),
    };
    if day < 1 || day > month_days {
        return Err(format!("{}: day {day} does not exist", shown(s)));
    }
    if hour > 23 || minute > 59 {
        return Err(format!("{}: the time of day is out of range", shown(s)));
    }
    if second == 60 {
        return Err(format!(
            "{}: leap seconds have no time in nanoseconds since the epoch",
            shown(s)
        ));
    }
    if second > 59 {
        return Err(format!("{}: second {second} does not exist", shown(s)));
    }
    // Days from 1970-01-01 to the civil date (proleptic Gregorian calendar).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    let ns = secs * 1_000_000_000 + frac_ns;
    if ns < 0 {
        return Err(format!("{} is before the Unix epoch", shown(s)));
    }
    u64::try_from(ns).map_err(|_| {
        format!(
            "{} is after 2554-07-21T23:34:33.709551615Z, the last time a nat holds",
            shown(s)
        )
    })
}

/// Reads decimal integer text `-?(0|[1-9][0-9]*)`; `-0` is 0.
pub(super) fn int_text(s: &str) -> Option<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let b = digits.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    // 2^64 has 20 digits; longer text is out of every range here, and saturates.
    if b.len() > 30 {
        return Some(if neg { i128::MIN } else { i128::MAX });
    }
    let m = b
        .iter()
        .fold(0i128, |acc, &d| acc * 10 + i128::from(d - b'0'));
    Some(if neg { -m } else { m })
}

/// The integer kinds and their ranges.
#[derive(Clone, Copy)]
pub(super) enum IntKind {
    Signed,
    Unsigned,
}

impl IntKind {
    pub(super) fn of(t: &Type) -> Self {
        if matches!(t, Type::Int | Type::Duration) {
            Self::Signed
        } else {
            Self::Unsigned
        }
    }

    pub(super) fn check(self, n: i128, what: &str) -> Result<Value, PathFail> {
        let (ok, range) = match self {
            Self::Signed => (i64::try_from(n).is_ok(), "-2^63 ..= 2^63-1"),
            Self::Unsigned => (u64::try_from(n).is_ok(), "0 ..= 2^64-1"),
        };
        match Int::new(n) {
            Some(i) if ok => Ok(Value::Int(i)),
            _ => Err(PathFail::new(format!(
                "{n} is out of range for {what} ({range})"
            ))),
        }
    }
}

/// Reads a JSON number literal that must be an integer.
pub(super) fn number_int(lit: &str) -> Result<i128, PathFail> {
    int_text(lit).ok_or_else(|| {
        if lit.contains(['.', 'e', 'E']) {
            PathFail::new(format!(
                "{} is not an integer (no fraction or exponent)",
                shown(lit)
            ))
        } else {
            PathFail::new(format!("invalid number {}", shown(lit)))
        }
    })
}
