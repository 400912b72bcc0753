//! ONNX external data: initializers whose bytes live in a separate file.
//!
//! Exporters write large weights (and `torch.onnx.export`'s default exporter
//! writes all of them) to a file next to the model, `<model>.onnx.data`,
//! and keep only a reference in the model: `external_data` entries
//! `location` (a path relative to the model's folder), `offset` and
//! `length` (bytes). The importer asks an [`ExternalDataSource`] for those
//! bytes; [`Folder`] reads them from the model's folder.
//!
//! Both are untrusted: the location must be a relative path of plain names
//! (no absolute path, no `..`, no drive prefix), checked by the importer
//! before any source is asked; [`Folder`] also resolves symbolic links and
//! refuses a file outside its folder. The bytes read are bounded by
//! [`ImportOptions::max_external_bytes`](crate::import::onnx::ImportOptions)
//! over the whole model, checked before anything is allocated, and each
//! tensor's `length` must equal what its dimensions and element type need.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::import::onnx_proto::TensorProto;

/// Where the bytes of external tensors come from.
///
/// `location` has already been checked to be a relative path of plain
/// names (`weights/model.onnx.data`, never `/etc/x` or `../x`), and `len`
/// is within the import's byte budget.
pub trait ExternalDataSource {
    /// Returns exactly `len` bytes at `offset` of the file `location`.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Weight`] when it
    /// is refused or too short.
    fn read(&mut self, location: &str, offset: u64, len: usize) -> Result<Vec<u8>>;
}

/// Reads external data files from one folder (the model's), refusing any
/// path that leaves it, including through symbolic links.
#[derive(Debug, Clone)]
pub struct Folder {
    base: PathBuf,
}

impl Folder {
    /// A source reading files under `base`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        Folder { base: base.into() }
    }

    /// The folder of the model file `model` (the current folder for a bare
    /// file name).
    pub fn of_model(model: &Path) -> Self {
        let base = match model.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Folder { base }
    }
}

impl ExternalDataSource for Folder {
    fn read(&mut self, location: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let refused = |problem| Error::Weight {
            name: location.to_string(),
            problem,
        };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        check_location(location).map_err(refused)?;
        let base = self.base.canonicalize().map_err(io(&self.base))?;
        let joined = base.join(location);
        let file_path = joined.canonicalize().map_err(io(&joined))?;
        if !file_path.starts_with(&base) {
            return Err(refused(
                "external data file resolves (through a symbolic link) outside the model's folder",
            ));
        }
        let mut file = std::fs::File::open(&file_path).map_err(io(&file_path))?;
        let meta = file.metadata().map_err(io(&file_path))?;
        if !meta.is_file() {
            return Err(refused("external data location is not a regular file"));
        }
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > meta.len())
        {
            return Err(refused(
                "external data offset + length run past the end of the file",
            ));
        }
        file.seek(SeekFrom::Start(offset)).map_err(io(&file_path))?;
        let mut bytes = vec![0u8; len];
        file.read_exact(&mut bytes).map_err(io(&file_path))?;
        Ok(bytes)
    }
}

/// In-memory external data by location (e.g. files fetched by the caller).
impl ExternalDataSource for HashMap<String, Vec<u8>> {
    fn read(&mut self, location: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let refused = |problem| Error::Weight {
            name: location.to_string(),
            problem,
        };
        let file = self
            .get(location)
            .ok_or(refused("no external data with this location was given"))?;
        let start = usize::try_from(offset)
            .ok()
            .filter(|&s| s <= file.len())
            .ok_or(refused("external data offset past the end of the file"))?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= file.len())
            .ok_or(refused(
                "external data offset + length run past the end of the file",
            ))?;
        Ok(file[start..end].to_vec())
    }
}

/// Checks that `location` is a relative path of plain names.
pub(crate) fn check_location(location: &str) -> std::result::Result<(), &'static str> {
    if location.is_empty() {
        return Err("external data location is empty");
    }
    if location.contains('\0') {
        return Err("external data location contains a NUL byte");
    }
    // Windows-style separators and drive letters are refused on every
    // platform: a model must not mean different files on different systems.
    if location.contains('\\') || location.contains(':') {
        return Err("external data location must be a POSIX relative path (no '\\' or ':')");
    }
    let path = Path::new(location);
    if path.is_absolute() || path.has_root() {
        return Err(
            "external data location is an absolute path (it must be relative to the model's folder)",
        );
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(
                    "external data location contains '..' (it must stay in the model's folder)",
                );
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(
                    "external data location is an absolute path (it must be relative to the model's folder)",
                );
            }
        }
    }
    Ok(())
}

/// Reads external tensors for one import, within a byte budget.
pub(crate) struct ExternalReader<'r> {
    source: Option<&'r mut dyn ExternalDataSource>,
    limit: u64,
    used: u64,
    files: BTreeSet<String>,
}

impl<'r> ExternalReader<'r> {
    /// A reader over `source` (none: external tensors are refused) allowing
    /// `limit` bytes in total.
    pub(crate) fn new(source: Option<&'r mut dyn ExternalDataSource>, limit: u64) -> Self {
        ExternalReader {
            source,
            limit,
            used: 0,
            files: BTreeSet::new(),
        }
    }

    /// The files read and the bytes taken from them.
    pub(crate) fn summary(&self) -> (Vec<String>, u64) {
        (self.files.iter().cloned().collect(), self.used)
    }

    /// The bytes of external tensor `t`, which needs `expected` bytes.
    pub(crate) fn tensor_bytes(&mut self, t: &TensorProto, expected: usize) -> Result<Vec<u8>> {
        let name = t.name.clone().unwrap_or_default();
        let err = |problem| Error::Weight {
            name: name.clone(),
            problem,
        };
        let mut location = None;
        let mut offset = 0u64;
        let mut length = None;
        for entry in &t.external_data {
            let value = entry.value.as_deref().unwrap_or_default();
            match entry.key.as_deref() {
                Some("location") => location = Some(value),
                Some("offset") => {
                    offset = value
                        .parse::<u64>()
                        .map_err(|_| err("external data offset is not a non-negative integer"))?;
                }
                Some("length") => {
                    length =
                        Some(value.parse::<u64>().map_err(|_| {
                            err("external data length is not a non-negative integer")
                        })?);
                }
                // "checksum" and unknown keys are informative.
                _ => {}
            }
        }
        let location = location.ok_or_else(|| err("external data without a location"))?;
        check_location(location).map_err(err)?;
        if length.is_some_and(|l| l != expected as u64) {
            return Err(err(
                "external data length does not match the tensor's dimensions and element type",
            ));
        }
        let Some(source) = self.source.as_deref_mut() else {
            return Err(err(
                "weights are stored in an external data file: import with onnx::from_path (which reads it from the model's folder) or onnx::from_bytes_with_source",
            ));
        };
        let used = self
            .used
            .checked_add(expected as u64)
            .filter(|&u| u <= self.limit)
            .ok_or_else(|| {
                err("external data exceed ImportOptions::max_external_bytes (raise it if the model is trusted)")
            })?;
        let bytes = source.read(location, offset, expected)?;
        if bytes.len() != expected {
            return Err(err(
                "external data source returned the wrong number of bytes",
            ));
        }
        self.used = used;
        self.files.insert(location.to_string());
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_must_stay_in_the_folder() {
        for ok in [
            "model.onnx.data",
            "./w.bin",
            "weights/part1.bin",
            "a b.data",
        ] {
            assert_eq!(check_location(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../secret",
            "weights/../../x",
            "a/..",
            "C:\\x",
            "c:x",
            "..\\x",
            "x\0y",
        ] {
            assert!(check_location(bad).is_err(), "{bad:?}");
        }
    }

    fn tensor(entries: &[(&str, &str)]) -> TensorProto {
        use crate::import::onnx_proto::StringStringEntryProto;
        TensorProto {
            name: Some("w".into()),
            external_data: entries
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: Some((*k).into()),
                    value: Some((*v).into()),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn reader_checks_lengths_budget_and_offsets() {
        let mut files = HashMap::new();
        files.insert("m.data".to_string(), (0u8..32).collect::<Vec<_>>());
        let mut reader = ExternalReader::new(Some(&mut files), 20);
        let t = tensor(&[("location", "m.data"), ("offset", "4"), ("length", "8")]);
        assert_eq!(
            reader.tensor_bytes(&t, 8).unwrap(),
            (4u8..12).collect::<Vec<_>>()
        );
        // The length must match the tensor.
        assert!(reader.tensor_bytes(&t, 4).is_err());
        // The budget covers the whole import: 8 + 16 > 20.
        let t16 = tensor(&[("location", "m.data"), ("length", "16")]);
        assert!(matches!(reader.tensor_bytes(&t16, 16),
            Err(Error::Weight { problem, .. }) if problem.contains("max_external_bytes")));
        // Past the end of the file.
        let late = tensor(&[("location", "m.data"), ("offset", "30")]);
        assert!(reader.tensor_bytes(&late, 4).is_err());
        // Escaping paths are refused before the source is asked.
        let up = tensor(&[("location", "../m.data")]);
        assert!(matches!(reader.tensor_bytes(&up, 4),
            Err(Error::Weight { problem, .. }) if problem.contains("..")));
        let bad_offset = tensor(&[("location", "m.data"), ("offset", "-1")]);
        assert!(reader.tensor_bytes(&bad_offset, 4).is_err());
        assert_eq!(reader.summary(), (vec!["m.data".to_string()], 8));
        // Without a source the error names the fix.
        let mut none = ExternalReader::new(None, 1 << 20);
        assert!(matches!(none.tensor_bytes(&t, 8),
            Err(Error::Weight { problem, .. }) if problem.contains("from_path")));
    }

    #[test]
    fn folder_refuses_symlinks_out_of_the_folder() {
        let root = std::env::temp_dir().join(format!("mofhei-ext-{}", std::process::id()));
        let inside = root.join("model");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(root.join("secret.bin"), [7u8; 16]).unwrap();
        std::fs::write(inside.join("m.onnx.data"), (0u8..16).collect::<Vec<_>>()).unwrap();
        let mut folder = Folder::of_model(&inside.join("m.onnx"));
        assert_eq!(folder.read("m.onnx.data", 2, 3).unwrap(), [2, 3, 4]);
        assert!(folder.read("m.onnx.data", 10, 8).is_err(), "past the end");
        assert!(folder.read("missing.data", 0, 1).is_err());
        assert!(folder.read("../secret.bin", 0, 4).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("secret.bin"), inside.join("link.data")).unwrap();
            assert!(matches!(folder.read("link.data", 0, 4),
                Err(Error::Weight { problem, .. }) if problem.contains("symbolic link")));
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
