//! Byte layouts shared by loose objects and packs: the stored form of one object.
//!
//! An object is stored as a small header (kind, encoding, size) and its payload, either as is
//! or as one zstd frame. The id is always of the uncompressed payload, never of stored bytes.

use std::io::Read;

use crate::object::Kind;

/// How the payload bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The payload as is (used when compression would not make it smaller).
    Raw = 0,
    /// One zstd frame that decompresses to the payload.
    Zstd = 1,
}

impl Encoding {
    /// The encoding for a header byte.
    #[must_use]
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Raw),
            1 => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// zstd level for objects written by `put` and batches: fast, with a useful ratio.
pub const ZSTD_LEVEL: i32 = 3;

/// Payloads smaller than this are stored raw: a zstd frame of a small object saves a few
/// bytes at best and costs microseconds per object, which dominates journal appends (an entry
/// is typically 100-300 bytes).
pub const MIN_COMPRESS: usize = 512;

/// Payloads this large are compressed with zstd's worker threads.
pub const MT_COMPRESS: usize = 4 << 20;

/// Decoded sizes above this are decompressed by streaming, so that a forged size field
/// cannot make a reader allocate more memory than the data really produces.
const BULK_DECOMPRESS_MAX: u64 = 1 << 20;

/// Compresses `payload` for storage, returning the encoding used and the stored bytes.
///
/// # Errors
/// An error message from zstd (it fails only on allocation failure or bad parameters).
pub fn compress(
    compressor: &mut zstd::bulk::Compressor<'_>,
    payload: &[u8],
) -> Result<(Encoding, Vec<u8>), String> {
    if payload.len() < MIN_COMPRESS {
        return Ok((Encoding::Raw, payload.to_vec()));
    }
    let packed = if payload.len() >= MT_COMPRESS {
        let mut enc =
            zstd::stream::Encoder::new(Vec::new(), ZSTD_LEVEL).map_err(|e| e.to_string())?;
        let workers = u32::try_from(rayon::current_num_threads()).unwrap_or(1);
        enc.multithread(workers).map_err(|e| e.to_string())?;
        enc.include_contentsize(true).map_err(|e| e.to_string())?;
        enc.set_pledged_src_size(Some(payload.len() as u64))
            .map_err(|e| e.to_string())?;
        std::io::Write::write_all(&mut enc, payload).map_err(|e| e.to_string())?;
        enc.finish().map_err(|e| e.to_string())?
    } else {
        compressor.compress(payload).map_err(|e| e.to_string())?
    };
    if packed.len() >= payload.len() {
        Ok((Encoding::Raw, payload.to_vec()))
    } else {
        Ok((Encoding::Zstd, packed))
    }
}

/// A new bulk compressor at the store's level.
///
/// # Errors
/// zstd's message if the context cannot be created.
pub fn compressor() -> Result<zstd::bulk::Compressor<'static>, String> {
    zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| e.to_string())
}

/// Restores a payload of declared `size` from its stored bytes.
///
/// # Errors
/// A message if the stored bytes are not a single valid frame of exactly `size` bytes.
pub fn decompress(encoding: Encoding, stored: &[u8], size: u64) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Raw => {
            if stored.len() as u64 == size {
                Ok(stored.to_vec())
            } else {
                Err(format!(
                    "raw payload is {} bytes, header says {size}",
                    stored.len()
                ))
            }
        }
        Encoding::Zstd => {
            check_single_frame(stored)?;
            if size <= BULK_DECOMPRESS_MAX {
                decompress_bulk(stored, size)
            } else {
                decompress_stream(stored, size)
            }
        }
    }
}

/// The magic number that starts every (non-skippable) zstd frame, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Stored zstd bytes must be exactly one ordinary frame: no skippable frames, nothing after it.
fn check_single_frame(stored: &[u8]) -> Result<(), String> {
    if !stored.starts_with(&ZSTD_MAGIC) {
        return Err("stored bytes do not start with a zstd frame".into());
    }
    match zstd::zstd_safe::find_frame_compressed_size(stored) {
        Ok(n) if n == stored.len() => Ok(()),
        Ok(n) => Err(format!("{} bytes follow the zstd frame", stored.len() - n)),
        Err(code) => Err(format!("zstd: {}", zstd::zstd_safe::get_error_name(code))),
    }
}

fn decompress_bulk(stored: &[u8], size: u64) -> Result<Vec<u8>, String> {
    thread_local! {
        // A zstd context is costly to create; reads of many small objects reuse one per thread.
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let cap = usize::try_from(size).map_err(|_| "size too large".to_owned())?;
    let mut out = Vec::with_capacity(cap);
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?);
        }
        let d = slot.as_mut().expect("just set");
        d.decompress_to_buffer(stored, &mut out)
            .map_err(|e| format!("zstd: {e}"))
    })?;
    check_size(out.len(), size)?;
    Ok(out)
}

fn decompress_stream(stored: &[u8], size: u64) -> Result<Vec<u8>, String> {
    let mut dec = zstd::stream::read::Decoder::with_buffer(stored)
        .map_err(|e| format!("zstd: {e}"))?
        .single_frame();
    let mut out = Vec::new();
    // Read at most one byte more than declared: a longer payload is detected without
    // unbounded allocation.
    (&mut dec)
        .take(size.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("zstd: {e}"))?;
    check_size(out.len(), size)?;
    Ok(out)
}

fn check_size(got: usize, size: u64) -> Result<(), String> {
    if got as u64 == size {
        Ok(())
    } else {
        Err(format!(
            "payload decompressed to {got} bytes, header says {size}"
        ))
    }
}

/// Checks that `payload` is acceptable as an object of `kind`.
///
/// # Errors
/// The CBOR decoding error if a CBOR kind's payload is not one canonical data item.
pub fn validate_payload(kind: Kind, payload: &[u8]) -> Result<(), crate::codec::DecodeError> {
    if kind.is_cbor() {
        crate::codec::cbor::validate(payload)
    } else {
        Ok(())
    }
}

/// Reads a little-endian `u64` at `at`, if the slice is long enough.
#[must_use]
pub fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Reads a little-endian `u32` at `at`, if the slice is long enough.
#[must_use]
pub fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_wrong_sizes() {
        let mut c = compressor().unwrap();
        for payload in [
            vec![],
            vec![1u8; 10],
            vec![7u8; 100_000],
            (0..5_000_000u32).map(|i| (i % 251) as u8).collect(),
        ] {
            let (enc, stored) = compress(&mut c, &payload).unwrap();
            let size = payload.len() as u64;
            assert_eq!(decompress(enc, &stored, size).unwrap(), payload);
            assert!(decompress(enc, &stored, size + 1).is_err());
            if size > 0 {
                assert!(decompress(enc, &stored, size - 1).is_err());
            }
        }
        assert!(decompress(Encoding::Zstd, b"not zstd", 5).is_err());
        // Exactly one ordinary frame: not two, not a skippable one, nothing after it.
        let (_, one) = compress(&mut c, &[1u8; 1000]).unwrap();
        let two = [one.clone(), one.clone()].concat();
        assert!(
            decompress(Encoding::Zstd, &two, 2000)
                .unwrap_err()
                .contains("follow")
        );
        assert!(decompress(Encoding::Zstd, &[one.clone(), vec![0]].concat(), 1000).is_err());
        let skippable = [0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
        assert!(decompress(Encoding::Zstd, &skippable, 0).is_err());
        assert!(decompress(Encoding::Zstd, b"not zstd", 5 << 30).is_err());
    }
}
