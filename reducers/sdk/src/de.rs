//! Decoding CBOR into serde types through a parsed value tree.
//!
//! The bytes are first parsed into [`cbor4ii::core::Value`] and then handed to serde by
//! [`ValueDe`]. Going through a tree (instead of a streaming deserializer) is what lets a
//! variant with a unit payload arrive in either legal form: the canonical one-entry map
//! `{"Tag": null}` that the kernel stores, or the bare text `"Tag"` serde writes. The
//! streaming deserializers of the common CBOR crates leave the `null` of the map form
//! unread, which corrupts everything after it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use cbor4ii::core::Value;
use cbor4ii::core::dec::{Decode, Reference};
use cbor4ii::core::utils::SliceReader;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

/// A value could not be decoded: malformed CBOR, trailing bytes, a float or tag (which
/// AIR values never hold), or a shape the target type does not accept.
///
/// Deliberately carries no message: the module traps on it anyway, and formatting
/// machinery would cost code size in every reducer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CBOR value does not decode into the requested type")
    }
}

impl core::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Error
    }
}

/// Parses exactly one CBOR item filling all of `bytes`.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, Error> {
    let mut reader = SliceReader::new(bytes);
    let value = Value::decode(&mut reader).map_err(|_| Error)?;
    // Whatever the reader did not consume is trailing garbage.
    let rest = cbor4ii::core::dec::Read::fill(&mut reader, 1).map_err(|_| Error)?;
    let rest = match rest {
        Reference::Long(b) => b.len(),
        Reference::Short(b) => b.len(),
    };
    if rest == 0 { Ok(value) } else { Err(Error) }
}

/// Decodes `bytes` (one CBOR item, nothing after it) into a `T`.
///
/// Accepts the forms the kernel writes (canonical CBOR of AIR values) and those serde
/// writes; rejects floats and tags.
///
/// # Errors
///
/// [`Error`] if the bytes are not one CBOR item or do not fit `T`.
pub fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    T::deserialize(ValueDe(parse(bytes)?))
}

/// A serde deserializer over an owned parsed value.
pub(crate) struct ValueDe(pub(crate) Value);

impl<'de> IntoDeserializer<'de, Error> for ValueDe {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

fn seq<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let mut access = SeqDeserializer::new(items.into_iter().map(ValueDe));
    let v = visitor.visit_seq(&mut access)?;
    access.end()?;
    Ok(v)
}

fn map<'de, V: Visitor<'de>>(entries: Vec<(Value, Value)>, visitor: V) -> Result<V::Value, Error> {
    let mut access =
        MapDeserializer::new(entries.into_iter().map(|(k, v)| (ValueDe(k), ValueDe(v))));
    let v = visitor.visit_map(&mut access)?;
    access.end()?;
    Ok(v)
}

impl<'de> de::Deserializer<'de> for ValueDe {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Integer(i) => {
                if let Ok(u) = u64::try_from(i) {
                    visitor.visit_u64(u)
                } else if let Ok(s) = i64::try_from(i) {
                    visitor.visit_i64(s)
                } else {
                    visitor.visit_i128(i)
                }
            }
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Text(t) => visitor.visit_string(t),
            Value::Array(items) => seq(items, visitor),
            Value::Map(entries) => map(entries, visitor),
            _ => Err(Error),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            // `null` is the data model's unit; `[]` is how cbor4ii's serializer writes `()`.
            Value::Null => visitor.visit_unit(),
            Value::Array(items) if items.is_empty() => visitor.visit_unit(),
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

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Text(tag) => visitor.visit_enum(Variant { tag, payload: None }),
            Value::Map(mut entries) if entries.len() == 1 => {
                let Some((Value::Text(tag), payload)) = entries.pop() else {
                    return Err(Error);
                };
                visitor.visit_enum(Variant {
                    tag,
                    payload: Some(Box::new(payload)),
                })
            }
            _ => Err(Error),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// One variant: its tag and, in the map form, its payload.
struct Variant {
    tag: alloc::string::String,
    payload: Option<Box<Value>>,
}

impl<'de> de::EnumAccess<'de> for Variant {
    type Error = Error;
    type Variant = Payload;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Payload), Error> {
        let tag = seed.deserialize(ValueDe(Value::Text(self.tag)))?;
        Ok((tag, Payload(self.payload)))
    }
}

/// A variant's payload; `None` for the bare-text form of a unit variant.
struct Payload(Option<Box<Value>>);

impl Payload {
    fn value(self) -> Result<ValueDe, Error> {
        self.0.map(|v| ValueDe(*v)).ok_or(Error)
    }
}

impl<'de> de::VariantAccess<'de> for Payload {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.0.as_deref() {
            None | Some(Value::Null) => Ok(()),
            _ => Err(Error),
        }
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(self.value()?)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self.value()?, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self.value()?, visitor)
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
}
