//! A CSV loader for tabular data: one sample per line, numeric columns, an
//! optional header line (detected: a first line that does not parse as
//! numbers), and an optional integer class-label column, chosen by index
//! or by its name in the header.

use std::path::Path;

use super::{Dataset, dataset_err};
use crate::error::{DecodeError, Error, Result};
use crate::model::Tensor;

/// How to read a CSV table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// Column holding the class label (a non-negative integer). `None`: all
    /// columns are features and the set is an autoencoder set (targets =
    /// inputs).
    pub label_column: Option<usize>,
    /// Field separator.
    pub delimiter: char,
    /// The label column by its name in the header line (surrounding quotes
    /// and spaces ignored); when set, it overrides `label_column` and the
    /// file must start with a header naming it.
    pub label_header: Option<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            label_column: Some(0),
            delimiter: ',',
            label_header: None,
        }
    }
}

impl CsvOptions {
    /// Labels from the column named `name` in the header, `,`-separated.
    pub fn label_named(name: impl Into<String>) -> Self {
        CsvOptions {
            label_header: Some(name.into()),
            ..CsvOptions::default()
        }
    }
}

/// The index of the header column named `name` in the first non-empty line.
fn header_column(text: &str, delimiter: char, name: &str) -> Result<usize> {
    let header = text.lines().map(str::trim).find(|l| !l.is_empty());
    let not_found = || {
        dataset_err(
            WHAT,
            DecodeError::NotConforming {
                what: "label_header: no column of the header line has this name",
            },
        )
    };
    let header = header.ok_or_else(not_found)?;
    let clean = |f: &str| f.trim().trim_matches('"').trim().to_string();
    let wanted = clean(name);
    header
        .split(delimiter)
        .position(|f| clean(f) == wanted)
        .ok_or_else(not_found)
}

/// Largest CSV file [`load`] reads (1 GiB).
pub const MAX_CSV_BYTES: u64 = 1 << 30;

const WHAT: &str = "csv";

/// Parses CSV text into features `[N, F]` and labels.
pub fn parse(text: &str, opts: &CsvOptions) -> Result<Dataset> {
    let label_column = match &opts.label_header {
        Some(name) => Some(header_column(text, opts.delimiter, name)?),
        None => opts.label_column,
    };
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut width: Option<usize> = None;
    let mut offset = 0u64;
    let mut first = true;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len() as u64;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: std::result::Result<Vec<f32>, _> = line
            .split(opts.delimiter)
            .map(|f| f.trim().parse::<f32>())
            .collect();
        let malformed = || dataset_err(WHAT, DecodeError::Malformed { offset: start });
        let fields = match fields {
            Ok(f) => f,
            Err(_) if first => {
                first = false;
                continue; // header
            }
            Err(_) => return Err(malformed()),
        };
        first = false;
        if fields.iter().any(|v| !v.is_finite()) {
            return Err(malformed());
        }
        match width {
            None => width = Some(fields.len()),
            Some(w) if w != fields.len() => return Err(malformed()),
            Some(_) => {}
        }
        match label_column {
            Some(c) => {
                let Some(&l) = fields.get(c) else {
                    return Err(dataset_err(
                        WHAT,
                        DecodeError::NotConforming {
                            what: "label column beyond the last column",
                        },
                    ));
                };
                if l < 0.0 || l.fract() != 0.0 || l > 1e9 {
                    return Err(dataset_err(
                        WHAT,
                        DecodeError::NotConforming {
                            what: "label is not a non-negative integer",
                        },
                    ));
                }
                labels.push(l as usize);
                features.extend(
                    fields
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != c)
                        .map(|(_, v)| *v),
                );
            }
            None => features.extend_from_slice(&fields),
        }
    }
    let Some(w) = width else {
        return Err(dataset_err(WHAT, DecodeError::Malformed { offset: 0 }));
    };
    let f = if label_column.is_some() { w - 1 } else { w };
    let n = features.len().checked_div(f).unwrap_or(labels.len());
    let inputs = Tensor::new(vec![n, f], features)?;
    match label_column {
        Some(_) => {
            let classes = labels.iter().max().map_or(0, |m| m + 1);
            Dataset::classification(inputs, labels, classes)
        }
        None => Ok(Dataset {
            inputs: inputs.clone(),
            targets: super::Targets::Values(inputs),
        }),
    }
}

/// Reads a CSV file (see [`parse`]).
pub fn load(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<Dataset> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_CSV_BYTES {
        return Err(dataset_err(
            WHAT,
            DecodeError::TooLarge {
                len,
                limit: MAX_CSV_BYTES,
            },
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        dataset_err(
            WHAT,
            DecodeError::Malformed {
                offset: e.valid_up_to() as u64,
            },
        )
    })?;
    parse(text, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_header_and_errors() {
        let text = "a;b;label\n1;2;0\n3;4;2\n\n5;6;1\n";
        let opts = CsvOptions {
            label_column: Some(2),
            delimiter: ';',
            label_header: None,
        };
        let d = parse(text, &opts).unwrap();
        assert_eq!(d.inputs().shape(), &[3, 2]);
        assert_eq!(d.inputs().data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(d.labels().unwrap(), &[0, 2, 1]);
        assert_eq!(d.classes(), Some(3));
        let e = parse("1;2;0\n3;x;1\n", &opts).unwrap_err();
        assert!(matches!(
            e,
            Error::Dataset {
                reason: DecodeError::Malformed { offset: 6 },
                ..
            }
        ));
        assert!(parse("1;2;0\n3;4\n", &opts).is_err());
        assert!(parse("1;2;0.5\n", &opts).is_err());
        assert!(parse("1;2;-1\n", &opts).is_err());
        assert!(parse("", &opts).is_err());
        assert!(parse("1;2\n", &opts).is_err());
        let ae = parse(
            "1,2\n3,4\n",
            &CsvOptions {
                label_column: None,
                ..CsvOptions::default()
            },
        )
        .unwrap();
        assert_eq!(ae.inputs().shape(), &[2, 2]);
        assert!(load("/nonexistent/file.csv", &opts).is_err());
    }

    #[test]
    fn labels_by_header_name() {
        let text = "sepal,\"species\" ,petal\n1,2,0.5\n3,0,1.5\n";
        let d = parse(text, &CsvOptions::label_named("species")).unwrap();
        assert_eq!(d.inputs().shape(), &[2, 2]);
        assert_eq!(d.inputs().data(), &[1.0, 0.5, 3.0, 1.5]);
        assert_eq!(d.labels().unwrap(), &[2, 0]);
        // The name overrides the index.
        let mut opts = CsvOptions::label_named("petal");
        opts.label_column = Some(0);
        assert!(parse(text, &opts).is_err(), "0.5 is not a label");
        let e = parse(text, &CsvOptions::label_named("genus")).unwrap_err();
        assert!(matches!(
            e,
            Error::Dataset {
                reason: DecodeError::NotConforming { .. },
                ..
            }
        ));
        assert!(parse("", &CsvOptions::label_named("species")).is_err());
        // No header line: the first data line has no such name.
        assert!(parse("1,2,0\n", &CsvOptions::label_named("species")).is_err());
    }
}
