//! Refs (temporary minimal version; replaced by the refs work).
#![allow(clippy::unwrap_used, clippy::type_complexity)]
#![allow(missing_docs, clippy::missing_errors_doc)]
use crate::object::ObjectId;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error("bad ref {0}")]
    Bad(String),
    #[error("io {0}")]
    Io(#[from] std::io::Error),
}
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefName(String);
impl RefName {
    pub fn new(s: &str) -> Result<Self, RefError> {
        Ok(Self(s.to_owned()))
    }
}
impl std::fmt::Display for RefName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
pub enum Expected {
    Any,
    Absent,
    Is(ObjectId),
}
#[derive(Debug)]
pub struct Refs {
    root: PathBuf,
}
pub struct ReflogEntry;
impl Refs {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }
    pub fn update(
        &self,
        name: &RefName,
        new: Option<ObjectId>,
        _e: Expected,
        _m: &str,
    ) -> Result<(), RefError> {
        let p = self.root.join(&name.0);
        std::fs::create_dir_all(p.parent().unwrap())?;
        std::fs::write(p, format!("{}\n", new.unwrap()))?;
        Ok(())
    }
    pub fn list(&self, _p: &str) -> Result<Vec<(RefName, ObjectId)>, RefError> {
        let mut out = vec![];
        let d = self.root.join("refs/heads");
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let t = std::fs::read_to_string(e.path())?;
                out.push((
                    RefName(format!("refs/heads/{}", e.file_name().to_string_lossy())),
                    t.trim().parse().map_err(|_| RefError::Bad(t.clone()))?,
                ));
            }
        }
        Ok(out)
    }
    pub fn read(&self, name: &RefName) -> Result<Option<ObjectId>, RefError> {
        match std::fs::read_to_string(self.root.join(&name.0)) {
            Ok(t) => Ok(Some(
                t.trim().parse().map_err(|_| RefError::Bad(t.clone()))?,
            )),
            Err(_) => Ok(None),
        }
    }
    pub fn list_lenient(
        &self,
        p: &str,
    ) -> Result<(Vec<(RefName, ObjectId)>, Vec<(PathBuf, String)>), RefError> {
        Ok((self.list(p)?, vec![]))
    }
    pub fn reflog(&self, _n: &RefName) -> Result<Vec<ReflogEntry>, RefError> {
        Ok(vec![])
    }
    pub fn all_reflog_ids(&self) -> Result<Vec<ObjectId>, RefError> {
        Ok(vec![])
    }
}
