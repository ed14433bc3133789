//! Decoding CBOR straight from the bytes into serde types.
//!
//! A small zero-copy serde deserializer over the input slice: no intermediate value tree, text
//! and byte strings are borrowed, nothing is formatted. It accepts what the kernel writes
//! (canonical CBOR of AIR values) and what [`crate::to_cbor`] writes: definite lengths, any
//! integer width, map keys in any order (struct fields go through serde's field visitor), and
//! a variant with a unit payload in either form — the canonical one-entry map `{"Tag": null}`
//! or the bare text `"Tag"`. Floats, tags, `undefined`, other simple values and indefinite
//! lengths are rejected.

use core::fmt;

use serde::de::{self, DeserializeOwned, Visitor};

/// A value could not be decoded: malformed CBOR, trailing bytes, a float or tag (which
/// AIR values never hold), or a shape the target type does not accept.
///
/// Deliberately carries no message: the module traps on it anyway, and formatting
/// machinery would cost code size and fuel in every reducer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CBOR value does not decode into the requested type")
    }
}

impl core::error::Error for Error {}

// Every provided constructor is overridden so that none builds a message.
impl de::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Error
    }
    #[cold]
    fn invalid_type(_: de::Unexpected<'_>, _: &dyn de::Expected) -> Self {
        Error
    }
    #[cold]
    fn invalid_value(_: de::Unexpected<'_>, _: &dyn de::Expected) -> Self {
        Error
    }
    #[cold]
    fn invalid_length(_: usize, _: &dyn de::Expected) -> Self {
        Error
    }
    #[cold]
    fn unknown_variant(_: &str, _: &'static [&'static str]) -> Self {
        Error
    }
    #[cold]
    fn unknown_field(_: &str, _: &'static [&'static str]) -> Self {
        Error
    }
    #[cold]
    fn missing_field(_: &'static str) -> Self {
        Error
    }
    #[cold]
    fn duplicate_field(_: &'static str) -> Self {
        Error
    }
}

impl serde::ser::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Error
    }
}

/// CBOR major types.
pub(crate) const UINT: u8 = 0;
pub(crate) const NINT: u8 = 1;
pub(crate) const BYTES: u8 = 2;
pub(crate) const TEXT: u8 = 3;
pub(crate) const ARRAY: u8 = 4;
pub(crate) const MAP: u8 = 5;
pub(crate) const SIMPLE: u8 = 7;

/// A cursor over CBOR bytes.
pub(crate) struct Reader<'de> {
    pub(crate) bytes: &'de [u8],
    pub(crate) pos: usize,
}

impl<'de> Reader<'de> {
    pub(crate) fn new(bytes: &'de [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The next byte, not consumed.
    #[inline]
    pub(crate) fn peek(&self) -> Result<u8, Error> {
        match self.bytes.get(self.pos) {
            Some(b) => Ok(*b),
            None => Err(Error),
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'de [u8], Error> {
        let end = self.pos.wrapping_add(n);
        match self.bytes.get(self.pos..end) {
            Some(s) if end >= self.pos => {
                self.pos = end;
                Ok(s)
            }
            _ => Err(Error),
        }
    }

    /// Reads a head: (major type, argument). Rejects indefinite lengths and reserved
    /// additional information; for major 7 the argument is the simple value.
    ///
    /// Note on cost: the host's fuel metering charges a whole function body (minus loop
    /// bodies) on entry, so the common one-byte head is inline and small, and the longer
    /// forms live in a separate function.
    #[inline(always)]
    pub(crate) fn head(&mut self) -> Result<(u8, u64), Error> {
        let b = self.peek()?;
        self.pos += 1;
        let info = b & 0x1f;
        if info < 24 {
            Ok((b >> 5, u64::from(info)))
        } else {
            self.long_head(b)
        }
    }

    #[inline(never)]
    fn long_head(&mut self, b: u8) -> Result<(u8, u64), Error> {
        let major = b >> 5;
        let info = b & 0x1f;
        // Floats (and two-byte simple values) never occur in AIR values; 28..=31 are
        // reserved or indefinite.
        if major == SIMPLE || info > 27 {
            return Err(Error);
        }
        // 24..=27: a 1, 2, 4 or 8-byte big-endian argument.
        let mut arg = 0u64;
        for &x in self.take(1 << (info - 24))? {
            arg = (arg << 8) | u64::from(x);
        }
        Ok((major, arg))
    }

    /// Reads a head of major type `major`; its argument.
    #[inline(always)]
    pub(crate) fn expect(&mut self, major: u8) -> Result<u64, Error> {
        match self.head()? {
            (m, n) if m == major => Ok(n),
            _ => Err(Error),
        }
    }

    /// A length argument as usize, bounded by the bytes left (every item takes at least one
    /// byte), so a lying length cannot make anyone preallocate much.
    #[inline(always)]
    fn len(&self, arg: u64) -> Result<usize, Error> {
        let left = (self.bytes.len() - self.pos) as u64;
        if arg <= left {
            Ok(arg as usize)
        } else {
            Err(Error)
        }
    }

    #[inline(always)]
    pub(crate) fn str_body(&mut self, arg: u64) -> Result<&'de str, Error> {
        let n = self.len(arg)?;
        utf8(self.take(n)?)
    }

    #[inline(always)]
    pub(crate) fn bytes_body(&mut self, arg: u64) -> Result<&'de [u8], Error> {
        let n = self.len(arg)?;
        self.take(n)
    }

    /// Reads a text string.
    #[inline(never)]
    pub(crate) fn text(&mut self) -> Result<&'de str, Error> {
        let n = self.expect(TEXT)?;
        self.str_body(n)
    }

    /// Reads a byte string, or `null` as `None`.
    pub(crate) fn opt_bytes(&mut self) -> Result<Option<&'de [u8]>, Error> {
        match self.head()? {
            (BYTES, n) => Ok(Some(self.bytes_body(n)?)),
            (SIMPLE, 22) => Ok(None),
            _ => Err(Error),
        }
    }

    /// Reads a map head: its number of entries.
    #[inline(always)]
    pub(crate) fn map_len(&mut self) -> Result<usize, Error> {
        let n = self.expect(MAP)?;
        self.len(n)
    }

    /// Reads `{` or `(`-style: an array head, its number of elements.
    #[inline(always)]
    fn array_len(&mut self) -> Result<usize, Error> {
        let n = self.expect(ARRAY)?;
        self.len(n)
    }

    /// Skips one well-formed item (its extent only; text is not checked for UTF-8).
    pub(crate) fn skip(&mut self) -> Result<(), Error> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let (major, arg) = self.head()?;
            match major {
                BYTES | TEXT => {
                    self.bytes_body(arg)?;
                }
                ARRAY => pending = pending.checked_add(arg).ok_or(Error)?,
                MAP => {
                    let n = arg.checked_mul(2).ok_or(Error)?;
                    pending = pending.checked_add(n).ok_or(Error)?;
                }
                6 => return Err(Error),
                SIMPLE if !(20..=22).contains(&arg) => return Err(Error),
                _ => {}
            }
            // Each pending item needs at least one byte.
            if pending > (self.bytes.len() - self.pos) as u64 {
                return Err(Error);
            }
        }
        Ok(())
    }
}

/// UTF-8 validation with an ASCII fast path (keys and tags are ASCII).
#[inline(always)]
fn utf8(b: &[u8]) -> Result<&str, Error> {
    if is_ascii(b) {
        // SAFETY: ASCII is UTF-8.
        Ok(unsafe { core::str::from_utf8_unchecked(b) })
    } else {
        utf8_slow(b)
    }
}

/// Whether `b` is all ASCII, eight bytes per iteration (loop bodies cost fuel on every
/// iteration).
#[inline(never)]
fn is_ascii(b: &[u8]) -> bool {
    let mut acc = 0u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        acc |= u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    }
    for &x in chunks.remainder() {
        acc |= u64::from(x);
    }
    acc & 0x8080_8080_8080_8080 == 0
}

#[inline(never)]
fn utf8_slow(b: &[u8]) -> Result<&str, Error> {
    core::str::from_utf8(b).map_err(|_| Error)
}

/// Decodes `bytes` (one CBOR item, nothing after it) into a `T`.
///
/// Accepts the forms the kernel writes (canonical CBOR of AIR values) and those
/// [`crate::to_cbor`] writes; rejects floats, tags and indefinite lengths.
///
/// # Errors
///
/// [`Error`] if the bytes are not one CBOR item or do not fit `T`.
pub fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut de = Reader::new(bytes);
    let v = T::deserialize(&mut de)?;
    if de.pos == bytes.len() {
        Ok(v)
    } else {
        Err(Error)
    }
}

/// Elements of an array or entries of a map still to read.
struct Items<'a, 'de> {
    de: &'a mut Reader<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_key_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<S: de::DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

#[inline(never)]
fn seq_items<'de, V: Visitor<'de>>(
    de: &mut Reader<'de>,
    len: usize,
    visitor: V,
) -> Result<V::Value, Error> {
    let mut access = Items { de, left: len };
    let v = visitor.visit_seq(&mut access)?;
    // The visitor must have read every element.
    if access.left == 0 { Ok(v) } else { Err(Error) }
}

#[inline(never)]
fn map_items<'de, V: Visitor<'de>>(
    de: &mut Reader<'de>,
    len: usize,
    visitor: V,
) -> Result<V::Value, Error> {
    let mut access = Items { de, left: len };
    let v = visitor.visit_map(&mut access)?;
    if access.left == 0 { Ok(v) } else { Err(Error) }
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Error;

    #[inline(never)]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (major, arg) = self.head()?;
        match major {
            UINT => visitor.visit_u64(arg),
            // AIR integers fit i64; serde's i128 fallbacks would pull in formatting.
            NINT => match i64::try_from(arg) {
                Ok(n) => visitor.visit_i64(-1 - n),
                Err(_) => Err(Error),
            },
            BYTES => visitor.visit_borrowed_bytes(self.bytes_body(arg)?),
            TEXT => visitor.visit_borrowed_str(self.str_body(arg)?),
            ARRAY => {
                let n = self.len(arg)?;
                seq_items(self, n, visitor)
            }
            MAP => {
                let n = self.len(arg)?;
                map_items(self, n, visitor)
            }
            SIMPLE => match arg {
                20 => visitor.visit_bool(false),
                21 => visitor.visit_bool(true),
                22 => visitor.visit_unit(),
                _ => Err(Error),
            },
            _ => Err(Error),
        }
    }

    #[inline(never)]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.peek()? == 0xf6 {
            self.pos += 1;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // `null` is the data model's unit; an empty array is accepted too.
        match self.head()? {
            (SIMPLE, 22) | (ARRAY, 0) => visitor.visit_unit(),
            _ => Err(Error),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    #[inline(never)]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.head()? {
            (SIMPLE, 20) => visitor.visit_bool(false),
            (SIMPLE, 21) => visitor.visit_bool(true),
            _ => Err(Error),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    #[inline(never)]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let n = self.expect(UINT)?;
        visitor.visit_u64(n)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }
    #[inline(never)]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.head()? {
            (UINT, n) => visitor.visit_u64(n),
            (NINT, n) if n <= i64::MAX as u64 => visitor.visit_i64(-1 - n as i64),
            _ => Err(Error),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.text()?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.text()?)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Field names and variant tags are matched as bytes: no UTF-8 check needed (serde's
        // derived identifier visitors accept bytes).
        let n = self.expect(TEXT)?;
        visitor.visit_borrowed_bytes(self.bytes_body(n)?)
    }

    #[inline(never)]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.peek()? >> 5 == BYTES {
            let n = self.expect(BYTES)?;
            visitor.visit_borrowed_bytes(self.bytes_body(n)?)
        } else {
            self.deserialize_any(visitor)
        }
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    #[inline(never)]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let n = self.array_len()?;
        seq_items(self, n, visitor)
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }
    #[inline(never)]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let n = self.map_len()?;
        map_items(self, n, visitor)
    }
    #[inline(always)]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    #[inline(never)]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.peek()? >> 5 {
            // Bare text: a unit variant; the tag is read by `variant_seed`.
            TEXT => visitor.visit_enum(Variant {
                de: self,
                payload: false,
            }),
            MAP => {
                if self.map_len()? != 1 {
                    return Err(Error);
                }
                visitor.visit_enum(Variant {
                    de: self,
                    payload: true,
                })
            }
            _ => Err(Error),
        }
    }

    #[inline(never)]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.skip()?;
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        i128 u128 f32 f64 char
    }
}

/// One variant: the reader at its tag; `payload` tells the map form from bare text.
struct Variant<'a, 'de> {
    de: &'a mut Reader<'de>,
    payload: bool,
}

impl<'a, 'de> de::EnumAccess<'de> for Variant<'a, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let tag = seed.deserialize(&mut *self.de)?;
        Ok((tag, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Error;

    #[inline(never)]
    fn unit_variant(self) -> Result<(), Error> {
        if self.payload {
            match self.de.head()? {
                (SIMPLE, 22) => Ok(()),
                _ => Err(Error),
            }
        } else {
            Ok(())
        }
    }

    #[inline(never)]
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        if !self.payload {
            return Err(Error);
        }
        seed.deserialize(self.de)
    }

    #[inline(never)]
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        if !self.payload {
            return Err(Error);
        }
        de::Deserializer::deserialize_seq(self.de, visitor)
    }

    #[inline(never)]
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if !self.payload {
            return Err(Error);
        }
        de::Deserializer::deserialize_map(self.de, visitor)
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;

    use serde::{Deserialize, Serialize};

    use super::{Error, from_cbor};
    use crate::to_cbor;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum E {
        Unit,
        New(u64),
        Rec { a: i64 },
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct S {
        e: E,
        o: Option<String>,
        #[serde(with = "crate::bytes")]
        b: Vec<u8>,
    }

    #[test]
    fn unit_variant_in_both_forms() {
        // {"Unit": null}
        let map_form = [0xa1, 0x64, b'U', b'n', b'i', b't', 0xf6];
        assert_eq!(from_cbor::<E>(&map_form), Ok(E::Unit));
        assert_eq!(from_cbor::<E>(&to_cbor(&E::Unit)), Ok(E::Unit));
        // Followed by more data: the null must be consumed. [{"Unit": null}, 5]
        let mut arr = vec![0x82];
        arr.extend_from_slice(&map_form);
        arr.push(0x05);
        assert_eq!(from_cbor::<(E, u8)>(&arr), Ok((E::Unit, 5)));
        // A unit variant with a non-null payload is rejected.
        assert_eq!(
            from_cbor::<E>(&[0xa1, 0x64, b'U', b'n', b'i', b't', 0x01]),
            Err(Error)
        );
    }

    #[test]
    fn round_trips_and_rejections() {
        for v in [
            S {
                e: E::New(7),
                o: None,
                b: vec![1, 2],
            },
            S {
                e: E::Rec { a: -3 },
                o: Some("x".into()),
                b: vec![],
            },
        ] {
            let bytes = to_cbor(&v);
            assert_eq!(from_cbor::<S>(&bytes), Ok(v));
        }
        // Trailing bytes, floats and tags are errors.
        assert_eq!(from_cbor::<u64>(&[0x01, 0x02]), Err(Error));
        assert_eq!(from_cbor::<u64>(&[0xf9, 0x3c, 0x00]), Err(Error));
        assert_eq!(from_cbor::<u64>(&[0xc1, 0x01]), Err(Error));
        // Byte strings are byte strings.
        assert_eq!(
            to_cbor(&S {
                e: E::Unit,
                o: None,
                b: vec![9]
            })[..3],
            [0xa3, 0x61, b'e']
        );
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Wide {
        n: i64,
        big: u64,
        t: String,
        opt: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        skipped: Option<u8>,
        list: Vec<E>,
        unit: (),
        flag: bool,
    }

    #[test]
    fn wide_values_round_trip() {
        let v = Wide {
            n: i64::MIN,
            big: u64::MAX,
            t: "ünïcödé and a text longer than twenty-three bytes".into(),
            opt: Some(200),
            skipped: None,
            list: vec![E::Unit, E::New(1 << 40), E::Rec { a: -70_000 }],
            unit: (),
            flag: true,
        };
        let bytes = to_cbor(&v);
        // `skipped` is not written: the map has 7 entries.
        assert_eq!(bytes[0], 0xa7);
        assert_eq!(from_cbor::<Wide>(&bytes), Ok(v));
        // A sequence of unknown length gets its head fixed up.
        struct Odd;
        impl Serialize for Odd {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq((0u64..30).filter(|n| n % 2 == 1))
            }
        }
        let odd = to_cbor(&Odd);
        assert_eq!(odd[..2], [0x8f, 0x01]);
        assert_eq!(
            from_cbor::<Vec<u64>>(&odd),
            Ok((0u64..30).filter(|n| n % 2 == 1).collect())
        );
    }

    #[test]
    fn any_key_order_unknown_keys_and_long_heads() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Acc {
            balance: u64,
            ops: u64,
        }
        // {"ops": 1, "extra": [1, {"x": null}], "balance": 300} with a two-byte head for 300.
        let bytes = [
            0xa3, 0x63, b'o', b'p', b's', 0x01, 0x65, b'e', b'x', b't', b'r', b'a', 0x82, 0x01,
            0xa1, 0x61, b'x', 0xf6, 0x67, b'b', b'a', b'l', b'a', b'n', b'c', b'e', 0x19, 0x01,
            0x2c,
        ];
        assert_eq!(
            from_cbor::<Acc>(&bytes),
            Ok(Acc {
                balance: 300,
                ops: 1
            })
        );
        // Non-shortest heads are accepted too: 5 as a one-byte-argument head.
        assert_eq!(from_cbor::<u64>(&[0x18, 0x05]), Ok(5));
        // Truncated input, a lying length, indefinite lengths, invalid UTF-8.
        assert_eq!(from_cbor::<Acc>(&bytes[..bytes.len() - 1]), Err(Error));
        assert_eq!(
            from_cbor::<Vec<u8>>(&[0x9b, 0xff, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error)
        );
        assert_eq!(from_cbor::<Vec<u8>>(&[0x9f, 0xff]), Err(Error));
        assert_eq!(from_cbor::<String>(&[0x62, 0xc3, 0x28]), Err(Error));
        // A negative integer does not fit an unsigned one.
        assert_eq!(from_cbor::<u64>(&[0x20]), Err(Error));
        assert_eq!(from_cbor::<i8>(&[0x20]), Ok(-1));
    }
}
