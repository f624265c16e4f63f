//! `table`: read a table from TSV, CSV or parquet; write parquet.
//!
//! The stages read their input tables here and nowhere else, so every
//! table error reads the same: it names the file, the line (or row) and
//! the column, and says what to do.
//!
//! # Formats
//!
//! | format | chosen by | read as |
//! | --- | --- | --- |
//! | `tsv` | `.tsv`, `.tab`, or `format: tsv` | tab-separated text |
//! | `csv` | `.csv`, or `format: csv` | comma-separated text |
//! | `parquet` | `.parquet`, `.pq`, or `format: parquet` | Apache Parquet |
//!
//! An explicit format wins over the extension. Anything else is an error
//! that lists the valid names.
//!
//! # Text files
//!
//! A text table is UTF-8 with a header row naming the columns, one row per
//! line (`\n` or `\r\n`), and **no quoting**: the movie-review phrases
//! contain `"` characters and are written as they are, so a quote is an
//! ordinary character and a separator always ends a field. A field cannot
//! hold the separator or a newline.
//!
//! Before polars sees the bytes, one pass over them checks what polars
//! would report vaguely or not at all, and reports it with a line number:
//!
//! - the bytes are UTF-8 (`line 1234 is not valid UTF-8 (byte 0xff at
//!   column 17)`, the column counted in bytes from 1);
//! - the file is not empty and has at least one row under its header;
//! - header names are unique;
//! - every line has as many fields as the header (an empty line in the
//!   middle is an error too; empty lines at the very end are ignored).
//!
//! Because every row is exactly one line, data row `i` (from 0) is line
//! `i + 2`, which is how later errors (a label that is not an integer, …)
//! point back into the file; see [`Table::location`].
//!
//! Column types: polars infers them (so `PhraseId` and `Sentiment` come out
//! as integers) from the first 1000 rows, or, when a later row does not
//! fit the types so found, from every row (a second read: scanning every
//! row up front would make the common case 60 % slower), except for the columns the caller names as *text
//! columns*, which are always read as strings, whatever they look like (a
//! phrase column whose first rows are `"10"` or `"1984"` must stay text).
//! In text columns an empty field reads as null; [`Table::texts`] turns
//! null into the empty string.
//!
//! # Writing
//!
//! [`write_parquet`] writes LZ4-compressed parquet (`LZ4_RAW`, which
//! pyarrow ≥ 8 and polars read; faster to write and read than snappy or
//! zstd) through a temporary
//! file in the target's directory and renames it into place, so an output
//! is either complete or absent. pandas (pyarrow) and polars read it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;
use rayon::prelude::*;
use thiserror::Error;

use crate::atomic;

/// Rows of a text table that the first attempt infers column types from.
const INFER_ROWS: usize = 1000;

/// The valid format names, for messages.
pub const FORMAT_NAMES: &str = "tsv, csv or parquet";
/// The extensions that choose a format, for messages.
pub const EXTENSIONS: &str = ".tsv, .tab (tsv), .csv (csv), .parquet, .pq (parquet)";

/// Why a table could not be read or written.
#[derive(Debug, Error)]
pub enum TableError {
    #[error("unknown table format `{name}` (valid formats: {FORMAT_NAMES})")]
    UnknownFormat { name: String },
    #[error(
        "`{path}`: cannot tell the table format from the file name (known extensions: {EXTENSIONS})\n\
         Hint: name the format with the `format` option ({FORMAT_NAMES})"
    )]
    UnknownExtension { path: PathBuf },
    #[error("failed to read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}`: line {line} is not valid UTF-8 (byte {byte:#04x} at column {column})\nHint: save the file as UTF-8")]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        column: usize,
        byte: u8,
    },
    #[error("`{path}` is empty: a table needs a header row naming its columns")]
    Empty { path: PathBuf },
    #[error("`{path}` has a header but no rows")]
    NoRows { path: PathBuf },
    #[error("`{path}`: the header names column `{column}` twice")]
    DuplicateColumn { path: PathBuf, column: String },
    #[error("`{path}`: line {line} is empty\nHint: remove it; rows are one per line")]
    EmptyLine { path: PathBuf, line: usize },
    #[error(
        "`{path}`: line {line} has {found} fields but the header has {expected}\n\
         Hint: fields are separated by {separator} and never quoted, so a field cannot contain {separator}"
    )]
    FieldCount {
        path: PathBuf,
        line: usize,
        found: usize,
        expected: usize,
        separator: Separator,
    },
    #[error("`{path}` has no column `{column}` (its columns: {})", quoted_list(.existing))]
    MissingColumn {
        path: PathBuf,
        column: String,
        existing: Vec<String>,
    },
    #[error("column `{column}` of `{path}` holds {dtype} values, not text")]
    NotText {
        path: PathBuf,
        column: String,
        dtype: String,
    },
    #[error("column `{column}` of `{path}` holds {dtype} values, not integers")]
    NotIntegers {
        path: PathBuf,
        column: String,
        dtype: String,
    },
    #[error("`{path}`: column `{column}` at {location} is {value}, not an integer")]
    NotInteger {
        path: PathBuf,
        column: String,
        location: String,
        value: String,
    },
    #[error("failed to parse `{path}` as {format}: {source}")]
    Parse {
        path: PathBuf,
        format: Format,
        #[source]
        source: PolarsError,
    },
    #[error("failed to write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("failed to write `{path}`")]
    WriteIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `a`, `b`, `c` with backticks, for messages.
pub(crate) fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A table file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tsv,
    Csv,
    Parquet,
}

/// The field separator of a text format, printable in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Separator(pub u8);

impl fmt::Display for Separator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b'\t' => f.write_str("tabs"),
            b',' => f.write_str("commas"),
            other => write!(f, "{:?}", other as char),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Tsv => "tsv",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        })
    }
}

impl Format {
    /// The format called `name` (`tsv`, `csv` or `parquet`, any case).
    pub fn from_name(name: &str) -> Result<Format, TableError> {
        match name.to_ascii_lowercase().as_str() {
            "tsv" => Ok(Format::Tsv),
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            _ => Err(TableError::UnknownFormat {
                name: name.to_string(),
            }),
        }
    }

    /// The format named by the extension of `path`.
    pub fn from_path(path: &Path) -> Result<Format, TableError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("tsv" | "tab") => Ok(Format::Tsv),
            Some("csv") => Ok(Format::Csv),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => Err(TableError::UnknownExtension {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The explicit format if given, else the one of the extension.
    pub fn resolve(path: &Path, explicit: Option<&str>) -> Result<Format, TableError> {
        match explicit {
            Some(name) => Format::from_name(name),
            None => Format::from_path(path),
        }
    }

    /// The field separator of a text format.
    pub fn separator(self) -> Option<u8> {
        match self {
            Format::Tsv => Some(b'\t'),
            Format::Csv => Some(b','),
            Format::Parquet => None,
        }
    }
}

/// A table read from a file, remembering where it came from so that its
/// errors can name the file and the line.
#[derive(Debug, Clone)]
pub struct Table {
    path: PathBuf,
    format: Format,
    df: DataFrame,
    /// For a table read with [`Table::read_keeping`]: the data row (from 0)
    /// of the file that each row was.
    file_rows: Option<Vec<usize>>,
}

/// Rows to keep, by the raw text of one column, decided while a text table
/// is checked and before polars parses it (see [`Table::read_keeping`]).
pub struct KeepRows<'a> {
    pub column: &'a str,
    pub keep: &'a (dyn Fn(&str) -> bool + Sync),
}

/// What [`Table::read_keeping`] saw of every row, kept or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptRows {
    /// Data rows in the file.
    pub rows_read: usize,
    /// Each distinct text of the column, with how many rows have it; for a
    /// text file, only when no row was kept (the message that says so lists
    /// them).
    pub values: HashMap<String, usize>,
}

impl Table {
    /// Reads `path` in `format` (or the format of its extension).
    /// `text_columns` are read as strings whatever they look like (when the
    /// file has them; a missing one is not an error here, [`Table::column`]
    /// reports it when asked for).
    pub fn read(
        path: &Path,
        format: Option<&str>,
        text_columns: &[&str],
    ) -> Result<Table, TableError> {
        let format = Format::resolve(path, format)?;
        let df = match format.separator() {
            Some(separator) => read_text(path, format, separator, text_columns)?,
            None => read_parquet(path)?,
        };
        Ok(Table {
            path: path.to_path_buf(),
            format,
            df,
            file_rows: None,
        })
    }

    /// Like [`Table::read`], keeping only the rows whose `filter.column`
    /// text passes `filter.keep`. A text file is filtered while it is
    /// checked, so polars parses only the rows kept (and infers column
    /// types from them); a parquet file is read whole, then filtered. Errors
    /// still name the file's own line numbers. Returns the table (possibly
    /// without rows) and what was seen of every row.
    pub fn read_keeping(
        path: &Path,
        format: Option<&str>,
        text_columns: &[&str],
        filter: &KeepRows,
    ) -> Result<(Table, KeptRows), TableError> {
        let format = Format::resolve(path, format)?;
        let Some(separator) = format.separator() else {
            let table = Table::read(path, Some(&format.to_string()), text_columns)?;
            return table.keep_parsed(filter);
        };
        let bytes = file_bytes(path)?;
        // The header line only: the whole file is checked below, once.
        let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let line = &start[..memchr::memchr(b'\n', start).unwrap_or(start.len())];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let first = std::str::from_utf8(line).unwrap_or_default();
        let Some(index) = first
            .split(separator as char)
            .position(|h| h == filter.column)
        else {
            // Checked first, so that a bad file is reported as such.
            let (body, _) = check_text(path, &bytes, separator, None)?;
            return Err(TableError::MissingColumn {
                path: path.to_path_buf(),
                column: filter.column.to_string(),
                existing: header_names(body, separator)
                    .iter()
                    .map(|h| h.to_string())
                    .collect(),
            });
        };
        let mut keep = Keep {
            index,
            test: filter.keep,
            count: false,
        };
        let (body, mut scan) = check_text(path, &bytes, separator, Some(keep))?;
        if scan.ranges.is_empty() {
            keep.count = true;
            scan = check_text(path, &bytes, separator, Some(keep))?.1;
        }
        let header = header_names(body, separator);
        let header_end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
        let rows = body.get(header_end + 1..).unwrap_or_default();
        let mut kept_text = Vec::with_capacity(header_end + 1 + scan.bytes);
        kept_text.extend_from_slice(&body[..header_end]);
        for range in &scan.ranges {
            kept_text.push(b'\n');
            kept_text.extend_from_slice(&rows[range.clone()]);
        }
        let df = if scan.ranges.is_empty() {
            // No rows: the columns, as text, without parsing anything.
            DataFrame::new_infer_height(
                header
                    .iter()
                    .map(|h| Column::new((*h).into(), Vec::<&str>::new()))
                    .collect(),
            )
            .map_err(|source| TableError::Parse {
                path: path.to_path_buf(),
                format,
                source,
            })?
        } else {
            parse_text(path, format, separator, text_columns, &header, &kept_text)?
        };
        let table = Table {
            path: path.to_path_buf(),
            format,
            df,
            file_rows: Some(scan.file_rows),
        };
        Ok((
            table,
            KeptRows {
                rows_read: scan.rows_read,
                values: scan.values,
            },
        ))
    }

    /// Filters a table read whole (parquet).
    fn keep_parsed(self, filter: &KeepRows) -> Result<(Table, KeptRows), TableError> {
        let column = self.column(filter.column)?;
        let text = column
            .cast(&DataType::String)
            .map_err(|source| TableError::Parse {
                path: self.path.clone(),
                format: self.format,
                source,
            })?;
        let text = text.str().expect("cast to String gives strings");
        let mut values: HashMap<String, usize> = HashMap::new();
        let mut rows: Vec<IdxSize> = Vec::new();
        for (row, value) in text.iter().enumerate() {
            let value = value.unwrap_or("");
            *values.entry(value.to_string()).or_default() += 1;
            if (filter.keep)(value) {
                rows.push(row as IdxSize);
            }
        }
        let rows_read = self.df.height();
        let df = self
            .df
            .take(&IdxCa::from_vec("rows".into(), rows.clone()))
            .map_err(|source| TableError::Parse {
                path: self.path.clone(),
                format: self.format,
                source,
            })?;
        let table = Table {
            file_rows: Some(rows.into_iter().map(|r| r as usize).collect()),
            df,
            ..self
        };
        Ok((table, KeptRows { rows_read, values }))
    }

    /// Wraps a frame read elsewhere (for tests and callers that build one).
    pub fn from_frame(path: &Path, format: Format, df: DataFrame) -> Table {
        Table {
            path: path.to_path_buf(),
            format,
            df,
            file_rows: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn frame(&self) -> &DataFrame {
        &self.df
    }

    pub fn into_frame(self) -> DataFrame {
        self.df
    }

    pub fn height(&self) -> usize {
        self.df.height()
    }

    /// The column names, in file order.
    pub fn column_names(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .into_iter()
            .map(|n| n.to_string())
            .collect()
    }

    /// The column `name`, or an error naming the columns that exist.
    pub fn column(&self, name: &str) -> Result<&Column, TableError> {
        self.df.column(name).map_err(|_| TableError::MissingColumn {
            path: self.path.clone(),
            column: name.to_string(),
            existing: self.column_names(),
        })
    }

    /// Where data row `row` (from 0) is in the file: `line N` for text
    /// files (the header is line 1), `row N` (from 1) for parquet.
    pub fn location(&self, row: usize) -> String {
        let row = match &self.file_rows {
            Some(rows) => rows[row],
            None => row,
        };
        match self.format {
            Format::Parquet => format!("row {}", row + 1),
            Format::Tsv | Format::Csv => format!("line {}", row + 2),
        }
    }

    /// The values of a text column, null read as the empty string.
    pub fn texts(&self, name: &str) -> Result<Vec<&str>, TableError> {
        let column = self.column(name)?;
        let strings = column.str().map_err(|_| TableError::NotText {
            path: self.path.clone(),
            column: name.to_string(),
            dtype: column.dtype().to_string(),
        })?;
        Ok(strings.iter().map(|s| s.unwrap_or("")).collect())
    }

    /// The values of an integer column as `i64`; a null, a float or text
    /// is an error naming its row.
    pub fn integers(&self, name: &str) -> Result<Vec<i64>, TableError> {
        let column = self.column(name)?;
        let not_integer = |row: usize, value: String| TableError::NotInteger {
            path: self.path.clone(),
            column: name.to_string(),
            location: self.location(row),
            value,
        };
        if let Ok(strings) = column.str() {
            return strings
                .iter()
                .enumerate()
                .map(|(row, s)| match s {
                    Some(s) => s
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| not_integer(row, format!("`{s}`"))),
                    None => Err(not_integer(row, "empty".into())),
                })
                .collect();
        }
        let not_integers = || TableError::NotIntegers {
            path: self.path.clone(),
            column: name.to_string(),
            dtype: column.dtype().to_string(),
        };
        if !column.dtype().is_integer() {
            return Err(not_integers());
        }
        let ints = column.cast(&DataType::Int64).map_err(|_| not_integers())?;
        let ints = ints.i64().expect("cast to Int64");
        ints.iter()
            .enumerate()
            .map(|(row, v)| v.ok_or_else(|| not_integer(row, "empty".into())))
            .collect()
    }
}

/// Bytes per piece of a parallel read in [`file_bytes`].
const READ_PIECE: usize = 4 << 20;

/// The bytes of a text table, read on all cores.
///
/// Each core reads its own pieces (`pread`), so the copy out of the page
/// cache and the page faults of the fresh buffer are shared out; read on
/// one core, a 79 MB file took half the time of its split. (Mapping the
/// file copies nothing, but a file truncated meanwhile would then kill the
/// process with SIGBUS instead of giving an error.)
fn file_bytes(path: &Path) -> Result<Vec<u8>, TableError> {
    use std::os::unix::fs::FileExt;
    let err = |source| TableError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    let len = usize::try_from(len).map_err(|_| err(std::io::Error::other("it is too large")))?;
    let mut bytes = vec![0u8; len];
    bytes
        .par_chunks_mut(READ_PIECE)
        .enumerate()
        .try_for_each(|(i, piece)| file.read_exact_at(piece, (i * READ_PIECE) as u64))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                std::io::Error::other("it got shorter while it was read")
            }
            _ => e,
        })
        .map_err(err)?;
    Ok(bytes)
}

/// Reads and checks a text table, then hands the bytes to polars.
fn read_text(
    path: &Path,
    format: Format,
    separator: u8,
    text_columns: &[&str],
) -> Result<DataFrame, TableError> {
    let bytes = file_bytes(path)?;
    let (body, _) = check_text(path, &bytes, separator, None)?;
    let header = header_names(body, separator);
    parse_text(path, format, separator, text_columns, &header, body)
}

/// Parses checked text (header line first) with polars.
fn parse_text(
    path: &Path,
    format: Format,
    separator: u8,
    text_columns: &[&str],
    header: &[&str],
    body: &[u8],
) -> Result<DataFrame, TableError> {
    let overwrite: Schema = header
        .iter()
        .filter(|h| text_columns.contains(h))
        .map(|h| Field::new((*h).into(), DataType::String))
        .collect();
    let parse = CsvParseOptions::default()
        .with_separator(separator)
        .with_quote_char(None);
    let read = |infer_rows: Option<usize>| {
        CsvReadOptions::default()
            .with_has_header(true)
            .with_parse_options(parse.clone())
            .with_schema_overwrite(Some(Arc::new(overwrite.clone())))
            .with_infer_schema_length(infer_rows)
            .with_raise_if_empty(true)
            .into_reader_with_file_handle(Cursor::new(body))
            .finish()
    };
    // Types are inferred from the first rows; when a later row does not
    // fit (an integer column with `abc` on line 5000), read again with
    // types inferred from every row, which always fit.
    read(Some(INFER_ROWS))
        .or_else(|_| read(None))
        .map_err(|source| TableError::Parse {
            path: path.to_path_buf(),
            format,
            source,
        })
}

fn read_parquet(path: &Path) -> Result<DataFrame, TableError> {
    let file = File::open(path).map_err(|source| TableError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|source| TableError::Parse {
            path: path.to_path_buf(),
            format: Format::Parquet,
            source,
        })?;
    if df.width() == 0 {
        return Err(TableError::Empty {
            path: path.to_path_buf(),
        });
    }
    if df.height() == 0 {
        return Err(TableError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(df)
}

/// The header's field names (the body starts with the header line).
fn header_names(body: &[u8], separator: u8) -> Vec<&str> {
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let line = body[..end].strip_suffix(b"\r").unwrap_or(&body[..end]);
    std::str::from_utf8(line)
        .expect("checked UTF-8")
        .split(separator as char)
        .collect()
}

/// The checks of the module docs; returns the bytes without a UTF-8 byte
/// order mark and without trailing empty lines.
fn check_text<'a>(
    path: &Path,
    bytes: &'a [u8],
    separator: u8,
    keep: Option<Keep>,
) -> Result<(&'a [u8], Scan), TableError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // UTF-8 is checked by the header here and by each block of rows in
    // `check_rows`, while the block is in cache; a bad file is looked at
    // again, whole, for the position of its first bad byte.
    let not_utf8 = || {
        let e = std::str::from_utf8(bytes).expect_err("a block is not UTF-8");
        let good = &bytes[..e.valid_up_to()];
        let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        TableError::NotUtf8 {
            path: path.to_path_buf(),
            line,
            column: e.valid_up_to() - line_start + 1,
            byte: bytes[e.valid_up_to()],
        }
    };
    // Trailing empty lines (and a final line end) are not rows.
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let body = &bytes[..end];
    if body.is_empty() {
        return Err(TableError::Empty {
            path: path.to_path_buf(),
        });
    }

    let mut lines = body.split(|&b| b == b'\n');
    let header = lines.next().expect("split yields at least one item");
    let header = header.strip_suffix(b"\r").unwrap_or(header);
    let names: Vec<&str> = std::str::from_utf8(header)
        .map_err(|_| not_utf8())?
        .split(separator as char)
        .collect();
    let mut seen = HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(**n)) {
        return Err(TableError::DuplicateColumn {
            path: path.to_path_buf(),
            column: dup.to_string(),
        });
    }
    let expected = names.len();
    let rest = match body.iter().position(|&b| b == b'\n') {
        Some(end) => &body[end + 1..],
        None => &[],
    };
    let scan = match check_rows(rest, separator, expected, keep) {
        Ok(scan) => scan,
        Err(RowFault::NotUtf8) => return Err(not_utf8()),
        Err(RowFault::Fields { row, found }) => {
            let line = row + 2;
            return Err(match found {
                0 => TableError::EmptyLine {
                    path: path.to_path_buf(),
                    line,
                },
                found => TableError::FieldCount {
                    path: path.to_path_buf(),
                    line,
                    found,
                    expected,
                    separator: Separator(separator),
                },
            });
        }
    };
    if scan.rows_read == 0 {
        return Err(TableError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok((&bytes[..end], scan))
}

/// A row filter for [`check_rows`]: the field, the test, and whether to
/// count the distinct values of the field (only wanted when no row passes,
/// to say which values there are: hashing every row's value costs).
#[derive(Clone, Copy)]
struct Keep<'a> {
    index: usize,
    test: &'a (dyn Fn(&str) -> bool + Sync),
    count: bool,
}

/// What is wrong with the rows of a text table.
enum RowFault {
    /// Some bytes are not UTF-8 (found again by the caller, whole-file).
    NotUtf8,
    /// The first data row (from 0) whose field count is not the header's,
    /// with the count it has (0 for an empty line).
    Fields { row: usize, found: usize },
}

/// Bytes per parallel task of [`check_rows`] (cut at a line end).
const CHECK_BLOCK: usize = 1 << 20;

/// Counts the rows of `rows` (the lines under the header) and checks that
/// they are UTF-8 and that each has `expected` fields; with `keep`, also picks the rows whose field
/// passes the test and counts every distinct value of that field. Blocks of
/// lines run on all cores, each checked for UTF-8 just before its lines
/// are split, while it is in cache. Bad UTF-8 anywhere is reported first;
/// otherwise the first bad row in file order.
fn check_rows(
    rows: &[u8],
    separator: u8,
    expected: usize,
    keep: Option<Keep>,
) -> Result<Scan, RowFault> {
    let blocks = line_blocks(rows);
    let scanned: Vec<Result<Scan, RowFault>> = blocks
        .par_iter()
        .map(|&(offset, block)| {
            if std::str::from_utf8(block).is_err() {
                return Err(RowFault::NotUtf8);
            }
            let mut scan = Scan::default();
            let mut counts: HashMap<&[u8], usize> = HashMap::new();
            let body = block.strip_suffix(b"\n").unwrap_or(block);
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', body).chain([body.len()]) {
                let line = &body[start..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let mut found = 0;
                let mut field = 0..0;
                if !line.is_empty() {
                    let mut field_start = 0;
                    for sep in memchr::memchr_iter(separator, line).chain([line.len()]) {
                        if keep.is_some_and(|k| k.index == found) {
                            field = field_start..sep;
                        }
                        found += 1;
                        field_start = sep + 1;
                    }
                }
                if found != expected {
                    return Err(RowFault::Fields {
                        row: scan.rows_read,
                        found,
                    });
                }
                if let Some(keep) = keep {
                    let value = &line[field];
                    if keep.count {
                        *counts.entry(value).or_default() += 1;
                    }
                    if (keep.test)(std::str::from_utf8(value).expect("checked UTF-8")) {
                        scan.ranges
                            .push(offset + start..offset + start + line.len());
                        scan.file_rows.push(scan.rows_read);
                        scan.bytes += line.len() + 1;
                    }
                }
                scan.rows_read += 1;
                start = end + 1;
            }
            for (value, n) in counts {
                let text = String::from_utf8_lossy(value).into_owned();
                *scan.values.entry(text).or_default() += n;
            }
            Ok(scan)
        })
        .collect();
    // Bad UTF-8 anywhere is reported before a bad row.
    if scanned.iter().any(|s| matches!(s, Err(RowFault::NotUtf8))) {
        return Err(RowFault::NotUtf8);
    }
    let mut all = Scan::default();
    for scan in scanned {
        let scan = scan.map_err(|fault| match fault {
            RowFault::Fields { row, found } => RowFault::Fields {
                row: all.rows_read + row,
                found,
            },
            RowFault::NotUtf8 => RowFault::NotUtf8,
        })?;
        all.file_rows
            .extend(scan.file_rows.iter().map(|r| r + all.rows_read));
        all.rows_read += scan.rows_read;
        all.ranges.extend(scan.ranges);
        all.bytes += scan.bytes;
        for (text, n) in scan.values {
            *all.values.entry(text).or_default() += n;
        }
    }
    Ok(all)
}

/// What [`check_rows`] found.
#[derive(Debug, Default)]
struct Scan {
    rows_read: usize,
    /// Byte ranges (in the scanned rows, without line ends) of the rows kept.
    ranges: Vec<std::ops::Range<usize>>,
    /// Their data-row numbers.
    file_rows: Vec<usize>,
    values: HashMap<String, usize>,
    /// Bytes kept.
    bytes: usize,
}

/// `rows` cut into blocks of about [`CHECK_BLOCK`] bytes at line ends:
/// (offset, block).
fn line_blocks(rows: &[u8]) -> Vec<(usize, &[u8])> {
    let mut blocks = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let from = (start + CHECK_BLOCK).min(rows.len());
        let end = match memchr::memchr(b'\n', &rows[from..]) {
            Some(i) => from + i + 1,
            None => rows.len(),
        };
        blocks.push((start, &rows[start..end]));
        start = end;
    }
    blocks
}

/// Writes `df` to `path` as parquet, atomically (temporary file + rename),
/// creating parent directories.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<(), TableError> {
    let mut polars_error = None;
    let result = atomic::write(path, |file| {
        ParquetWriter::new(&mut *file)
            .with_compression(ParquetCompression::Lz4Raw)
            .finish(df)
            .map_err(|e| {
                let io = std::io::Error::other(e.to_string());
                polars_error = Some(e);
                io
            })?;
        Ok(())
    });
    match (result, polars_error) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(source)) => Err(TableError::Write {
            path: path.to_path_buf(),
            source,
        }),
        (Err(source), None) => Err(TableError::WriteIo {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn read_err(path: &Path) -> String {
        Table::read(path, None, &[]).unwrap_err().to_string()
    }

    #[test]
    fn formats_come_from_the_name_or_the_extension() {
        let p = Path::new;
        assert_eq!(Format::from_path(p("a/b.tsv")).unwrap(), Format::Tsv);
        assert_eq!(Format::from_path(p("b.TAB")).unwrap(), Format::Tsv);
        assert_eq!(Format::from_path(p("b.csv")).unwrap(), Format::Csv);
        assert_eq!(Format::from_path(p("b.pq")).unwrap(), Format::Parquet);
        assert_eq!(Format::from_path(p("b.parquet")).unwrap(), Format::Parquet);
        assert_eq!(
            Format::resolve(p("b.txt"), Some("CSV")).unwrap(),
            Format::Csv
        );
        let e = Format::from_path(p("data/b.txt")).unwrap_err().to_string();
        assert!(
            e.contains("`data/b.txt`") && e.contains(".tsv, .tab"),
            "{e}"
        );
        assert!(e.contains("Hint: name the format"), "{e}");
        let e = Format::from_name("xlsx").unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown table format `xlsx` (valid formats: tsv, csv or parquet)"
        );
    }

    #[test]
    fn reads_tsv_without_quoting_and_infers_integers() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "r.tsv",
            b"PhraseId\tPhrase\tSentiment\n1\t\"Quoted\" start\t4\n2\tit's \"so\" bad\t0\n3\t10\t2\n",
        );
        let t = Table::read(&path, None, &["Phrase"]).unwrap();
        assert_eq!(t.column_names(), ["PhraseId", "Phrase", "Sentiment"]);
        assert_eq!(
            t.texts("Phrase").unwrap(),
            ["\"Quoted\" start", "it's \"so\" bad", "10"]
        );
        assert_eq!(t.integers("Sentiment").unwrap(), [4, 0, 2]);
        assert_eq!(t.column("Sentiment").unwrap().dtype(), &DataType::Int64);
        assert_eq!(t.location(0), "line 2");
    }

    #[test]
    fn reads_csv_with_crlf_bom_and_empty_texts() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "r.csv",
            b"\xEF\xBB\xBFid,text,y\r\n1,good,1\r\n2,,0\r\n3,bad,0\r\n\r\n",
        );
        let t = Table::read(&path, None, &["text"]).unwrap();
        assert_eq!(t.column_names(), ["id", "text", "y"]);
        assert_eq!(t.texts("text").unwrap(), ["good", "", "bad"]);
        assert_eq!(t.integers("y").unwrap(), [1, 0, 0]);
    }

    #[test]
    fn parquet_roundtrip_keeps_columns_and_types() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = write(dir.path(), "r.tsv", b"a\tb\n1\tx\n2\ty\n");
        let mut df = Table::read(&tsv, None, &["b"]).unwrap().into_frame();
        let out = dir.path().join("sub").join("r.parquet");
        write_parquet(&mut df, &out).unwrap();
        let back = Table::read(&out, None, &[]).unwrap();
        assert_eq!(back.frame(), &df);
        assert_eq!(back.location(1), "row 2");
        // Only the output is left in its directory: no temporary file.
        assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn a_type_change_after_the_first_rows_reads_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = String::from("a\tb\n");
        for i in 0..2000 {
            s.push_str(&format!("{i}\tx\n"));
        }
        s.push_str("abc\ty\n");
        let t = Table::read(&write(dir.path(), "late.tsv", s.as_bytes()), None, &[]).unwrap();
        assert_eq!(t.height(), 2001);
        assert_eq!(t.column("a").unwrap().dtype(), &DataType::String);
        let e = t.integers("a").unwrap_err().to_string();
        assert!(
            e.ends_with("column `a` at line 2002 is `abc`, not an integer"),
            "{e}"
        );
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "x.tsv", b"a\tb\n1\tok\n2\tbad \xff here\n");
        let e = read_err(&path);
        assert!(
            e.contains("x.tsv`: line 3 is not valid UTF-8 (byte 0xff at column 7)"),
            "{e}"
        );
        // On the first line, column counted from the start of the file.
        let path = write(dir.path(), "y.tsv", b"\xfe\n");
        assert!(read_err(&path).contains("line 1 is not valid UTF-8 (byte 0xfe at column 1)"));
    }

    #[test]
    fn bad_utf8_in_a_later_block_is_found_before_an_earlier_bad_row() {
        // Line 3 has a field too many; far past the first check block,
        // line 50,002 is not UTF-8: the UTF-8 error wins, as for a file
        // of one block.
        let mut text = b"a\tb\n1\t2\n1\t2\t3\n".to_vec();
        let rows = CHECK_BLOCK / 20 * 2;
        for i in 0..rows {
            text.extend_from_slice(format!("{i}\tsome words in row\n").as_bytes());
        }
        text.extend_from_slice(b"9\tend \xc3\n");
        let dir = tempfile::tempdir().unwrap();
        let e = read_err(&write(dir.path(), "big.tsv", &text));
        let line = rows + 4;
        assert!(
            e.contains(&format!(
                "line {line} is not valid UTF-8 (byte 0xc3 at column 7)"
            )),
            "{e}"
        );
    }

    #[test]
    fn empty_and_header_only_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_err(&write(dir.path(), "e.tsv", b""));
        assert!(e.contains("is empty: a table needs a header row"), "{e}");
        let e = read_err(&write(dir.path(), "h.tsv", b"a\tb\n"));
        assert!(e.ends_with("h.tsv` has a header but no rows"), "{e}");
        let e = read_err(&write(dir.path(), "h2.csv", b"a,b\n\n\n"));
        assert!(e.ends_with("has a header but no rows"), "{e}");
    }

    #[test]
    fn ragged_lines_empty_lines_and_duplicate_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_err(&write(dir.path(), "r.tsv", b"a\tb\n1\t2\n1\t2\t3\n"));
        assert!(
            e.contains("line 3 has 3 fields but the header has 2") && e.contains("tabs"),
            "{e}"
        );
        let e = read_err(&write(dir.path(), "r.csv", b"a,b\n1,\"x, y\"\n"));
        assert!(
            e.contains("line 2 has 3 fields") && e.contains("commas"),
            "{e}"
        );
        let e = read_err(&write(dir.path(), "m.tsv", b"a\tb\n1\t2\n\n3\t4\n"));
        assert!(e.contains("line 3 is empty"), "{e}");
        let e = read_err(&write(dir.path(), "d.tsv", b"a\tb\ta\n1\t2\t3\n"));
        assert!(e.contains("the header names column `a` twice"), "{e}");
    }

    #[test]
    fn missing_column_names_the_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "r.tsv", b"PhraseId\tPhrase\n1\tx\n");
        let t = Table::read(&path, None, &["Sentiment"]).unwrap();
        let e = t.column("Sentiment").unwrap_err().to_string();
        assert!(
            e.ends_with("r.tsv` has no column `Sentiment` (its columns: `PhraseId`, `Phrase`)"),
            "{e}"
        );
    }

    #[test]
    fn read_keeping_filters_before_parsing_and_keeps_file_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = write(dir.path(), "t.tsv", b"id\tlabel\n1\ta\n2\tb\n3\ta\n4\t\n");
        let keep = |v: &str| v == "a";
        let filter = KeepRows {
            column: "label",
            keep: &keep,
        };
        let (t, kept) = Table::read_keeping(&tsv, None, &["label"], &filter).unwrap();
        assert_eq!(t.integers("id").unwrap(), [1, 3]);
        assert_eq!(t.location(1), "line 4");
        assert_eq!(kept.rows_read, 4);
        assert!(
            kept.values.is_empty(),
            "values are counted only when no row is kept"
        );

        // Parquet is read whole, then filtered the same way.
        let mut df = Table::read(&tsv, None, &["label"]).unwrap().into_frame();
        let pq = dir.path().join("t.parquet");
        write_parquet(&mut df, &pq).unwrap();
        let (t, kept) = Table::read_keeping(&pq, None, &["label"], &filter).unwrap();
        assert_eq!(t.integers("id").unwrap(), [1, 3]);
        assert_eq!(t.location(1), "row 3");
        assert_eq!(kept.rows_read, 4);

        // Nothing kept: the columns are still there.
        let none = |_: &str| false;
        let filter = KeepRows {
            column: "label",
            keep: &none,
        };
        let (t, kept) = Table::read_keeping(&tsv, None, &["label"], &filter).unwrap();
        assert_eq!(
            (t.height(), t.column_names().len(), kept.rows_read),
            (0, 2, 4)
        );
        let mut values: Vec<_> = kept.values.into_iter().collect();
        values.sort();
        assert_eq!(values, [("".into(), 1), ("a".into(), 2), ("b".into(), 1)]);
        let filter = KeepRows {
            column: "nope",
            keep: &none,
        };
        let e = Table::read_keeping(&tsv, None, &[], &filter)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no column `nope` (its columns: `id`, `label`)"),
            "{e}"
        );
    }

    #[test]
    fn typed_access_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "r.tsv", b"t\ty\nx\t1\ny\tpos\n");
        let t = Table::read(&path, None, &["t", "y"]).unwrap();
        let e = t.integers("y").unwrap_err().to_string();
        assert!(
            e.ends_with("r.tsv`: column `y` at line 3 is `pos`, not an integer"),
            "{e}"
        );
        let path = write(dir.path(), "n.tsv", b"t\ty\n1\t2\n");
        let t = Table::read(&path, None, &[]).unwrap();
        let e = t.texts("t").unwrap_err().to_string();
        assert!(e.contains("column `t` of") && e.contains("not text"), "{e}");
        let path = write(dir.path(), "f.tsv", b"t\ty\nx\t1.5\n");
        let t = Table::read(&path, None, &[]).unwrap();
        let e = t.integers("y").unwrap_err().to_string();
        assert!(
            e.contains("column `y` of") && e.ends_with("holds f64 values, not integers"),
            "{e}"
        );
    }

    #[test]
    fn missing_file_and_foreign_parquet_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_err(&dir.path().join("nope.tsv"));
        assert!(
            e.contains("failed to read") && e.contains("nope.tsv"),
            "{e}"
        );
        let path = write(dir.path(), "x.parquet", b"a\tb\n1\t2\n");
        let e = read_err(&path);
        assert!(e.contains("x.parquet` as parquet"), "{e}");
    }
}
