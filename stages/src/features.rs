//! `features`: a sparse design matrix and its labels as one binary file.
//!
//! The `vectorize` stage writes the TF-IDF matrices of train and test here;
//! `fit` and `score` read them. JSON would be ten times larger and slower
//! to parse, and parquet has no natural place for CSR, so the format is a
//! plain dump of the CSR arrays, documented byte by byte:
//!
//! # Layout (`format_version` 1), all integers and floats little-endian
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `PIPEFEAT` |
//! | 8 | 4 | format version, `u32` (1) |
//! | 12 | 4 | reserved, `u32` 0 |
//! | 16 | 8 | `nrows`, `u64` |
//! | 24 | 8 | `ncols`, `u64` |
//! | 32 | 8 | `nnz`, `u64` |
//! | 40 | 8 · (nrows + 1) | `indptr`, `u64` each: row `i` owns entries `indptr[i]..indptr[i+1]` |
//! | … | 4 · nnz | `indices`, `u32` column of each entry |
//! | … | 8 · nnz | `data`, `f64` value of each entry |
//! | … | 8 · nrows | `labels`, `i64` class of each row |
//!
//! and nothing after. The matrix is scipy's CSR (see [`crate::sparse`]):
//! within a row the columns are strictly increasing.
//!
//! # Reading safely
//!
//! [`read`] checks the magic (a foreign file says so), the version (a newer
//! file names both versions), then compares the file's size with the size
//! the header announces *before* allocating anything, so a truncated or
//! damaged file is a clear error and a corrupt header cannot make it
//! allocate terabytes. The arrays are then checked by [`Csr::new`]. Memory
//! is proportional to `nnz + nrows`, read through a fixed-size buffer.
//!
//! # Writing
//!
//! [`write()`] goes through a temporary file and a rename, so a features
//! file is never half written. Bump [`FORMAT_VERSION`] on any change.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::atomic;
use crate::sparse::{shortest_first, Csr, SparseError};

/// The first 8 bytes of every features file.
pub const MAGIC: &[u8; 8] = b"PIPEFEAT";
/// The layout version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before `indptr`.
const HEADER_LEN: u64 = 40;

#[derive(Debug, Error)]
pub enum FeaturesError {
    #[error("failed to read the features file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write the features file `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a pipe features file (it does not start with `PIPEFEAT`)")]
    NotFeatures { path: PathBuf },
    #[error(
        "`{path}` is a features file in format version {found}, but this pipe reads version {supported}\n\
         Hint: rerun the stage that wrote it (`pipe repro`)"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "the features file `{path}` is truncated or damaged: its header announces {expected} bytes \
         but the file has {found}\nHint: rerun the stage that wrote it (`pipe repro`)"
    )]
    WrongSize {
        path: PathBuf,
        expected: u128,
        found: u64,
    },
    #[error("the features file `{path}` is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write {rows} labels for a matrix of {nrows} rows")]
    LabelCount { rows: usize, nrows: usize },
}

/// A design matrix with one label per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub x: Csr,
    pub labels: Vec<i64>,
}

/// The file size the header announces (u128: no overflow on any header).
fn expected_len(nrows: u64, nnz: u64) -> u128 {
    HEADER_LEN as u128
        + 8 * (nrows as u128 + 1)
        + 4 * nnz as u128
        + 8 * nnz as u128
        + 8 * nrows as u128
}

/// Writes `x` and `labels` to `path` atomically, creating parent
/// directories.
pub fn write(path: &Path, x: &Csr, labels: &[i64]) -> Result<(), FeaturesError> {
    if labels.len() != x.nrows() {
        return Err(FeaturesError::LabelCount {
            rows: labels.len(),
            nrows: x.nrows(),
        });
    }
    atomic::write(path, |w| {
        w.write_all(MAGIC)?;
        w.write_all(&FORMAT_VERSION.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        for n in [x.nrows(), x.ncols(), x.nnz()] {
            w.write_all(&(n as u64).to_le_bytes())?;
        }
        for &p in x.indptr() {
            w.write_all(&(p as u64).to_le_bytes())?;
        }
        for &j in x.indices() {
            w.write_all(&j.to_le_bytes())?;
        }
        for &v in x.data() {
            w.write_all(&v.to_le_bytes())?;
        }
        for &y in labels {
            w.write_all(&y.to_le_bytes())?;
        }
        Ok(())
    })
    .map_err(|source| FeaturesError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a file written by [`write()`].
pub fn read(path: &Path) -> Result<Features, FeaturesError> {
    read_in(path, RowOrder::AsWritten)
}

/// Reads a file written by [`write()`] with its rows sorted by their
/// number of entries, shortest first (ties in file order), as the fit
/// visits them (see [`crate::logistic`]): each row is put in its place as
/// it is read, so the fit needs no second copy of the matrix.
pub fn read_shortest_rows_first(path: &Path) -> Result<Features, FeaturesError> {
    read_in(path, RowOrder::ShortestFirst)
}

#[derive(Clone, Copy, PartialEq)]
enum RowOrder {
    AsWritten,
    ShortestFirst,
}

fn read_in(path: &Path, order: RowOrder) -> Result<Features, FeaturesError> {
    let read_err = |source| FeaturesError::Read {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |reason: String| FeaturesError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(read_err)?;
    let found = file.metadata().map_err(read_err)?.len();
    let mut r = BufReader::with_capacity(1 << 16, file);

    let mut header = [0u8; HEADER_LEN as usize];
    if found < HEADER_LEN {
        // Too short for a header: foreign unless it starts like ours.
        let mut start = Vec::new();
        r.read_to_end(&mut start).map_err(read_err)?;
        if !MAGIC.starts_with(&start[..start.len().min(8)]) || start.is_empty() {
            return Err(FeaturesError::NotFeatures {
                path: path.to_path_buf(),
            });
        }
        return Err(FeaturesError::WrongSize {
            path: path.to_path_buf(),
            expected: HEADER_LEN as u128,
            found,
        });
    }
    r.read_exact(&mut header).map_err(read_err)?;
    if &header[..8] != MAGIC {
        return Err(FeaturesError::NotFeatures {
            path: path.to_path_buf(),
        });
    }
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap());
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(FeaturesError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let (nrows, ncols, nnz) = (u64_at(16), u64_at(24), u64_at(32));
    let expected = expected_len(nrows, nnz);
    if expected != found as u128 {
        return Err(FeaturesError::WrongSize {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    // The sizes fit in the file, hence in memory addresses.
    let (nrows, nnz) = (nrows as usize, nnz as usize);
    let ncols = usize::try_from(ncols)
        .ok()
        .filter(|&c| c <= u32::MAX as usize + 1)
        .ok_or_else(|| corrupt(format!("{ncols} columns is more than u32 indices address")))?;

    let indptr = read_array(&mut r, nrows + 1, u64::from_le_bytes).map_err(read_err)?;
    let indptr = indptr
        .into_iter()
        .map(|p| usize::try_from(p).map_err(|_| corrupt(format!("row offset {p} is too large"))))
        .collect::<Result<Vec<usize>, _>>()?;
    if order == RowOrder::AsWritten {
        let indices = read_array(&mut r, nnz, u32::from_le_bytes).map_err(read_err)?;
        let data = read_array(&mut r, nnz, f64::from_le_bytes).map_err(read_err)?;
        let labels = read_array(&mut r, nrows, i64::from_le_bytes).map_err(read_err)?;
        let x =
            Csr::new(nrows, ncols, indptr, indices, data).map_err(|e| corrupt(e.to_string()))?;
        return Ok(Features { x, labels });
    }
    // Each row's entries go straight to their sorted place: the offsets
    // must be sound before they are used as such.
    if indptr[0] != 0 || indptr[nrows] != nnz || indptr.windows(2).any(|w| w[0] > w[1]) {
        return Err(corrupt(
            "its row offsets do not run from 0 up to the number of entries".into(),
        ));
    }
    let len = |i: usize| indptr[i + 1] - indptr[i];
    let sorted = shortest_first(&indptr);
    let mut sorted_indptr = Vec::with_capacity(nrows + 1);
    sorted_indptr.push(0);
    // Where each row of the file starts in the sorted arrays.
    let mut start = vec![0; nrows];
    for &i in &sorted {
        start[i] = *sorted_indptr.last().expect("starts with 0");
        sorted_indptr.push(start[i] + len(i));
    }
    let mut indices = vec![0u32; nnz];
    let mut data = vec![0f64; nnz];
    let mut bytes = Vec::new();
    for i in 0..nrows {
        read_values(
            &mut r,
            &mut bytes,
            &mut indices[start[i]..start[i] + len(i)],
            u32::from_le_bytes,
        )
        .map_err(read_err)?;
    }
    for i in 0..nrows {
        let row = &mut data[start[i]..start[i] + len(i)];
        read_values(&mut r, &mut bytes, row, f64::from_le_bytes).map_err(read_err)?;
        // Checked here, where the row still has its number in the file
        // (the fit would name its sorted position).
        if row.iter().any(|v| !v.is_finite()) {
            return Err(corrupt(format!("row {i} holds a NaN or infinite value")));
        }
    }
    let labels = read_array(&mut r, nrows, i64::from_le_bytes).map_err(read_err)?;
    let labels = sorted.iter().map(|&i| labels[i]).collect();
    // A bad row is named by its number in the file, not its sorted place.
    let x = Csr::new(nrows, ncols, sorted_indptr, indices, data).map_err(|e| {
        let e = match e {
            SparseError::ColumnOutOfRange { row, col, ncols } => SparseError::ColumnOutOfRange {
                row: sorted[row],
                col,
                ncols,
            },
            SparseError::UnsortedRow { row } => SparseError::UnsortedRow { row: sorted[row] },
            other => other,
        };
        corrupt(e.to_string())
    })?;
    Ok(Features { x, labels })
}

/// Fills `out` with little-endian values of `N` bytes each, through `bytes`.
fn read_values<T, const N: usize>(
    r: &mut impl Read,
    bytes: &mut Vec<u8>,
    out: &mut [T],
    decode: fn([u8; N]) -> T,
) -> std::io::Result<()> {
    bytes.resize(out.len() * N, 0);
    r.read_exact(bytes)?;
    for (v, c) in out.iter_mut().zip(bytes.chunks_exact(N)) {
        *v = decode(c.try_into().expect("chunks of N bytes"));
    }
    Ok(())
}

/// Reads `n` little-endian values of `N` bytes each, 8192 at a time.
fn read_array<T: Copy + Default, const N: usize>(
    r: &mut impl Read,
    n: usize,
    decode: fn([u8; N]) -> T,
) -> std::io::Result<Vec<T>> {
    let mut out = vec![T::default(); n];
    let mut bytes = Vec::new();
    for piece in out.chunks_mut(8192) {
        read_values(r, &mut bytes, piece, decode)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> (Csr, Vec<i64>) {
        let x = Csr::new(
            3,
            5,
            vec![0, 2, 2, 4],
            vec![0, 4, 1, 2],
            vec![0.5, -1.25, f64::MIN_POSITIVE, 1e300],
        )
        .unwrap();
        (x, vec![1, 0, -7])
    }

    #[test]
    fn roundtrip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f").join("train.features");
        let (x, y) = example();
        write(&path, &x, &y).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.x, x);
        assert_eq!(back.labels, y);
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len as u128, expected_len(3, 4));
        assert_eq!(len, 40 + 8 * 4 + 4 * 4 + 8 * 4 + 8 * 3);
        // The bytes are the documented layout.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"PIPEFEAT");
        assert_eq!(bytes[8..12], [1, 0, 0, 0]);
        assert_eq!(bytes[16..24], 3u64.to_le_bytes());
        assert_eq!(bytes[40..48], 0u64.to_le_bytes());
        assert_eq!(bytes[bytes.len() - 8..], (-7i64).to_le_bytes());
    }

    #[test]
    fn empty_matrix_roundtrips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.features");
        let x = Csr::new(0, 3, vec![0], vec![], vec![]).unwrap();
        write(&path, &x, &[]).unwrap();
        assert_eq!(read(&path).unwrap().x, x);
    }

    #[test]
    fn truncated_foreign_and_newer_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.features");
        let (x, y) = example();
        write(&path, &x, &y).unwrap();
        let good = std::fs::read(&path).unwrap();

        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("x.features` is truncated or damaged"), "{e}");
        assert!(
            e.contains("announces 144 bytes but the file has 141"),
            "{e}"
        );

        std::fs::write(&path, &good[..20]).unwrap();
        assert!(matches!(read(&path), Err(FeaturesError::WrongSize { .. })));

        std::fs::write(
            &path,
            b"PhraseId\tPhrase\n1\tgood\n2\tbad and long enough\n",
        )
        .unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("is not a pipe features file"), "{e}");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(
            read(&path),
            Err(FeaturesError::NotFeatures { .. })
        ));

        let mut newer = good.clone();
        newer[8] = 2;
        std::fs::write(&path, &newer).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("format version 2") && e.contains("Hint:"), "{e}");

        // A header announcing a huge matrix is caught by the size check,
        // before any allocation.
        let mut huge = good.clone();
        huge[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&path, &huge).unwrap();
        assert!(matches!(read(&path), Err(FeaturesError::WrongSize { .. })));

        // Right size, broken CSR: a column out of range.
        let mut bad = good.clone();
        let indices_at = 40 + 8 * 4;
        bad[indices_at..indices_at + 4].copy_from_slice(&9u32.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("is damaged: row 0 has column 9"), "{e}");

        let e = read(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("failed to read the features file"), "{e}");
    }

    #[test]
    fn rows_are_read_shortest_first_with_their_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.features");
        // Rows of 2, 0, 2 and 1 entries: sorted 1, 3, 0, 2 (ties in file
        // order).
        let x = Csr::new(
            4,
            5,
            vec![0, 2, 2, 4, 5],
            vec![0, 4, 1, 2, 3],
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
        )
        .unwrap();
        write(&path, &x, &[10, 11, 12, 13]).unwrap();
        let sorted = read_shortest_rows_first(&path).unwrap();
        assert_eq!(sorted.x, x.select_rows(&[1, 3, 0, 2]));
        assert_eq!(sorted.labels, [11, 13, 10, 12]);
        // Empty files and damaged offsets are errors, as in `read`.
        let empty = Csr::new(0, 3, vec![0], vec![], vec![]).unwrap();
        write(&path, &empty, &[]).unwrap();
        assert_eq!(read_shortest_rows_first(&path).unwrap().x, empty);
        let (x, y) = example();
        write(&path, &x, &y).unwrap();
        let mut bad = std::fs::read(&path).unwrap();
        bad[48..56].copy_from_slice(&9u64.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        let e = read_shortest_rows_first(&path).unwrap_err().to_string();
        assert!(e.contains("is damaged: its row offsets"), "{e}");
        // Bad rows are named by their number in the file. `example` has
        // rows of 2, 0 and 2 entries, so row 0 is sorted second.
        write(&path, &x, &y).unwrap();
        let good = std::fs::read(&path).unwrap();
        let indices_at = 40 + 8 * 4;
        let mut bad = good.clone();
        bad[indices_at..indices_at + 4].copy_from_slice(&9u32.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        let e = read_shortest_rows_first(&path).unwrap_err().to_string();
        assert!(e.contains("is damaged: row 0 has column 9"), "{e}");
        let data_at = indices_at + 4 * 4;
        let mut bad = good.clone();
        bad[data_at + 8 * 3..data_at + 8 * 4].copy_from_slice(&f64::NAN.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        let e = read_shortest_rows_first(&path).unwrap_err().to_string();
        assert!(e.contains("row 2 holds a NaN"), "{e}");
    }

    #[test]
    fn label_count_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let (x, _) = example();
        let e = write(&dir.path().join("f"), &x, &[1]).unwrap_err();
        assert!(matches!(e, FeaturesError::LabelCount { rows: 1, nrows: 3 }));
    }
}
