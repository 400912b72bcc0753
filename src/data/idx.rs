//! The IDX format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte`,
//! `train-labels-idx1-ubyte`, ...), raw or gzip-compressed (detected by the
//! gzip magic bytes). Point [`load`] at your own copies of the files.
//!
//! Layout: two zero bytes, an element-type byte (`0x08` = unsigned byte,
//! the only type MNIST uses and the only one read here), the number of
//! dimensions, each dimension as a big-endian `u32`, then the elements
//! row-major. Malformed files give [`Error::Dataset`], never a panic.

use std::io::Read;
use std::path::Path;

use super::{Dataset, dataset_err};
use crate::budget::Budget;
use crate::error::{DecodeError, Error, Result};
use crate::model::Tensor;

/// Largest IDX file read, as stored (raw or compressed; 2 GiB). The
/// decoded size is bounded by [`Budget::max_data_elements`].
pub const MAX_IDX_BYTES: u64 = 2 << 30;

const WHAT: &str = "idx";

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

fn err(reason: DecodeError) -> Error {
    dataset_err(WHAT, reason)
}

/// The header of an IDX array: its dimensions and element count (checked
/// against the budget), and the header's length in bytes.
struct Header {
    dims: Vec<usize>,
    count: usize,
    len: usize,
}

/// Reads the header from the first bytes of the (decompressed) stream and
/// checks the element count against the budget.
fn read_header(r: &mut impl Read, budget: &Budget) -> Result<Header> {
    let mut head = [0u8; 4];
    read_exact(r, &mut head, 0)?;
    if head[0] != 0 || head[1] != 0 {
        return Err(err(DecodeError::BadMagic));
    }
    if head[2] != 0x08 {
        return Err(err(DecodeError::NotConforming {
            what: "element type (only unsigned bytes, 0x08, are read)",
        }));
    }
    let nd = usize::from(head[3]);
    if nd == 0 {
        return Err(err(DecodeError::Malformed { offset: 4 }));
    }
    let mut raw = vec![0u8; 4 * nd];
    read_exact(r, &mut raw, 4)?;
    let dims: Vec<usize> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let Some(count) = crate::model::checked_product(&dims) else {
        return Err(err(DecodeError::NotConforming {
            what: "dimensions overflow",
        }));
    };
    Budget::check("idx elements", count as u64, budget.max_data_elements)?;
    Ok(Header {
        dims,
        count,
        len: 4 + 4 * nd,
    })
}

/// `read_exact` with the IDX errors: a short stream is `Malformed` at the
/// byte where it ended, a broken gzip stream likewise.
fn read_exact(r: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if done < buf.len() {
        return Err(err(DecodeError::Malformed {
            offset: offset + done as u64,
        }));
    }
    Ok(())
}

/// Parses an IDX array from a stream: header, then exactly the declared
/// elements into one buffer of that size (allocated only after the count
/// passed the budget; no growth, no copy), then the stream must end.
fn parse_stream(mut r: impl Read, budget: &Budget) -> Result<IdxArray> {
    let h = read_header(&mut r, budget)?;
    let mut data = Vec::new();
    data.try_reserve_exact(h.count)
        .map_err(|_| Error::BudgetExceeded {
            what: "idx elements (allocation failed)",
            needed: h.count as u64,
            limit: budget.max_data_elements,
        })?;
    let got = (&mut r)
        .take(h.count as u64)
        .read_to_end(&mut data)
        .map_err(|_| {
            err(DecodeError::Malformed {
                offset: (h.len + data.len()) as u64,
            })
        })?;
    if got < h.count {
        return Err(err(DecodeError::Malformed {
            offset: (h.len + got) as u64,
        }));
    }
    // The stream must end here; count (a bounded number of) trailing bytes.
    let mut rest = [0u8; 4096];
    let mut trailing = 0u64;
    loop {
        match r.read(&mut rest) {
            Ok(0) => break,
            Ok(k) => {
                trailing += k as u64;
                if trailing >= rest.len() as u64 {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                return Err(err(DecodeError::Malformed {
                    offset: (h.len + h.count) as u64 + trailing,
                }));
            }
        }
    }
    if trailing > 0 {
        return Err(err(DecodeError::TrailingBytes { count: trailing }));
    }
    Ok(IdxArray { dims: h.dims, data })
}

/// Parses an IDX file's bytes (raw or gzip) within the default [`Budget`]
/// ([`parse_with_budget`]).
pub fn parse(bytes: &[u8]) -> Result<IdxArray> {
    parse_with_budget(bytes, &Budget::default())
}

/// Parses an IDX file's bytes (raw or gzip). The element count declared by
/// the header is checked against [`Budget::max_data_elements`] before any
/// buffer is allocated ([`Error::BudgetExceeded`]); a gzip stream is then
/// decompressed straight into a buffer of exactly that size and read no
/// further than one byte past it, so a small file cannot inflate beyond
/// what its header declares (memory: the declared elements, once).
pub fn parse_with_budget(bytes: &[u8], budget: &Budget) -> Result<IdxArray> {
    if bytes.len() as u64 > MAX_IDX_BYTES {
        return Err(err(DecodeError::TooLarge {
            len: bytes.len() as u64,
            limit: MAX_IDX_BYTES,
        }));
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        parse_stream(flate2::read::GzDecoder::new(bytes), budget)
    } else {
        parse_stream(bytes, budget)
    }
}

/// Reads an IDX file (raw or gzip).
pub fn read(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_IDX_BYTES {
        return Err(err(DecodeError::TooLarge {
            len,
            limit: MAX_IDX_BYTES,
        }));
    }
    parse(&std::fs::read(path).map_err(io)?)
}

/// Images `[N, H, W]` as a tensor `[N, 1, H, W]` with values in `[0, 1]`.
pub fn images(a: &IdxArray) -> Result<Tensor> {
    if a.dims.len() != 3 {
        return Err(err(DecodeError::NotConforming {
            what: "images need 3 dimensions [N, H, W]",
        }));
    }
    let data = a.data.iter().map(|&b| f32::from(b) / 255.0).collect();
    Tensor::new(vec![a.dims[0], 1, a.dims[1], a.dims[2]], data)
}

/// Labels `[N]`.
pub fn labels(a: &IdxArray) -> Result<Vec<usize>> {
    if a.dims.len() != 1 {
        return Err(err(DecodeError::NotConforming {
            what: "labels need 1 dimension [N]",
        }));
    }
    Ok(a.data.iter().map(|&b| usize::from(b)).collect())
}

/// A classification set from the bytes of an images file and a labels file
/// (classes = largest label + 1, at least 10), within the default
/// [`Budget`] ([`dataset_from_bytes_with_budget`]).
pub fn dataset_from_bytes(images_bytes: &[u8], labels_bytes: &[u8]) -> Result<Dataset> {
    dataset_from_bytes_with_budget(images_bytes, labels_bytes, &Budget::default())
}

/// [`dataset_from_bytes`] with the caller's [`Budget`]: each file's
/// element count within [`Budget::max_data_elements`] (checked from its
/// header before allocating), and the counts and shapes checked before the
/// images become `f32` and the labels `usize`.
pub fn dataset_from_bytes_with_budget(
    images_bytes: &[u8],
    labels_bytes: &[u8],
    budget: &Budget,
) -> Result<Dataset> {
    let img = parse_with_budget(images_bytes, budget)?;
    let lab = parse_with_budget(labels_bytes, budget)?;
    if img.dims.len() != 3 || lab.dims.len() != 1 {
        return Err(err(DecodeError::NotConforming {
            what: "images need [N, H, W] and labels [N]",
        }));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(err(DecodeError::NotConforming {
            what: "images and labels differ in count",
        }));
    }
    let y = labels(&lab)?;
    drop(lab);
    let x = images(&img)?;
    drop(img);
    let classes = y.iter().max().map_or(0, |m| m + 1).max(10);
    Dataset::classification(x, y, classes)
}

/// A classification set from an images file and a labels file, e.g.
/// `load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")`.
/// MNIST images are 28x28; `.pad(2)` makes them LeNet's 32x32.
pub fn load(images_path: impl AsRef<Path>, labels_path: impl AsRef<Path>) -> Result<Dataset> {
    let read_all = |p: &Path| {
        std::fs::read(p).map_err(|source| Error::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    for p in [images_path.as_ref(), labels_path.as_ref()] {
        let len = std::fs::metadata(p)
            .map_err(|source| Error::Io {
                path: p.to_path_buf(),
                source,
            })?
            .len();
        if len > MAX_IDX_BYTES {
            return Err(err(DecodeError::TooLarge {
                len,
                limit: MAX_IDX_BYTES,
            }));
        }
    }
    dataset_from_bytes(
        &read_all(images_path.as_ref())?,
        &read_all(labels_path.as_ref())?,
    )
}

/// Encodes unsigned bytes as an IDX file (for tests and small exports).
pub fn encode(dims: &[usize], data: &[u8]) -> Result<Vec<u8>> {
    if dims.is_empty()
        || dims.len() > 255
        || dims.iter().any(|&d| d > u32::MAX as usize)
        || crate::model::checked_product(dims) != Some(data.len())
    {
        return Err(Error::InvalidParameter {
            name: "idx dims",
            value: i64::try_from(dims.len()).unwrap_or(i64::MAX),
            allowed: "1..=255 dimensions below 2^32 whose product is the data length",
        });
    }
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_raw_and_gzip_files() {
        let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 4) as u8).collect();
        let img = encode(&[3, 4, 5], &pixels).unwrap();
        let lab = encode(&[3], &[7, 0, 9]).unwrap();
        let d = dataset_from_bytes(&img, &lab).unwrap();
        assert_eq!(d.inputs().shape(), &[3, 1, 4, 5]);
        assert_eq!(d.inputs().data()[1], 4.0 / 255.0);
        assert_eq!(d.labels().unwrap(), &[7, 0, 9]);
        assert_eq!(d.classes(), Some(10));
        let dz = dataset_from_bytes(&gz(&img), &gz(&lab)).unwrap();
        assert_eq!(d, dz);
        // files
        let dir = std::env::temp_dir().join(format!("mofhei-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("img.gz"), gz(&img)).unwrap();
        std::fs::write(dir.join("lab"), &lab).unwrap();
        assert_eq!(load(dir.join("img.gz"), dir.join("lab")).unwrap(), d);
        assert!(matches!(
            load(dir.join("nope"), dir.join("lab")),
            Err(Error::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_files_are_errors() {
        let img = encode(&[2, 3, 3], &[1; 18]).unwrap();
        let lab = encode(&[2], &[1, 2]).unwrap();
        let reason = |r: Result<IdxArray>| match r {
            Err(Error::Dataset { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(parse(&[1, 0, 8, 1])), DecodeError::BadMagic);
        assert!(matches!(
            reason(parse(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0])),
            DecodeError::NotConforming { .. }
        ));
        assert!(matches!(
            reason(parse(&img[..img.len() - 1])),
            DecodeError::Malformed { .. }
        ));
        let mut long = img.clone();
        long.push(0);
        assert_eq!(
            reason(parse(&long)),
            DecodeError::TrailingBytes { count: 1 }
        );
        assert!(matches!(
            reason(parse(&[
                0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])),
            DecodeError::Malformed { .. } | DecodeError::NotConforming { .. }
        ));
        assert!(matches!(
            reason(parse(&[0, 0, 8])),
            DecodeError::Malformed { .. }
        ));
        // a truncated gzip stream
        let z = gz(&img);
        assert!(parse(&z[..z.len() / 2]).is_err());
        // mismatched counts and swapped files
        assert!(dataset_from_bytes(&img, &encode(&[3], &[1, 2, 3]).unwrap()).is_err());
        assert!(dataset_from_bytes(&lab, &img).is_err());
        // every truncation and byte flip is an error or a value, never a panic
        for cut in 0..img.len() {
            assert!(parse(&img[..cut]).is_err());
        }
        for i in 0..img.len() {
            let mut v = img.clone();
            v[i] ^= 0xa5;
            let _ = parse(&v);
        }
    }
}
