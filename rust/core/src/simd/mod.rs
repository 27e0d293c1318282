//! SIMD kernels across batch rows and across time, for x86_64 AVX2 + FMA and AVX-512F, chosen at run
//! time by one CPU-feature check (`Isa::active`).
//!
//! The fused `Prefix` step (LegS, LagT, GLagT; see `crate::scan`) is a chain of running sums over the
//! elements n of one row: serial within a row, independent across rows. A tile of W rows (W = the
//! 256-bit vector's lanes: 8 float32, 4 float64) is loaded W/2 elements at a time, transposed in
//! registers so that one vector holds element n of every row, stepped element by element with the
//! per-element tables broadcast, transposed back and stored (`kernels::forward_tiles`). The
//! arithmetic is the scalar kernel's, operation for operation (every `mul_add` is one fused FMA in
//! both), so the results are bitwise the same on every path.
//!
//! A single long row (the paper's function-approximation scan) has no rows to spread: there the
//! chain is broken over *time* instead (`kernels::wavefront`). For a lower-triangular A, element i of
//! step k + 1 needs only elements <= i of step k, so S = M * W consecutive steps run at once, one per
//! SIMD lane, skewed by one element: at tick tau, the lane of step k + q processes element tau - q,
//! taking its input from the neighbouring lane's output of the previous tick (a lane rotation). Each
//! lane keeps its own running sums; the M vectors give M independent chains per tick. The
//! per-element coefficients depend on the lane's step, so they are formed per tick from reversed
//! tables. With M W steps in flight latency matters less than operation count, so the final state of
//! a few rows uses its own form of the step (`prefix_row_step`: 8 operations and a division per
//! element, no table); every path of that form, scalar or SIMD, gives bitwise the same results.
//!
//! The wave is continuous over a run of waves: when a lane finishes element N - 1 of its step it
//! starts element 0 of its step S later (its coefficients and running sums set in that lane alone),
//! so the skew of S - 1 ticks is paid once per run, not once per S steps. Lane 0 reads element i of
//! the state N - S + 1 ticks after the last lane wrote it: the state array itself is the buffer
//! between waves, which needs N >= S. A shorter state is padded to S elements with
//! r = l = l r - h = b = 0, which pass values through without touching the running sums; the tables
//! are periodic in the element index.

#[cfg(target_arch = "x86_64")]
mod kernels;
#[cfg(target_arch = "x86_64")]
mod vector;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use crate::error::{HippoError, Result};
use crate::float::Real;
use crate::structured::PrefixTables;

/// The instruction sets the kernels are compiled for, in increasing width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust (the compiler's baseline target).
    Scalar,
    /// AVX2 + FMA: 8 float32 / 4 float64 lanes.
    Avx2,
    /// AVX-512F and VL (with AVX2 + FMA): 16 float32 / 8 float64 lanes in the time wavefront.
    Avx512,
}

/// `Isa::forced`'s value, or NO_FORCE.
static FORCED: AtomicU8 = AtomicU8::new(NO_FORCE);
const NO_FORCE: u8 = u8::MAX;

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The widest instruction set of this CPU (detected once, then cached).
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx2") && has!("fma") {
                    return if has!("avx512f") && has!("avx512vl") { Isa::Avx512 } else { Isa::Avx2 };
                }
            }
            Isa::Scalar
        })
    }

    /// The instruction set the kernels use now: `detected()`, unless a test forced another one.
    #[inline]
    pub fn active() -> Isa {
        match FORCED.load(Ordering::Relaxed) {
            NO_FORCE => Isa::detected(),
            i => Isa::ALL[i as usize],
        }
    }

    /// The name used by `force` ("scalar", "avx2", "avx512").
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Makes every kernel of this process use `isa` (None: the detected one again). For tests of each
    /// code path; the paths give bitwise the same results. Errors if the CPU lacks `isa`.
    pub fn force(isa: Option<Isa>) -> Result<()> {
        match isa {
            None => FORCED.store(NO_FORCE, Ordering::Relaxed),
            Some(i) if i <= Isa::detected() => FORCED.store(i as u8, Ordering::Relaxed),
            Some(i) => {
                return Err(HippoError::invalid(
                    "isa",
                    format!("this CPU supports up to {}, cannot use {}", Isa::detected().name(), i.name()),
                ))
            }
        }
        Ok(())
    }

    /// Parses a name of `name()`.
    pub fn parse(name: &str) -> Result<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == name)
            .ok_or_else(|| HippoError::invalid("isa", format!("expected one of scalar, avx2, avx512, got '{name}'")))
    }
}

/// Runs `work` compiled for AVX2 + FMA when the active instruction set has them, else as is.
///
/// The generic kernels use `mul_add` for their running sums: with the `fma` feature it is one
/// instruction, without it a slow libm call, and AVX2 lets the compiler vectorise the transposed
/// tiles of 8 rows. (Compiling them for AVX-512 as well makes them slower: the tiles are one ymm
/// wide.) The kernels are `#[inline(always)]` so that they compile inside the feature-enabled frame.
#[inline(always)]
pub fn accelerated<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn with_avx2<R>(work: impl FnOnce() -> R) -> R {
            work()
        }
        if Isa::active() >= Isa::Avx2 {
            // SAFETY: the CPU has the features (`Isa::detected`, which bounds `Isa::force`).
            return unsafe { with_avx2(work) };
        }
    }
    work()
}

/// The coefficients of one fused `Prefix` GBT step (A = -diag(l) L diag(r) + diag(h), B = b; paper
/// App. D, the O(N) form of LSSL Thm. 11), per element i, column by column; shared by every row:
///
/// ```text
/// y = (I - a_i A)^{-1} ((I + a_e A) x + B a_b f) as one sweep over i with two running sums,
///   S = beta a_b f - a_e sum_{k<=i} r_k x_k   (B = beta l; beta = 0 otherwise)
///   Q = sum_{k<i} r_k y_k:
/// S   <- sx_i x_i + S                                    sx = -a_e r
/// u   =  es_i S + ex_i x_i  (+ input_i a_b f)            es = inv l, ex = inv (1 + a_e h), input = inv b
/// y_i =  ny_i Q + u                                      ny = -a_i es
/// Q   <- decay_i Q + r_i u                               decay = 1 + r ny
/// with inv = 1 / (1 + a_i (l r - h)).
/// ```
///
/// Row i of (I - a_i A) y = w is (1 + a_i (l_i r_i - h_i)) y_i + a_i l_i Q = w_i, so y_i = inv w_i +
/// ny_i Q; u = inv w_i is the explicit half scaled by inv, and when B = beta l the input rides in S.
/// Six floating-point operations per element (four FMA, two multiplications) and one FMA on each
/// running sum's chain (`input` adds one
/// FMA when B is not a multiple of l). `inv` and `e` = 1 + a_e h serve the adjoint sweep; both they
/// and `input` are filled only where used (else empty).
#[derive(Debug, Clone, Default)]
pub struct PrefixTable<T> {
    /// (sx, es, ex, ny, decay, r) of each element, interleaved: the sweep reads one element's six
    /// together.
    pub(crate) coef: Vec<[T; 6]>,
    pub(crate) input: Vec<T>,
    pub(crate) inv: Vec<T>,
    pub(crate) e: Vec<T>,
}

impl<T: Real> PrefixTable<T> {
    /// Whether the kernels can run the table on N elements: `coef`, and `input` unless B = beta l.
    #[inline(always)]
    pub(crate) fn fits(&self, n: usize, b_over_l: Option<T>) -> bool {
        self.coef.len() == n && (b_over_l.is_some() || self.input.len() == n)
    }

    /// Fills the table for implicit and explicit weights (ai, ae) from the structure's columns
    /// (`lrh` = l r - h); `input` only when B is not a multiple of l, `inv` and `e` only for the
    /// (`#[inline(always)]`: it compiles into the caller's frame, with FMA where `accelerated` enables it.)
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fill(
        &mut self,
        ai: T,
        ae: T,
        l: &[T],
        r: &[T],
        h: &[T],
        lrh: &[T],
        b: &[T],
        with_input: bool,
        adjoint: bool,
    ) {
        let n = r.len();
        self.coef.clear();
        self.coef.reserve(n);
        for (col, used) in [(&mut self.input, with_input), (&mut self.inv, adjoint), (&mut self.e, adjoint)] {
            col.clear();
            col.reserve(if used { n } else { 0 });
        }
        // In chunks, column by column (loops the compiler vectorises, divisions included), then
        // interleaved.
        const CHUNK: usize = 64;
        let mut cols = [[T::zero(); CHUNK]; 9];
        for at in (0..n).step_by(CHUNK) {
            let len = CHUNK.min(n - at);
            let span = at..at + len;
            let (l, r, h, lrh, b) =
                (&l[span.clone()], &r[span.clone()], &h[span.clone()], &lrh[span.clone()], &b[span]);
            let [sx, es, ex, ny, decay, rr, input, inv, e] = &mut cols;
            for j in 0..len {
                inv[j] = T::one() / ai.mul_add(lrh[j], T::one());
                e[j] = ae.mul_add(h[j], T::one());
                es[j] = l[j] * inv[j];
                ny[j] = -ai * es[j];
                sx[j] = -ae * r[j];
                ex[j] = e[j] * inv[j];
                decay[j] = r[j].mul_add(ny[j], T::one());
                rr[j] = r[j];
                input[j] = b[j] * inv[j];
            }
            let [sx, es, ex, ny, decay, rr, input, inv, e] = &cols;
            self.coef.extend((0..len).map(|j| [sx[j], es[j], ex[j], ny[j], decay[j], rr[j]]));
            if with_input {
                self.input.extend_from_slice(&input[..len]);
            }
            if adjoint {
                self.inv.extend_from_slice(&inv[..len]);
                self.e.extend_from_slice(&e[..len]);
            }
        }
    }

    /// Element i of the step on one row: returns y_i and advances the running sums (s, q) (see the
    /// type's docs). `INPUT`: B is not a multiple of l, add input_i a_b f.
    #[inline(always)]
    pub(crate) fn apply<const INPUT: bool>(&self, i: usize, abf: T, x: T, s: &mut T, q: &mut T) -> T {
        let [sx, es, ex, ny, decay, r] = self.coef[i];
        *s = sx.mul_add(x, *s);
        let mut u = es.mul_add(*s, ex * x);
        if INPUT {
            u = self.input[i].mul_add(abf, u);
        }
        let y = ny.mul_add(*q, u);
        *q = decay.mul_add(*q, r * u);
        y
    }

    /// The running sum S at the start of a row: beta a_b f when B = beta l, else 0.
    #[inline(always)]
    pub(crate) fn start(b_over_l: Option<T>, abf: T) -> T {
        b_over_l.map_or(T::zero(), |beta| beta * abf)
    }
}

/// One fused `Prefix` GBT step (weights a_i, a_e; input term a_b f) of a single row `c`, in the form
/// of the time wavefront (`kernels::wavefront` does the same operations lane by lane). Per element i,
/// with the running sums S and Q of `PrefixTable` before element i:
///
/// ```text
/// P   = S - a_i Q
/// y_i = ((1 - a_e (l r - h)_i) x_i + l_i P (+ b_i a_b f)) / (1 + a_i (l r - h)_i)
/// S  <- S - a_e r_i x_i
/// Q  <- Q + r_i y_i
/// ```
///
/// Row i of (I - a_i A) y = (I + a_e A) x + B a_b f, A = -diag(l) L diag(r) + diag(h), reads
/// (1 + a_i (l_i r_i - h_i)) y_i + a_i l_i Q = (1 - a_e (l_i r_i - h_i)) x_i + l_i S + b_i a_b f with
/// S = -a_e sum_{k<i} r_k x_k; when B = beta l, S starts at beta a_b f and carries the input. Eight
/// operations and one division per element, no per-step table; the path from x_i to y_i is one FMA
/// and the division. Dividing (rather than multiplying by a rounded reciprocal, as the row tiles'
/// table does) keeps long float32 scans about ten times closer to float64 (`benches/LIMITS.md`).
#[inline(always)]
pub(crate) fn prefix_row_step<T: Real>(p: &PrefixTables<'_, T>, ai: T, ae: T, abf: T, c: &mut [T]) {
    if p.b_over_l.is_some() {
        row_step::<T, false>(p, ai, ae, abf, c)
    } else {
        row_step::<T, true>(p, ai, ae, abf, c)
    }
}

#[inline(always)]
fn row_step<T: Real, const INPUT: bool>(p: &PrefixTables<'_, T>, ai: T, ae: T, abf: T, c: &mut [T]) {
    let (one, nai, nae) = (T::one(), -ai, -ae);
    let (mut s, mut q) = (PrefixTable::start(p.b_over_l, abf), T::zero());
    for (i, x) in c.iter_mut().enumerate() {
        let (r, lrh) = (p.r[i], p.lr_minus_h[i]);
        let d = ai.mul_add(lrh, one);
        let g = nae.mul_add(lrh, one);
        let mut lp = p.l[i] * nai.mul_add(q, s);
        if INPUT {
            lp = p.b[i].mul_add(abf, lp);
        }
        let y = g.mul_add(*x, lp) / d;
        s = (nae * r).mul_add(*x, s);
        q = r.mul_add(y, q);
        *x = y;
    }
}

/// Steps per call of `prefix_forward_tiles_steps`.
pub const TILE_STEPS: usize = 4;

/// `Prefix` tables (r, l, l r - h, b) reversed and periodic for the skewed lane loads of
/// `prefix_wavefront`, over a state padded with zero elements to `n` = max(N, S) (S = the wave's
/// step count): `x[y]` holds element (n - 1 - y) mod n, for y < n + S - 1.
pub struct WaveTables<T> {
    n: usize,
    steps: usize,
    r: Vec<T>,
    l: Vec<T>,
    lrh: Vec<T>,
    b: Vec<T>,
}

impl<T: Copy + Default> WaveTables<T> {
    /// The tables of a wave of `steps` steps over the columns (r, l, l r - h, b) of length N.
    pub fn new(steps: usize, r: &[T], l: &[T], lrh: &[T], b: &[T]) -> Self {
        let n = r.len().max(steps);
        let periodic = |v: &[T]| -> Vec<T> {
            (0..n + steps.saturating_sub(1)).map(|y| v.get((2 * n - 1 - y) % n).copied().unwrap_or_default()).collect()
        };
        WaveTables { n, steps, r: periodic(r), l: periodic(l), lrh: periodic(lrh), b: periodic(b) }
    }

    /// The padded state length max(N, S).
    pub(crate) fn len(&self) -> usize {
        self.n
    }
}

/// The SIMD kernels of one element type, dispatched on an `Isa` (public only because `Real`
/// requires it; not part of the API). Each returns how much it did (0 / false on the scalar path);
/// the caller finishes the rest with the scalar kernel.
pub trait TileKernel: Sized {
    /// Rows per SIMD tile (the vector width in elements); 1 on the scalar path.
    fn tile_rows(isa: Isa) -> usize;

    /// Steps run at once by `prefix_wavefront`; 0 on the scalar path.
    fn wave_steps(isa: Isa) -> usize;

    /// One fused `Prefix` step on whole tiles of rows: `state` holds rows of length `n` (row-major),
    /// `abf[j]` = a_b f_j of row j, `table` the step's `PrefixTable`, `b_over_l` = Some(beta)
    /// when B = beta l (else the `input` coefficients carry B). The previous state is read from `src`
    /// when given (an out-of-place step: saves a copy when every state is kept), else from `state`.
    /// Returns the number of leading rows done (a multiple of `tile_rows`).
    fn prefix_forward_tiles(
        isa: Isa,
        table: &PrefixTable<Self>,
        b_over_l: Option<Self>,
        abf: &[Self],
        src: Option<&[Self]>,
        state: &mut [Self],
        n: usize,
    ) -> usize;

    /// `TILE_STEPS` consecutive fused `Prefix` steps on whole tiles of rows, every step's states kept:
    /// step s uses `tables[s]` and `abf[s]` (per row), reads step s - 1's output (step 0 reads `src`)
    /// and writes `dst[s]` (all rows x n). Returns the number of leading rows done.
    #[allow(clippy::too_many_arguments)]
    fn prefix_forward_tiles_steps(
        isa: Isa,
        tables: &[&PrefixTable<Self>],
        b_over_l: Option<Self>,
        abf: &[&[Self]],
        src: &[Self],
        dst: &mut [&mut [Self]],
        n: usize,
    ) -> usize;

    /// Transposes 8 rows of length n (row-major in `rows`) into `tile[i][j] = rows[j * n + i]`.
    fn rows_to_tile(isa: Isa, rows: &[Self], n: usize, tile: &mut [[Self; 8]]) -> bool;

    /// The inverse of `rows_to_tile`.
    fn tile_to_rows(isa: Isa, tile: &[[Self; 8]], n: usize, rows: &mut [Self]) -> bool;

    /// `ai.len()` (a multiple of `wave_steps(isa)`) consecutive fused `Prefix` steps of one row
    /// `state` (length `tables.len()`: the state padded with zeros past N), step q with coefficients
    /// (ai[q], ae[q]) and input term abf[q] = a_b f; `b_over_l` as in `prefix_forward_tiles`.
    fn prefix_wavefront(
        isa: Isa,
        tables: &WaveTables<Self>,
        b_over_l: Option<Self>,
        ai: &[Self],
        ae: &[Self],
        abf: &[Self],
        state: &mut [Self],
    ) -> bool;
}

/// The `TileKernel` of one element type: `$v2` its AVX2 vector (the row tiles) and `$k` the tiles
/// stepped side by side (independent chains; at most 8 rows in flight: 16 rows of a power-of-two
/// stride of 4 KB or more fall into one L1 set, more than its 12 ways; float64 gains ~10 % from two
/// 4-row tiles, float32 0-5 % from two 8-row tiles, which thrash at N = 1024; `benches/LIMITS.md`),
/// `$m2` the
/// wavefront's vectors (independent chains covering the latency of one tick: an FMA, the division,
/// the lane rotation and the blend, ~20 cycles); `$v5`,
/// `$m5` the same for the AVX-512 wavefront. Row tiles run the AVX2 code on AVX-512 CPUs as well:
/// 512-bit tiles need as many port-5 shuffles and inserts per element as they save FMAs (512-bit
/// FMAs share port 5), and the EVEX-encoded 256-bit code measured slower (`benches/LIMITS.md`).
#[cfg(target_arch = "x86_64")]
macro_rules! tile_kernel {
    ($t:ty, $v2:ty, $k:literal, $m2:literal, $v5:ty, $m5:literal) => {
        impl TileKernel for $t {
            fn tile_rows(isa: Isa) -> usize {
                match isa {
                    Isa::Scalar => 1,
                    Isa::Avx2 | Isa::Avx512 => <$v2 as vector::Vector>::LANES,
                }
            }

            fn wave_steps(isa: Isa) -> usize {
                match isa {
                    Isa::Scalar => 0,
                    Isa::Avx2 => $m2 * <$v2 as vector::Vector>::LANES,
                    Isa::Avx512 => $m5 * <$v5 as vector::Vector>::LANES,
                }
            }

            #[inline]
            fn prefix_forward_tiles(
                isa: Isa,
                table: &PrefixTable<$t>,
                b_over_l: Option<$t>,
                abf: &[$t],
                src: Option<&[$t]>,
                state: &mut [$t],
                n: usize,
            ) -> usize {
                let sizes_ok = table.fits(n, b_over_l)
                    && state.len() == abf.len() * n
                    && src.is_none_or(|s| s.len() == state.len());
                if !sizes_ok {
                    return 0;
                }
                let from = src.map_or(state.as_ptr(), |s| s.as_ptr());
                let to = state.as_mut_ptr();
                // SAFETY: the CPU has the features of `isa` (`Isa::active`); every access is within
                // `state`/`src` (rows x n) and the tables (length n), whose sizes were just checked;
                // `src`, when given, is a different buffer from `state` (a shared and a mutable borrow).
                unsafe {
                    match isa {
                        Isa::Scalar => 0,
                        Isa::Avx2 | Isa::Avx512 => match b_over_l {
                            Some(beta) => kernels::avx2::forward_tiles::<$v2, $k, false>(table, beta, abf, from, to, n),
                            None => kernels::avx2::forward_tiles::<$v2, $k, true>(table, 0.0, abf, from, to, n),
                        },
                    }
                }
            }

            #[inline]
            fn prefix_forward_tiles_steps(
                isa: Isa,
                tables: &[&PrefixTable<$t>],
                b_over_l: Option<$t>,
                abf: &[&[$t]],
                src: &[$t],
                dst: &mut [&mut [$t]],
                n: usize,
            ) -> usize {
                let rows = if n == 0 { 0 } else { src.len() / n };
                let ok = tables.len() == TILE_STEPS
                    && abf.len() == TILE_STEPS
                    && dst.len() == TILE_STEPS
                    && tables.iter().all(|t| t.fits(n, b_over_l))
                    && abf.iter().all(|a| a.len() == rows)
                    && dst.iter().all(|d| d.len() == src.len());
                if !ok {
                    return 0;
                }
                let tables: &[&PrefixTable<$t>; TILE_STEPS] = tables.try_into().expect("length checked");
                let abf: &[&[$t]; TILE_STEPS] = abf.try_into().expect("length checked");
                let dst: [*mut $t; TILE_STEPS] = std::array::from_fn(|s| dst[s].as_mut_ptr());
                let src = src.as_ptr();
                // SAFETY: the features of `isa` are present; all accesses are within the checked
                // lengths; the `dst` slices are distinct mutable borrows, disjoint from each other and
                // from `src`.
                unsafe {
                    match (isa, b_over_l) {
                        (Isa::Scalar, _) => 0,
                        (Isa::Avx2, Some(beta)) => {
                            kernels::avx2::forward_tiles_steps::<$v2, false>(tables, beta, abf, src, &dst, rows, n)
                        }
                        (Isa::Avx2, None) => {
                            kernels::avx2::forward_tiles_steps::<$v2, true>(tables, 0.0, abf, src, &dst, rows, n)
                        }
                        (Isa::Avx512, Some(beta)) => {
                            kernels::avx512::forward_tiles_steps::<$v2, false>(tables, beta, abf, src, &dst, rows, n)
                        }
                        (Isa::Avx512, None) => {
                            kernels::avx512::forward_tiles_steps::<$v2, true>(tables, 0.0, abf, src, &dst, rows, n)
                        }
                    }
                }
            }

            #[inline]
            fn rows_to_tile(isa: Isa, rows: &[$t], n: usize, tile: &mut [[$t; 8]]) -> bool {
                if rows.len() != 8 * n || tile.len() != n || isa == Isa::Scalar {
                    return false;
                }
                // SAFETY: AVX2 is present (AVX-512 implies it here); accesses within checked lengths.
                unsafe { kernels::avx2::rows_to_tile::<$v2>(rows, n, tile) };
                true
            }

            #[inline]
            fn tile_to_rows(isa: Isa, tile: &[[$t; 8]], n: usize, rows: &mut [$t]) -> bool {
                if rows.len() != 8 * n || tile.len() != n || isa == Isa::Scalar {
                    return false;
                }
                // SAFETY: as `rows_to_tile`.
                unsafe { kernels::avx2::tile_to_rows::<$v2>(tile, n, rows) };
                true
            }

            #[inline]
            fn prefix_wavefront(
                isa: Isa,
                tables: &WaveTables<$t>,
                b_over_l: Option<$t>,
                ai: &[$t],
                ae: &[$t],
                abf: &[$t],
                state: &mut [$t],
            ) -> bool {
                let s = Self::wave_steps(isa);
                let ok = s > 0
                    && tables.steps == s
                    && tables.n >= s
                    && tables.n == state.len()
                    && tables.r.len() == tables.n + s - 1
                    && ai.len() % s == 0
                    && ae.len() == ai.len()
                    && abf.len() == ai.len();
                if !ok {
                    return false;
                }
                // SAFETY: the features of `isa` are present; loads stay within the periodic tables
                // (length n + S - 1) and the state (length n >= S).
                unsafe {
                    match (isa, b_over_l) {
                        (Isa::Scalar, _) => {}
                        (Isa::Avx2, Some(beta)) => {
                            kernels::avx2::wavefront::<$v2, $m2, false>(tables, beta, ai, ae, abf, state)
                        }
                        (Isa::Avx2, None) => {
                            kernels::avx2::wavefront::<$v2, $m2, true>(tables, 0.0, ai, ae, abf, state)
                        }
                        (Isa::Avx512, Some(beta)) => {
                            kernels::avx512::wavefront::<$v5, $m5, false>(tables, beta, ai, ae, abf, state)
                        }
                        (Isa::Avx512, None) => {
                            kernels::avx512::wavefront::<$v5, $m5, true>(tables, 0.0, ai, ae, abf, state)
                        }
                    }
                }
                true
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
tile_kernel!(f32, vector::F32x8, 1, 6, vector::F32x16, 4);
#[cfg(target_arch = "x86_64")]
tile_kernel!(f64, vector::F64x4, 2, 8, vector::F64x8, 4);

/// Without x86_64 SIMD every kernel reports nothing done (the scalar path runs).
#[cfg(not(target_arch = "x86_64"))]
macro_rules! no_tile_kernel {
    ($t:ty) => {
        impl TileKernel for $t {
            fn tile_rows(_: Isa) -> usize {
                1
            }
            fn wave_steps(_: Isa) -> usize {
                0
            }
            fn prefix_forward_tiles(
                _: Isa,
                _: &PrefixTable<$t>,
                _: Option<$t>,
                _: &[$t],
                _: Option<&[$t]>,
                _: &mut [$t],
                _: usize,
            ) -> usize {
                0
            }
            fn prefix_forward_tiles_steps(
                _: Isa,
                _: &[&PrefixTable<$t>],
                _: Option<$t>,
                _: &[&[$t]],
                _: &[$t],
                _: &mut [&mut [$t]],
                _: usize,
            ) -> usize {
                0
            }
            fn rows_to_tile(_: Isa, _: &[$t], _: usize, _: &mut [[$t; 8]]) -> bool {
                false
            }
            fn tile_to_rows(_: Isa, _: &[[$t; 8]], _: usize, _: &mut [$t]) -> bool {
                false
            }
            fn prefix_wavefront(
                _: Isa,
                _: &WaveTables<$t>,
                _: Option<$t>,
                _: &[$t],
                _: &[$t],
                _: &[$t],
                _: &mut [$t],
            ) -> bool {
                false
            }
        }
    };
}
#[cfg(not(target_arch = "x86_64"))]
no_tile_kernel!(f32);
#[cfg(not(target_arch = "x86_64"))]
no_tile_kernel!(f64);
