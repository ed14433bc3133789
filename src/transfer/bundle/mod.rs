//! Bundles: worlds' histories, whole or from given entries on, in one file (objects-spec §14).
//!
//! ```text
//! # aos bundle v1              signature line
//! @lineage=1                   capabilities (a reader rejects any it does not know;
//! @object-format=blake3         `lineage` only when the bundle carries lineage refs)
//! -b3:<64 hex>                 prerequisites: entries the receiver must have already
//! b3:<64 hex> refs/worlds/NAME refs (and refs/checkpoints/NAME, refs/lineage/NAME)
//!                              an empty line ends the header
//! aosP ‖ 1 ‖ entries ‖ N ‖ C   the objects: exactly a pack stream (§7)
//! checksum                     BLAKE3 of every preceding byte of the file
//! ```
//!
//! [`create`] (module `write`) writes a bundle from a store, [`parse_header`] (module
//! `header`) reads its header, [`BundleReader`] (module `read`) reads one (it is an
//! [`ObjectSource`](super::ObjectSource)), [`verify`] (module `apply`) checks one completely,
//! and [`unbundle`] stores its objects and moves every world's refs in one transaction,
//! fast-forward only unless forced.

use std::io;
use std::path::Path;

use super::TransferError;

/// The first line of a version 1 bundle, without its line feed.
pub const SIGNATURE: &str = "# aos bundle v1";
/// The capability naming the object id format, which every bundle has.
pub const OBJECT_FORMAT: &str = "object-format";
/// The capability a bundle has exactly when it carries lineage refs (`refs/lineage/NAME`,
/// objects-spec §15); readers that predate lineage reject such a bundle as an unknown
/// capability.
pub const LINEAGE_CAPABILITY: &str = "lineage";
/// The value of [`LINEAGE_CAPABILITY`]: lineage version 1.
pub const LINEAGE_VERSION: &str = "1";
/// The value of [`OBJECT_FORMAT`]: ids are BLAKE3 with the kind prefix (objects-spec §4).
pub const OBJECT_FORMAT_BLAKE3: &str = "blake3";
/// The longest header line, line feed included.
pub const MAX_LINE: usize = 1024;
/// The most header bytes.
pub const MAX_HEADER: usize = 16 << 20;
/// The most capability lines.
pub const MAX_CAPABILITIES: usize = 64;
/// The most prerequisite lines.
pub const MAX_PREREQUISITES: usize = 65_536;
/// The most ref lines.
pub const MAX_REFS: usize = 65_536;
/// Length of the pack stream's trailer (entry count and pack checksum) plus the bundle's
/// checksum.
pub const TRAILER_LEN: u64 = 8 + 32 + 32;

/// I/O buffer of the reader and writer; also the largest object read through the buffer.
const BUF: usize = 4 << 20;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TransferError + '_ {
    move |source| TransferError::Io {
        path: path.to_owned(),
        source,
    }
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

mod apply;
mod header;
mod read;
mod write;

pub use apply::*;
pub use header::*;
pub use read::*;
pub use write::*;

#[cfg(test)]
mod tests;
