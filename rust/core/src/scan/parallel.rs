//! Blocks of rows on the rayon pool. Rows are independent, so a batch splits into blocks of whole
//! SIMD tiles; small work stays on the calling thread.

use rayon::prelude::*;

/// Below this many state-element updates (L * R * N, ~0.4 ms of work) a scan stays on the calling
/// thread: waking the rayon pool costs tens of microseconds.
pub const PARALLEL_WORK: usize = 1 << 20;

/// A raw view of an output buffer whose disjoint parts are written by different rayon tasks.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut<T>(*mut T, usize);
// SAFETY: tasks only create slices of disjoint index ranges (one block of rows each), see `part`.
unsafe impl<T: Send> Send for SharedOut<T> {}
unsafe impl<T: Send> Sync for SharedOut<T> {}

impl<T> SharedOut<T> {
    pub(crate) fn new(buf: &mut [T]) -> Self {
        SharedOut(buf.as_mut_ptr(), buf.len())
    }
    /// # Safety
    /// No two live slices from `part` may overlap.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Splits rows 0..rows into blocks (`work` = L * R * N >= `PARALLEL_WORK`, see `run_blocks`).
fn row_blocks(work: usize, rows: usize) -> Vec<(usize, usize)> {
    let threads = rayon::current_num_threads().max(1);
    // Blocks of whole SIMD tiles (8 rows); one per thread for short scans (fewer hand-offs),
    // four per thread for long ones (load balance).
    let split = if work < 16 * PARALLEL_WORK { threads } else { 4 * threads };
    let per_block = if rows < 2 || threads == 1 { rows } else { rows.div_ceil(split).next_multiple_of(8) };
    (0..rows).step_by(per_block.max(1)).map(|r0| (r0, (r0 + per_block).min(rows))).collect()
}

/// Runs `task(r0, r1)` on blocks of rows covering 0..rows: one block on the calling thread when the
/// work L * R * N is below `PARALLEL_WORK` (nothing allocated, the pool not asked), else blocks of
/// whole SIMD tiles on the rayon pool.
pub(crate) fn run_blocks(steps: usize, rows: usize, n: usize, task: impl Fn(usize, usize) + Sync + Send) {
    let work = steps.saturating_mul(rows).saturating_mul(n);
    if work < PARALLEL_WORK {
        if rows > 0 {
            task(0, rows);
        }
        return;
    }
    let blocks = row_blocks(work, rows);
    if blocks.len() <= 1 {
        blocks.iter().for_each(|&(r0, r1)| task(r0, r1));
    } else {
        blocks.par_iter().for_each(|&(r0, r1)| task(r0, r1));
    }
}
