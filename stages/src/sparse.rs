//! `sparse`: a compressed sparse row (CSR) matrix of `f64`.
//!
//! A document-term matrix is mostly zeros (a phrase uses a handful of the
//! vocabulary's thousands of terms), so it is stored as scipy's
//! `csr_matrix` stores it, in memory proportional to the non-zeros:
//!
//! - `indptr` (`nrows + 1` offsets): row `i` owns the entries
//!   `indptr[i]..indptr[i + 1]`;
//! - `indices` (`u32` column of each entry) and `data` (its value).
//!
//! Invariants, checked by [`Csr::new`] and kept by [`CsrBuilder`]: `indptr`
//! starts at 0, never decreases and ends at `nnz`; every column is below
//! `ncols`; within a row, columns are strictly increasing (sorted, no
//! duplicates, as scipy's canonical format and sklearn's vectorizers give).
//!
//! The products are the ones a linear model needs, and never densify `X`:
//! `X · M` and `Xᵀ · M` for a dense row-major `M` with `k` columns
//! (`k = 1` is the matrix-vector product, with its own fast path).

use rayon::prelude::*;
use thiserror::Error;

/// Rows per parallel task in [`Csr::mul_dense`]: large enough that the
/// hand-off costs nothing beside the work, small enough to share out.
pub const ROWS_PER_TASK: usize = 4096;

/// The rows of a matrix with row offsets `indptr`, by number of entries,
/// shortest first, ties in row order: the order the fit visits them in
/// (see [`crate::logistic`]).
pub fn shortest_first(indptr: &[usize]) -> Vec<usize> {
    let rows = indptr.len().saturating_sub(1);
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_by_key(|&i| indptr[i + 1] - indptr[i]);
    order
}

/// Why a CSR matrix could not be built from raw parts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SparseError {
    #[error("a CSR matrix with {nrows} rows needs {expected} row offsets, got {found}")]
    IndptrLength {
        nrows: usize,
        expected: usize,
        found: usize,
    },
    #[error(
        "CSR row offsets must start at 0, never decrease and end at the number of entries ({nnz})"
    )]
    IndptrNotMonotone { nnz: usize },
    #[error("CSR indices and data differ in length ({indices} and {data})")]
    DataLength { indices: usize, data: usize },
    #[error("row {row} has column {col}, but the matrix has {ncols} columns")]
    ColumnOutOfRange { row: usize, col: u32, ncols: usize },
    #[error("row {row} has unsorted or repeated columns")]
    UnsortedRow { row: usize },
    #[error("a matrix with {0} columns cannot be indexed with u32 columns")]
    TooManyColumns(usize),
}

/// A CSR matrix; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    nrows: usize,
    ncols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f64>,
}

impl Csr {
    /// Checks the invariants and builds the matrix.
    pub fn new(
        nrows: usize,
        ncols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f64>,
    ) -> Result<Csr, SparseError> {
        if ncols > u32::MAX as usize + 1 {
            return Err(SparseError::TooManyColumns(ncols));
        }
        if indptr.len() != nrows + 1 {
            return Err(SparseError::IndptrLength {
                nrows,
                expected: nrows + 1,
                found: indptr.len(),
            });
        }
        if indices.len() != data.len() {
            return Err(SparseError::DataLength {
                indices: indices.len(),
                data: data.len(),
            });
        }
        let nnz = indices.len();
        if indptr[0] != 0 || indptr[nrows] != nnz || indptr.windows(2).any(|w| w[0] > w[1]) {
            return Err(SparseError::IndptrNotMonotone { nnz });
        }
        for row in 0..nrows {
            let cols = &indices[indptr[row]..indptr[row + 1]];
            if let Some(&col) = cols.iter().find(|&&c| c as usize >= ncols) {
                return Err(SparseError::ColumnOutOfRange { row, col, ncols });
            }
            if cols.windows(2).any(|w| w[0] >= w[1]) {
                return Err(SparseError::UnsortedRow { row });
            }
        }
        Ok(Csr {
            nrows,
            ncols,
            indptr,
            indices,
            data,
        })
    }

    pub fn nrows(&self) -> usize {
        self.nrows
    }

    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// The matrix of rows `rows[0]`, `rows[1]`, … of this one, in that
    /// order (panics if a row is out of range).
    pub fn select_rows(&self, rows: &[usize]) -> Csr {
        let nnz = rows
            .iter()
            .map(|&i| self.indptr[i + 1] - self.indptr[i])
            .sum();
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        let mut indices = Vec::with_capacity(nnz);
        let mut data = Vec::with_capacity(nnz);
        indptr.push(0);
        for &i in rows {
            let (cols, vals) = self.row(i);
            indices.extend_from_slice(cols);
            data.extend_from_slice(vals);
            indptr.push(indices.len());
        }
        Csr {
            nrows: rows.len(),
            ncols: self.ncols,
            indptr,
            indices,
            data,
        }
    }

    /// The columns and values of row `i` (panics if `i >= nrows`, as
    /// slice indexing does).
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let range = self.indptr[i]..self.indptr[i + 1];
        (&self.indices[range.clone()], &self.data[range])
    }

    /// The value at `(i, j)`, zero when not stored.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        let (cols, vals) = self.row(i);
        match cols.binary_search(&(j as u32)) {
            Ok(k) => vals[k],
            Err(_) => 0.0,
        }
    }

    /// `out = X · m`, where `m` is `ncols × k` and `out` is `nrows × k`,
    /// both dense and row-major. Panics if the lengths do not match.
    pub fn mul_dense(&self, m: &[f64], k: usize, out: &mut [f64]) {
        assert_eq!(m.len(), self.ncols * k, "X · M: M has the wrong size");
        assert_eq!(out.len(), self.nrows * k, "X · M: out has the wrong size");
        out.par_chunks_mut((ROWS_PER_TASK * k).max(1))
            .enumerate()
            .for_each(|(block, out)| {
                let first = block * ROWS_PER_TASK;
                self.mul_rows(m, k, first, out);
            });
    }

    /// `X · M` for the rows `first..` that `out` holds (serial).
    fn mul_rows(&self, m: &[f64], k: usize, first: usize, out: &mut [f64]) {
        if k == 1 {
            for (i, o) in out.iter_mut().enumerate() {
                let (cols, vals) = self.row(first + i);
                *o = cols
                    .iter()
                    .zip(vals)
                    .map(|(&j, &x)| x * m[j as usize])
                    .sum();
            }
            return;
        }
        for (i, o) in out.chunks_exact_mut(k).enumerate() {
            o.fill(0.0);
            let (cols, vals) = self.row(first + i);
            for (&j, &x) in cols.iter().zip(vals) {
                let mj = &m[j as usize * k..(j as usize + 1) * k];
                for (o, &mjc) in o.iter_mut().zip(mj) {
                    *o += x * mjc;
                }
            }
        }
    }

    /// `out = Xᵀ · m`, where `m` is `nrows × k` and `out` is `ncols × k`,
    /// both dense and row-major. Panics if the lengths do not match.
    pub fn t_mul_dense(&self, m: &[f64], k: usize, out: &mut [f64]) {
        assert_eq!(m.len(), self.nrows * k, "Xᵀ · M: M has the wrong size");
        assert_eq!(out.len(), self.ncols * k, "Xᵀ · M: out has the wrong size");
        out.fill(0.0);
        for i in 0..self.nrows {
            let (cols, vals) = self.row(i);
            let mi = &m[i * k..(i + 1) * k];
            for (&j, &x) in cols.iter().zip(vals) {
                let oj = &mut out[j as usize * k..(j as usize + 1) * k];
                for (o, &mic) in oj.iter_mut().zip(mi) {
                    *o += x * mic;
                }
            }
        }
    }

    /// `X · w` for a vector `w` of length `ncols`.
    pub fn mul_vec(&self, w: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.nrows];
        self.mul_dense(w, 1, &mut out);
        out
    }

    /// `Xᵀ · v` for a vector `v` of length `nrows`.
    pub fn t_mul_vec(&self, v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.ncols];
        self.t_mul_dense(v, 1, &mut out);
        out
    }

    /// The dense row-major copy (for tests and tiny matrices only).
    pub fn to_dense(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.nrows * self.ncols];
        for i in 0..self.nrows {
            let (cols, vals) = self.row(i);
            for (&j, &x) in cols.iter().zip(vals) {
                out[i * self.ncols + j as usize] = x;
            }
        }
        out
    }
}

/// Builds a [`Csr`] row by row; each row is given as (column, value)
/// pairs in any order, without repeated columns.
#[derive(Debug, Clone)]
pub struct CsrBuilder {
    ncols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f64>,
}

impl CsrBuilder {
    pub fn new(ncols: usize) -> CsrBuilder {
        CsrBuilder {
            ncols,
            indptr: vec![0],
            indices: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Appends one row; the pairs are sorted by column here.
    pub fn push_row(&mut self, row: &mut [(u32, f64)]) {
        row.sort_unstable_by_key(|&(j, _)| j);
        for &(j, x) in row.iter() {
            self.indices.push(j);
            self.data.push(x);
        }
        self.indptr.push(self.indices.len());
    }

    /// The matrix, with its invariants checked.
    pub fn finish(self) -> Result<Csr, SparseError> {
        let nrows = self.indptr.len() - 1;
        Csr::new(nrows, self.ncols, self.indptr, self.indices, self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [[1, 0, 2],
    ///  [0, 0, 0],
    ///  [0, 3, 4]]
    fn example() -> Csr {
        Csr::new(
            3,
            3,
            vec![0, 2, 2, 4],
            vec![0, 2, 1, 2],
            vec![1.0, 2.0, 3.0, 4.0],
        )
        .unwrap()
    }

    #[test]
    fn products_match_the_dense_matrix() {
        let x = example();
        assert_eq!(x.nnz(), 4);
        assert_eq!(x.to_dense(), [1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 4.0]);
        assert_eq!(x.mul_vec(&[1.0, 10.0, 100.0]), [201.0, 0.0, 430.0]);
        assert_eq!(x.t_mul_vec(&[1.0, 10.0, 100.0]), [1.0, 300.0, 402.0]);
        // k = 2: columns of M are [1, 10, 100] and [1, 1, 1].
        let m = [1.0, 1.0, 10.0, 1.0, 100.0, 1.0];
        let mut out = [f64::NAN; 6];
        x.mul_dense(&m, 2, &mut out);
        assert_eq!(out, [201.0, 3.0, 0.0, 0.0, 430.0, 7.0]);
        x.t_mul_dense(&m, 2, &mut out);
        assert_eq!(out, [1.0, 1.0, 300.0, 3.0, 402.0, 6.0]);
        assert_eq!(x.get(2, 1), 3.0);
        assert_eq!(x.get(1, 1), 0.0);
    }

    #[test]
    fn products_span_several_parallel_blocks() {
        // Row i holds i+1 in column i % 3; more rows than one block.
        let n = ROWS_PER_TASK * 2 + 17;
        let mut b = CsrBuilder::new(3);
        for i in 0..n {
            b.push_row(&mut [((i % 3) as u32, (i + 1) as f64)]);
        }
        let x = b.finish().unwrap();
        let z = x.mul_vec(&[1.0, 2.0, 3.0]);
        for (i, &zi) in z.iter().enumerate() {
            assert_eq!(zi, (i + 1) as f64 * (i % 3 + 1) as f64, "row {i}");
        }
    }

    #[test]
    fn selected_rows_come_in_the_given_order() {
        let x = example();
        let y = x.select_rows(&[2, 0, 2, 1]);
        assert_eq!((y.nrows(), y.ncols(), y.nnz()), (4, 3, 6));
        assert_eq!(y.row(0), x.row(2));
        assert_eq!(y.row(1), x.row(0));
        assert_eq!(y.row(2), x.row(2));
        assert_eq!(y.row(3), x.row(1));
        assert_eq!(x.select_rows(&[]).nrows(), 0);
    }

    #[test]
    fn builder_sorts_rows() {
        let mut b = CsrBuilder::new(3);
        b.push_row(&mut [(2, 2.0), (0, 1.0)]);
        b.push_row(&mut []);
        b.push_row(&mut [(2, 4.0), (1, 3.0)]);
        assert_eq!(b.finish().unwrap(), example());
    }

    #[test]
    fn bad_parts_are_refused() {
        let e = Csr::new(2, 3, vec![0, 1], vec![0], vec![1.0]).unwrap_err();
        assert!(matches!(e, SparseError::IndptrLength { expected: 3, .. }));
        let e = Csr::new(1, 3, vec![0, 1], vec![3], vec![1.0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 0 has column 3, but the matrix has 3 columns"
        );
        let e = Csr::new(1, 3, vec![0, 2], vec![1, 1], vec![1.0, 1.0]).unwrap_err();
        assert_eq!(e, SparseError::UnsortedRow { row: 0 });
        let e = Csr::new(1, 3, vec![0, 1], vec![1], vec![1.0, 2.0]).unwrap_err();
        assert!(matches!(e, SparseError::DataLength { .. }));
        let e = Csr::new(2, 3, vec![0, 1, 0], vec![1], vec![1.0]).unwrap_err();
        assert!(matches!(e, SparseError::IndptrNotMonotone { .. }));
    }
}
