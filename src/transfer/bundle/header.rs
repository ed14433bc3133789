//! The bundle header: signature, capabilities, prerequisites, refs (objects-spec §14).

use super::{
    LINEAGE_CAPABILITY, LINEAGE_VERSION, MAX_CAPABILITIES, MAX_HEADER, MAX_LINE, MAX_PREREQUISITES,
    MAX_REFS, OBJECT_FORMAT, OBJECT_FORMAT_BLAKE3, SIGNATURE,
};
use crate::object::ObjectId;
use crate::store::refs::RefName;
use crate::transfer::TransferError;
use crate::world::refs::{self as world_refs, Role, Space};

/// A parsed bundle header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Capabilities (`@name=value`), sorted by name.
    pub capabilities: Vec<(String, String)>,
    /// Objects the receiver must hold already (with their closure), ascending.
    pub prerequisites: Vec<ObjectId>,
    /// Refs: target and name, sorted by name.
    pub refs: Vec<(ObjectId, RefName)>,
}

/// A malformed bundle header: the 1-based line, its byte offset, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("header line {line} (byte offset {offset}): {message}")]
pub struct HeaderError {
    /// The 1-based line number.
    pub line: usize,
    /// The byte offset of the line's first byte (or of the problem within it).
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

/// What a bundled ref is: a world, its checkpoint or its lineage, and the world's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefRole<'a> {
    /// `refs/worlds/NAME`: the head entry of world NAME.
    World(&'a str),
    /// `refs/checkpoints/NAME`: a snapshot of world NAME's head.
    Checkpoint(&'a str),
    /// `refs/lineage/NAME`: where world NAME was forked from (a lineage `value`).
    Lineage(&'a str),
}

impl<'a> RefRole<'a> {
    /// The world the ref belongs to.
    #[must_use]
    pub fn world(self) -> &'a str {
        match self {
            Self::World(w) | Self::Checkpoint(w) | Self::Lineage(w) => w,
        }
    }
}

/// The role of `name` if a bundle may carry it: `refs/worlds/NAME`,
/// `refs/checkpoints/NAME` or `refs/lineage/NAME` with NAME one component.
#[must_use]
pub fn ref_role(name: &RefName) -> Option<RefRole<'_>> {
    match world_refs::parse(name)? {
        (Space::Local, _, w) if w.contains('/') => None,
        (Space::Local, Role::Head, w) => Some(RefRole::World(w)),
        (Space::Local, Role::Checkpoint, w) => Some(RefRole::Checkpoint(w)),
        (Space::Local, Role::Lineage, w) => Some(RefRole::Lineage(w)),
        (Space::Tracking(_), _, _) => None,
    }
}

impl Header {
    /// A version 1 header with these prerequisites and refs (sorted here); the lineage
    /// capability is added when a lineage ref is among them.
    ///
    /// # Errors
    /// [`TransferError::Header`] for a ref a bundle may not carry, a name given twice, a
    /// checkpoint or lineage without its world, no refs, or more than the limits allow.
    pub fn new(
        mut prerequisites: Vec<ObjectId>,
        mut refs: Vec<(ObjectId, RefName)>,
    ) -> Result<Self, TransferError> {
        prerequisites.sort_unstable();
        prerequisites.dedup();
        refs.sort_by(|a, b| a.1.cmp(&b.1));
        let mut capabilities = Vec::new();
        if refs
            .iter()
            .any(|(_, n)| matches!(ref_role(n), Some(RefRole::Lineage(_))))
        {
            capabilities.push((LINEAGE_CAPABILITY.into(), LINEAGE_VERSION.into()));
        }
        capabilities.push((OBJECT_FORMAT.into(), OBJECT_FORMAT_BLAKE3.into()));
        let h = Self {
            capabilities,
            prerequisites,
            refs,
        };
        // Whatever is written must read back.
        let bytes = h.render();
        parse_header(&bytes).map_err(TransferError::Header)?;
        Ok(h)
    }

    /// The header's bytes, ending with the empty line.
    #[must_use]
    pub fn render(&self) -> Vec<u8> {
        let mut s = String::new();
        s.push_str(SIGNATURE);
        s.push('\n');
        for (k, v) in &self.capabilities {
            s.push_str(&format!("@{k}={v}\n"));
        }
        for p in &self.prerequisites {
            s.push_str(&format!("-{p}\n"));
        }
        for (id, name) in &self.refs {
            s.push_str(&format!("{id} {}\n", name.as_str()));
        }
        s.push('\n');
        s.into_bytes()
    }

    /// Whether the header has capability `name`.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.capabilities.iter().any(|(k, _)| k == name)
    }

    /// The target of ref `name`, if the bundle has it.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<ObjectId> {
        self.refs
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| *id)
    }
}

/// Which section of the header the parser is in; sections come in this order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Capabilities,
    Prerequisites,
    Refs,
}

/// Parses a bundle header from the start of `bytes` (which may continue past it), strictly:
/// the exact signature line; then capability lines (`@name=value`, names ascending), each
/// one known; prerequisite lines (`-b3:<64 hex>`, ascending); ref lines (`b3:<64 hex> NAME`,
/// names valid, ascending, only `refs/worlds/NAME` and `refs/checkpoints/NAME`, a checkpoint
/// only with its world); an empty line. Lines are at most [`MAX_LINE`] bytes of printable
/// ASCII ending in a line feed. Returns the header and its length in bytes.
///
/// # Errors
/// [`HeaderError`] naming the line, its offset and the first rule broken.
pub fn parse_header(bytes: &[u8]) -> Result<(Header, usize), HeaderError> {
    let mut h = Header {
        capabilities: Vec::new(),
        prerequisites: Vec::new(),
        refs: Vec::new(),
    };
    let mut section = Section::Capabilities;
    let mut pos = 0usize;
    let mut line_no = 0usize;
    loop {
        line_no += 1;
        let start = pos;
        let err = |message: String| HeaderError {
            line: line_no,
            offset: start as u64,
            message,
        };
        if pos >= MAX_HEADER {
            return Err(err(format!("the header exceeds {MAX_HEADER} bytes")));
        }
        let rest = &bytes[pos..];
        let window = &rest[..rest.len().min(MAX_LINE)];
        let Some(n) = window.iter().position(|b| *b == b'\n') else {
            if line_no == 1 && !format!("{SIGNATURE}\n").as_bytes().starts_with(rest) {
                return Err(err(format!(
                    "not an aos bundle: the first line must be `{SIGNATURE}`"
                )));
            }
            if rest.is_empty() && line_no == 1 {
                return Err(err("not an aos bundle: the file is empty".into()));
            }
            return Err(err(if rest.len() < MAX_LINE {
                "the header ends without an empty line (truncated?)".into()
            } else {
                format!("line longer than {MAX_LINE} bytes")
            }));
        };
        let raw = &rest[..n];
        if let Some(i) = raw.iter().position(|b| !(0x20..=0x7e).contains(b)) {
            return Err(HeaderError {
                line: line_no,
                offset: (start + i) as u64,
                message: format!(
                    "byte {:#04x} is not printable ASCII (lines end with a single LF)",
                    raw[i]
                ),
            });
        }
        // Printable ASCII is valid UTF-8.
        let line = std::str::from_utf8(raw).map_err(|e| err(e.to_string()))?;
        pos += n + 1;
        if line_no == 1 {
            if line != SIGNATURE {
                return Err(err(match line.strip_prefix("# aos bundle ") {
                    Some(v) => {
                        format!("unsupported bundle version `{v}` (this reader reads v1)")
                    }
                    None => format!("not an aos bundle: the first line must be `{SIGNATURE}`"),
                }));
            }
            continue;
        }
        if line.is_empty() {
            finish_header(&h).map_err(err)?;
            return Ok((h, pos));
        }
        if let Some(cap) = line.strip_prefix('@') {
            if section > Section::Capabilities {
                return Err(err("a capability after prerequisites or refs".into()));
            }
            let (name, value) = cap
                .split_once('=')
                .ok_or_else(|| err("a capability line is `@name=value`".into()))?;
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(err(format!(
                    "bad capability name `{name}` (1-64 of a-z, 0-9, -)"
                )));
            }
            if value.contains(' ') {
                return Err(err("a capability value has no spaces".into()));
            }
            match name {
                OBJECT_FORMAT if value == OBJECT_FORMAT_BLAKE3 => {}
                OBJECT_FORMAT => {
                    return Err(err(format!(
                        "unsupported object format `{value}` (this reader knows `{OBJECT_FORMAT_BLAKE3}`)"
                    )));
                }
                LINEAGE_CAPABILITY if value == LINEAGE_VERSION => {}
                LINEAGE_CAPABILITY => {
                    return Err(err(format!(
                        "unsupported lineage version `{value}` (this reader knows `{LINEAGE_VERSION}`)"
                    )));
                }
                _ => {
                    return Err(err(format!(
                        "unknown capability `@{name}` (this reader knows `@{LINEAGE_CAPABILITY}` \
                         and `@{OBJECT_FORMAT}`)"
                    )));
                }
            }
            if let Some((prev, _)) = h.capabilities.last() {
                if prev.as_str() == name {
                    return Err(err(format!("capability `{name}` given twice")));
                }
                if prev.as_str() > name {
                    return Err(err("capabilities not in ascending order of name".into()));
                }
            }
            if h.capabilities.len() >= MAX_CAPABILITIES {
                return Err(err(format!("more than {MAX_CAPABILITIES} capabilities")));
            }
            h.capabilities.push((name.to_owned(), value.to_owned()));
        } else if let Some(id) = line.strip_prefix('-') {
            if section > Section::Prerequisites {
                return Err(err("a prerequisite after refs".into()));
            }
            section = Section::Prerequisites;
            let id: ObjectId = id
                .parse()
                .map_err(|e| err(format!("bad prerequisite: {e}")))?;
            if let Some(prev) = h.prerequisites.last() {
                if *prev == id {
                    return Err(err(format!("prerequisite {id} given twice")));
                }
                if *prev > id {
                    return Err(err("prerequisites not in ascending order".into()));
                }
            }
            if h.prerequisites.len() >= MAX_PREREQUISITES {
                return Err(err(format!("more than {MAX_PREREQUISITES} prerequisites")));
            }
            h.prerequisites.push(id);
        } else {
            section = Section::Refs;
            let (id, name) = line
                .split_once(' ')
                .ok_or_else(|| err("a ref line is `b3:<64 hex> <ref name>`".into()))?;
            let id: ObjectId = id
                .parse()
                .map_err(|e| err(format!("bad ref target: {e}")))?;
            let name = RefName::new(name).map_err(|e| err(e.to_string()))?;
            match ref_role(&name) {
                None => {
                    return Err(err(format!(
                        "ref {} cannot be bundled (only refs/worlds/NAME, refs/checkpoints/NAME \
                         and refs/lineage/NAME)",
                        name.as_str()
                    )));
                }
                Some(RefRole::Lineage(_)) if !h.has(LINEAGE_CAPABILITY) => {
                    return Err(err(format!(
                        "ref {} needs the capability `@{LINEAGE_CAPABILITY}={LINEAGE_VERSION}`",
                        name.as_str()
                    )));
                }
                Some(_) => {}
            }
            if let Some((_, prev)) = h.refs.last() {
                if *prev == name {
                    return Err(err(format!("ref {} given twice", name.as_str())));
                }
                if *prev > name {
                    return Err(err("refs not in ascending order of name".into()));
                }
            }
            if h.refs.len() >= MAX_REFS {
                return Err(err(format!("more than {MAX_REFS} refs")));
            }
            h.refs.push((id, name));
        }
    }
}

/// Rules about the header as a whole, checked at its empty line.
fn finish_header(h: &Header) -> Result<(), String> {
    if !h.has(OBJECT_FORMAT) {
        return Err(format!(
            "the header lacks `@{OBJECT_FORMAT}={OBJECT_FORMAT_BLAKE3}`"
        ));
    }
    if h.refs.is_empty() {
        return Err("a bundle carries at least one ref".into());
    }
    let mut lineage = false;
    for (_, name) in &h.refs {
        let (what, w) = match ref_role(name) {
            Some(RefRole::Checkpoint(w)) => ("a checkpoint", w),
            Some(RefRole::Lineage(w)) => {
                lineage = true;
                ("a lineage", w)
            }
            _ => continue,
        };
        let world = world_refs::ref_name(Space::Local, Role::Head, w).map_err(|e| e.to_string())?;
        if h.get(world.as_str()).is_none() {
            return Err(format!(
                "{} without {world} ({what} travels with its world)",
                name.as_str()
            ));
        }
    }
    if h.has(LINEAGE_CAPABILITY) && !lineage {
        return Err(format!(
            "`@{LINEAGE_CAPABILITY}` is given but the bundle carries no refs/lineage/NAME ref"
        ));
    }
    Ok(())
}
