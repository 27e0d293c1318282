//! SIMD kernels across batch rows (x86_64 AVX2 + FMA, detected at run time).
//!
//! The fused `Prefix` step (LegS, LagT, GLagT; see `crate::scan::StepKernel`) is a chain of running
//! sums over the elements n of one row: serial within a row, independent across rows. A tile of W
//! rows (W = 8 float32 or 4 float64 lanes) is loaded W elements at a time, transposed in registers so
//! that one vector holds element n of every row, stepped element by element with the per-element
//! tables broadcast, transposed back and stored. The arithmetic is the scalar kernel's, operation for
//! operation (every `mul_add` is one fused FMA in both), so the results are bitwise the same.
//!
//! A single long row (the paper's function-approximation scan) has no rows to spread: there the
//! chain is broken over *time* instead (`prefix_wavefront`). For a lower-triangular A, element i of
//! step k + 1 needs only elements <= i of step k, so S = M * W consecutive steps run at once, one per
//! SIMD lane, skewed by one element: at tick tau, the lane of step k + q processes element tau - q,
//! taking its input from the neighbouring lane's output of the previous tick (a lane rotation). Each
//! lane keeps its own running sums; the M vectors give M independent FMA chains per tick. The
//! per-element coefficients depend on the lane's step, so they are formed per tick from skewed
//! (reversed, zero-padded) tables, with the same operations as `StepKernel::prepare`: again bitwise
//! the scalar results. Padding (r = l = h = b = 0) makes lanes outside 0..N pass finite values
//! through without touching their sums.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// (Public only because `Real` requires it; not part of the API.) One fused `Prefix` step on whole tiles of rows: `state` holds rows of length `n` (row-major),
/// `abf[j]` = a_b f_j of row j, `table[i]` = (inv, e, -a_e l, -k, decay, r inv) of element i (see
/// `StepKernel::prepare`). The previous state is read from `src` when given (an out-of-place step:
/// saves a copy when every state is kept), else from `state`. Returns the number of leading rows done (a multiple of the lane count;
/// 0 when the CPU lacks AVX2/FMA); the caller finishes the rest with the scalar kernel.
pub trait TileKernel: Sized {
    fn prefix_forward_tiles(
        table: &[[Self; 6]],
        r: &[Self],
        b: &[Self],
        abf: &[Self],
        src: Option<&[Self]>,
        state: &mut [Self],
        n: usize,
    ) -> usize;

    /// `TILE_STEPS` consecutive fused `Prefix` steps on whole tiles of rows, every step's states kept:
    /// step s uses `tables[s]` and `abf[s]` (per row), reads step s - 1's output (step 0 reads `src`)
    /// and writes `dst[s]` (all rows x n). The tile stays transposed in registers from one step to the
    /// next. Returns the number of leading rows done (as `prefix_forward_tiles`).
    fn prefix_forward_tiles_steps(
        tables: &[&[[Self; 6]]],
        r: &[Self],
        b: &[Self],
        abf: &[&[Self]],
        src: &[Self],
        dst: &mut [&mut [Self]],
        n: usize,
    ) -> usize;

    /// Transposes 8 rows of length n (row-major in `rows`) into `tile[i][j] = rows[j * n + i]`;
    /// false (nothing done) without AVX2.
    fn rows_to_tile(rows: &[Self], n: usize, tile: &mut [[Self; 8]]) -> bool;

    /// The inverse of `rows_to_tile`.
    fn tile_to_rows(tile: &[[Self; 8]], n: usize, rows: &mut [Self]) -> bool;

    /// Rows per SIMD tile (the vector width in elements).
    const TILE_ROWS: usize;

    /// Steps run at once by `prefix_wavefront`.
    const WAVE_STEPS: usize;

    /// `WAVE_STEPS` consecutive fused `Prefix` steps of one row `state` (length n), step q with
    /// coefficients (ai[q], ae[q]) and input term abf[q] = a_b f; false (nothing done) without AVX2/FMA.
    fn prefix_wavefront(tables: &WaveTables<Self>, ai: &[Self], ae: &[Self], abf: &[Self], state: &mut [Self]) -> bool;
}

/// `Prefix` tables (r, l, h, l r - h, b) reversed and zero-padded for the skewed lane loads of
/// `prefix_wavefront`: `x[PAD + (n - 1 - i)]` holds element i, with `PAD` = the wave's step count.
pub struct WaveTables<T> {
    n: usize,
    pad: usize,
    r: Vec<T>,
    l: Vec<T>,
    h: Vec<T>,
    lrh: Vec<T>,
    b: Vec<T>,
}

impl<T: Copy + Default> WaveTables<T> {
    pub fn new(pad: usize, r: &[T], l: &[T], h: &[T], lrh: &[T], b: &[T]) -> Self {
        let n = r.len();
        let skew = |v: &[T]| {
            let mut out = vec![T::default(); n + 2 * pad];
            for (i, x) in v.iter().enumerate() {
                out[pad + n - 1 - i] = *x;
            }
            out
        };
        WaveTables { n, pad, r: skew(r), l: skew(l), h: skew(h), lrh: skew(lrh), b: skew(b) }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Steps per call of `prefix_forward_tiles_steps`.
pub const TILE_STEPS: usize = 4;

/// Vectors (independent FMA chains) in flight in `prefix_wavefront`: enough to cover the ~20-cycle
/// latency of one tick (rotation, two running sums, the division) with the other vectors' work.
const WAVE_VECTORS_F32: usize = 4;
const WAVE_VECTORS_F64: usize = 6;

macro_rules! tile_kernel {
    ($t:ty, $lanes:expr, $vectors:expr, $in_flight:expr, $vec:ty, $set1:ident, $bcast:ident, $load:ident, $store:ident, $fmadd:ident, $mul:ident, $add:ident, $sub:ident, $div:ident, $zero:ident, $transpose:ident, $rotate:ident, $first:ident, $avx:ident, $tiles:ident, $multi:ident, $wave:ident, $to_tile:ident, $to_rows:ident) => {
        /// `TILE_STEPS` steps of every whole tile (see `TileKernel::prefix_forward_tiles_steps`).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $multi(
            tables: &[&[[$t; 6]]; TILE_STEPS],
            r: &[$t],
            b: &[$t],
            abf: &[&[$t]; TILE_STEPS],
            src: *const $t,
            dst: &[*mut $t; TILE_STEPS],
            rows: usize,
            n: usize,
        ) -> usize {
            const W: usize = $lanes;
            const S: usize = TILE_STEPS;
            let whole = n / W * W;
            let tiles = rows / W;
            for tile in 0..tiles {
                let off = tile * W * n;
                let abf_v: [$vec; S] = std::array::from_fn(|s| $load(abf[s].as_ptr().add(tile * W)));
                let (mut sum_x, mut sum_y) = ([$zero(); S], [$zero(); S]);
                let mut v: [$vec; W] = [$zero(); W];
                for i0 in (0..whole).step_by(W) {
                    for (j, vj) in v.iter_mut().enumerate() {
                        *vj = $load(src.add(off + j * n + i0));
                    }
                    $transpose(&mut v);
                    for s in 0..S {
                        for (j, vj) in v.iter_mut().enumerate() {
                            let i = i0 + j;
                            let t = tables[s].get_unchecked(i);
                            let (inv, e, nael, nk, decay, rinv) = (
                                $bcast(&t[0]),
                                $bcast(&t[1]),
                                $bcast(&t[2]),
                                $bcast(&t[3]),
                                $bcast(&t[4]),
                                $bcast(&t[5]),
                            );
                            let (rv, bv) = ($bcast(r.get_unchecked(i)), $bcast(b.get_unchecked(i)));
                            // The same operations as the one-step tile kernel.
                            let x = *vj;
                            sum_x[s] = $fmadd(rv, x, sum_x[s]);
                            let t = $fmadd(e, x, $mul(nael, sum_x[s]));
                            let u = $fmadd(abf_v[s], bv, t);
                            *vj = $fmadd(u, inv, $mul(nk, sum_y[s]));
                            sum_y[s] = $fmadd(decay, sum_y[s], $mul(rinv, u));
                        }
                        let mut out = v;
                        $transpose(&mut out);
                        for (j, oj) in out.iter().enumerate() {
                            $store(dst[s].add(off + j * n + i0), *oj);
                        }
                    }
                }
                if whole < n {
                    for s in 0..S {
                        let (mut sx, mut sy) = ([0.0 as $t; W], [0.0 as $t; W]);
                        $store(sx.as_mut_ptr(), sum_x[s]);
                        $store(sy.as_mut_ptr(), sum_y[s]);
                        let from = if s == 0 { src } else { dst[s - 1] as *const $t };
                        for j in 0..W {
                            let a = abf[s][tile * W + j];
                            for i in whole..n {
                                let [inv, e, nael, nk, decay, rinv] = tables[s][i];
                                let x = *from.add(off + j * n + i);
                                sx[j] = r[i].mul_add(x, sx[j]);
                                let u = a.mul_add(b[i], e.mul_add(x, nael * sx[j]));
                                *dst[s].add(off + j * n + i) = u.mul_add(inv, nk * sy[j]);
                                sy[j] = decay.mul_add(sy[j], rinv * u);
                            }
                        }
                    }
                }
            }
            tiles * W
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $wave(tb: &WaveTables<$t>, ai: &[$t], ae: &[$t], abf: &[$t], state: &mut [$t]) {
            const W: usize = $lanes;
            const M: usize = $vectors;
            let n = tb.n;
            let one = $set1(1.0);
            let ai_v: [$vec; M] = std::array::from_fn(|m| $load(ai.as_ptr().add(m * W)));
            let ae_v: [$vec; M] = std::array::from_fn(|m| $load(ae.as_ptr().add(m * W)));
            let abf_v: [$vec; M] = std::array::from_fn(|m| $load(abf.as_ptr().add(m * W)));
            let nai_v: [$vec; M] = std::array::from_fn(|m| $sub($zero(), ai_v[m]));
            let nae_v: [$vec; M] = std::array::from_fn(|m| $sub($zero(), ae_v[m]));
            let mut sum_x = [$zero(); M];
            let mut sum_y = [$zero(); M];
            // rotated[m] = the previous tick's outputs of vector m rotated up one lane (lane 0 = last lane).
            let mut rotated = [$zero(); M];
            for tick in 0..n + M * W - 1 {
                let incoming = $set1(if tick < n { *state.get_unchecked(tick) } else { 0.0 });
                let mut carry = incoming;
                for m in 0..M {
                    let x = $first(rotated[m], carry);
                    carry = rotated[m];
                    // lane q = m W + j is at element tick - q: table index pad + n - 1 - tick + q.
                    let at = tb.pad + n - 1 - tick + m * W;
                    let r = $load(tb.r.as_ptr().add(at));
                    let l = $load(tb.l.as_ptr().add(at));
                    // As StepKernel::prepare, with the exact negations nael = (-ae) l = -(ae l) and
                    // nk = ((-ai) l) inv = -k, and decay = 1 + r nk = 1 - r k.
                    let inv = $div(one, $fmadd(ai_v[m], $load(tb.lrh.as_ptr().add(at)), one));
                    let e = $fmadd(ae_v[m], $load(tb.h.as_ptr().add(at)), one);
                    let nael = $mul(nae_v[m], l);
                    let nk = $mul($mul(nai_v[m], l), inv);
                    let decay = $add(one, $mul(r, nk));
                    let rinv = $mul(r, inv);
                    sum_x[m] = $fmadd(r, x, sum_x[m]);
                    let t = $fmadd(e, x, $mul(nael, sum_x[m]));
                    let u = $fmadd(abf_v[m], $load(tb.b.as_ptr().add(at)), t);
                    let y = $fmadd(u, inv, $mul(nk, sum_y[m]));
                    sum_y[m] = $fmadd(decay, sum_y[m], $mul(rinv, u));
                    rotated[m] = $rotate(y);
                }
                // The last lane finished element tick - (M W - 1) of the last step.
                if tick + 1 >= M * W {
                    let mut last = [0.0 as $t; W];
                    $store(last.as_mut_ptr(), rotated[M - 1]);
                    *state.get_unchecked_mut(tick + 1 - M * W) = last[0];
                }
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx(
            table: &[[$t; 6]],
            r: &[$t],
            b: &[$t],
            abf: &[$t],
            src: *const $t,
            state: &mut [$t],
            n: usize,
        ) -> usize {
            const W: usize = $lanes;
            let tiles = abf.len() / W;
            let mut tile = 0;
            // Tiles in flight together: independent chains against register pressure (16 ymm).
            const K: usize = $in_flight;
            while tile + K <= tiles {
                $tiles::<K>(table, r, b, abf, src, state, n, tile);
                tile += K;
            }
            while tile < tiles {
                $tiles::<1>(table, r, b, abf, src, state, n, tile);
                tile += 1;
            }
            tiles * W
        }

        /// K consecutive tiles from tile index `first` (see `$avx`).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $tiles<const K: usize>(
            table: &[[$t; 6]],
            r: &[$t],
            b: &[$t],
            abf: &[$t],
            src: *const $t,
            state: &mut [$t],
            n: usize,
            first: usize,
        ) {
            const W: usize = $lanes;
            let whole = n / W * W;
            let base: [*mut $t; K] = std::array::from_fn(|m| state.as_mut_ptr().add((first + m) * W * n));
            let from: [*const $t; K] = std::array::from_fn(|m| src.add((first + m) * W * n));
            let abf_v: [$vec; K] = std::array::from_fn(|m| $load(abf.as_ptr().add((first + m) * W)));
            let (mut sum_x, mut sum_y) = ([$zero(); K], [$zero(); K]);
            let mut v: [[$vec; W]; K] = [[$zero(); W]; K];
            for i0 in (0..whole).step_by(W) {
                for m in 0..K {
                    for (j, vj) in v[m].iter_mut().enumerate() {
                        *vj = $load(from[m].add(j * n + i0));
                    }
                    $transpose(&mut v[m]);
                }
                for j in 0..W {
                    let i = i0 + j;
                    // Broadcasts straight from memory (load ports), not from registers (shuffle ports,
                    // which the transposes need).
                    let t = table.get_unchecked(i);
                    let (inv, e, nael, nk, decay, rinv) =
                        ($bcast(&t[0]), $bcast(&t[1]), $bcast(&t[2]), $bcast(&t[3]), $bcast(&t[4]), $bcast(&t[5]));
                    let (rv, bv) = ($bcast(r.get_unchecked(i)), $bcast(b.get_unchecked(i)));
                    for m in 0..K {
                        // sum_x = r x + sum_x; u = abf b + (e x - ael sum_x); y = u inv - k sum_y;
                        // sum_y = decay sum_y + rinv u   (as in StepKernel::forward; nael = -ael, nk = -k)
                        let x = v[m][j];
                        sum_x[m] = $fmadd(rv, x, sum_x[m]);
                        let t = $fmadd(e, x, $mul(nael, sum_x[m]));
                        let u = $fmadd(abf_v[m], bv, t);
                        v[m][j] = $fmadd(u, inv, $mul(nk, sum_y[m]));
                        sum_y[m] = $fmadd(decay, sum_y[m], $mul(rinv, u));
                    }
                }
                for m in 0..K {
                    $transpose(&mut v[m]);
                    for (j, vj) in v[m].iter().enumerate() {
                        $store(base[m].add(j * n + i0), *vj);
                    }
                }
            }
            if whole < n {
                for m in 0..K {
                    let (mut sx, mut sy) = ([0.0 as $t; W], [0.0 as $t; W]);
                    $store(sx.as_mut_ptr(), sum_x[m]);
                    $store(sy.as_mut_ptr(), sum_y[m]);
                    for j in 0..W {
                        let row = std::slice::from_raw_parts_mut(base[m].add(j * n), n);
                        let a = abf[(first + m) * W + j];
                        for i in whole..n {
                            let [inv, e, nael, nk, decay, rinv] = table[i];
                            let x = *from[m].add(j * n + i);
                            sx[j] = r[i].mul_add(x, sx[j]);
                            let u = a.mul_add(b[i], e.mul_add(x, nael * sx[j]));
                            row[i] = u.mul_add(inv, nk * sy[j]);
                            sy[j] = decay.mul_add(sy[j], rinv * u);
                        }
                    }
                }
            }
        }

        impl TileKernel for $t {
            const WAVE_STEPS: usize = $vectors * $lanes;
            const TILE_ROWS: usize = $lanes;

            #[inline]
            fn rows_to_tile(rows: &[$t], n: usize, tile: &mut [[$t; 8]]) -> bool {
                if rows.len() != 8 * n || tile.len() != n || !has_avx2_fma() {
                    return false;
                }
                // SAFETY: features present; every access is within the checked lengths.
                unsafe { $to_tile(rows, n, tile) };
                true
            }

            #[inline]
            fn tile_to_rows(tile: &[[$t; 8]], n: usize, rows: &mut [$t]) -> bool {
                if rows.len() != 8 * n || tile.len() != n || !has_avx2_fma() {
                    return false;
                }
                // SAFETY: features present; every access is within the checked lengths.
                unsafe { $to_rows(tile, n, rows) };
                true
            }

            #[inline]
            fn prefix_forward_tiles_steps(
                tables: &[&[[$t; 6]]],
                r: &[$t],
                b: &[$t],
                abf: &[&[$t]],
                src: &[$t],
                dst: &mut [&mut [$t]],
                n: usize,
            ) -> usize {
                let rows = if n == 0 { 0 } else { src.len() / n };
                let ok = tables.len() == TILE_STEPS
                    && abf.len() == TILE_STEPS
                    && dst.len() == TILE_STEPS
                    && tables.iter().all(|t| t.len() == n)
                    && abf.iter().all(|a| a.len() == rows)
                    && dst.iter().all(|d| d.len() == src.len())
                    && r.len() == n
                    && b.len() == n;
                if !ok || !has_avx2_fma() {
                    return 0;
                }
                let tables: &[&[[$t; 6]]; TILE_STEPS] = tables.try_into().expect("length checked");
                let abf: &[&[$t]; TILE_STEPS] = abf.try_into().expect("length checked");
                let dst: [*mut $t; TILE_STEPS] = std::array::from_fn(|s| dst[s].as_mut_ptr());
                // SAFETY: the features are present; all accesses are within the checked lengths; the
                // `dst` slices are distinct mutable borrows, disjoint from each other and from `src`.
                unsafe { $multi(tables, r, b, abf, src.as_ptr(), &dst, rows, n) }
            }

            #[inline]
            fn prefix_wavefront(tables: &WaveTables<$t>, ai: &[$t], ae: &[$t], abf: &[$t], state: &mut [$t]) -> bool {
                let s = Self::WAVE_STEPS;
                let ok = tables.pad == s && tables.n == state.len() && ai.len() == s && ae.len() == s && abf.len() == s;
                if !ok || !has_avx2_fma() {
                    return false;
                }
                // SAFETY: features present; loads stay within the padded tables (see the offsets).
                unsafe { $wave(tables, ai, ae, abf, state) };
                true
            }

            #[inline]
            fn prefix_forward_tiles(
                table: &[[$t; 6]],
                r: &[$t],
                b: &[$t],
                abf: &[$t],
                src: Option<&[$t]>,
                state: &mut [$t],
                n: usize,
            ) -> usize {
                let sizes_ok = table.len() == n
                    && r.len() == n
                    && b.len() == n
                    && state.len() == abf.len() * n
                    && src.map_or(true, |s| s.len() == state.len());
                if !sizes_ok || !has_avx2_fma() {
                    return 0;
                }
                let from = src.map_or(state.as_ptr(), |s| s.as_ptr());
                // SAFETY: the features are present; every access is within `state`/`src` (rows x n)
                // and the tables (length n), whose sizes were just checked; `src`, when given, is a
                // different buffer from `state` (a shared and a mutable borrow).
                unsafe { $avx(table, r, b, abf, from, state, n) }
            }
        }
    };
}

/// In-register transpose of an 8x8 float32 block (row j of the input becomes column j).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn transpose8_ps(v: &mut [__m256; 8]) {
    let t0 = _mm256_unpacklo_ps(v[0], v[1]);
    let t1 = _mm256_unpackhi_ps(v[0], v[1]);
    let t2 = _mm256_unpacklo_ps(v[2], v[3]);
    let t3 = _mm256_unpackhi_ps(v[2], v[3]);
    let t4 = _mm256_unpacklo_ps(v[4], v[5]);
    let t5 = _mm256_unpackhi_ps(v[4], v[5]);
    let t6 = _mm256_unpacklo_ps(v[6], v[7]);
    let t7 = _mm256_unpackhi_ps(v[6], v[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    v[0] = _mm256_permute2f128_ps::<0x20>(s0, s4);
    v[1] = _mm256_permute2f128_ps::<0x20>(s1, s5);
    v[2] = _mm256_permute2f128_ps::<0x20>(s2, s6);
    v[3] = _mm256_permute2f128_ps::<0x20>(s3, s7);
    v[4] = _mm256_permute2f128_ps::<0x31>(s0, s4);
    v[5] = _mm256_permute2f128_ps::<0x31>(s1, s5);
    v[6] = _mm256_permute2f128_ps::<0x31>(s2, s6);
    v[7] = _mm256_permute2f128_ps::<0x31>(s3, s7);
}

/// In-register transpose of a 4x4 float64 block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn transpose4_pd(v: &mut [__m256d; 4]) {
    let t0 = _mm256_unpacklo_pd(v[0], v[1]);
    let t1 = _mm256_unpackhi_pd(v[0], v[1]);
    let t2 = _mm256_unpacklo_pd(v[2], v[3]);
    let t3 = _mm256_unpackhi_pd(v[2], v[3]);
    v[0] = _mm256_permute2f128_pd::<0x20>(t0, t2);
    v[1] = _mm256_permute2f128_pd::<0x20>(t1, t3);
    v[2] = _mm256_permute2f128_pd::<0x31>(t0, t2);
    v[3] = _mm256_permute2f128_pd::<0x31>(t1, t3);
}

/// Lanes rotated up by one: out[j] = v[j - 1], out[0] = v[7].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn rotate_ps(v: __m256) -> __m256 {
    _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6))
}

/// Lanes rotated up by one: out[j] = v[j - 1], out[0] = v[3].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn rotate_pd(v: __m256d) -> __m256d {
    _mm256_permute4x64_pd::<0b10_01_00_11>(v)
}

/// Lanes 1.. of `rotated` with lane 0 taken from lane 0 of `carry`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn first_ps(rotated: __m256, carry: __m256) -> __m256 {
    _mm256_blend_ps::<1>(rotated, carry)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn first_pd(rotated: __m256d, carry: __m256d) -> __m256d {
    _mm256_blend_pd::<1>(rotated, carry)
}

#[cfg(target_arch = "x86_64")]
tile_kernel!(
    f32,
    8,
    WAVE_VECTORS_F32,
    1,
    __m256,
    _mm256_set1_ps,
    _mm256_broadcast_ss,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_mul_ps,
    _mm256_add_ps,
    _mm256_sub_ps,
    _mm256_div_ps,
    _mm256_setzero_ps,
    transpose8_ps,
    rotate_ps,
    first_ps,
    prefix_tiles_f32_avx2,
    prefix_tiles_k_f32_avx2,
    prefix_steps_f32_avx2,
    prefix_wave_f32_avx2,
    rows_to_tile_f32,
    tile_to_rows_f32
);
#[cfg(target_arch = "x86_64")]
tile_kernel!(
    f64,
    4,
    WAVE_VECTORS_F64,
    2,
    __m256d,
    _mm256_set1_pd,
    _mm256_broadcast_sd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_fmadd_pd,
    _mm256_mul_pd,
    _mm256_add_pd,
    _mm256_sub_pd,
    _mm256_div_pd,
    _mm256_setzero_pd,
    transpose4_pd,
    rotate_pd,
    first_pd,
    prefix_tiles_f64_avx2,
    prefix_tiles_k_f64_avx2,
    prefix_steps_f64_avx2,
    prefix_wave_f64_avx2,
    rows_to_tile_f64,
    tile_to_rows_f64
);

#[cfg(not(target_arch = "x86_64"))]
impl TileKernel for f32 {
    const WAVE_STEPS: usize = 8;
    const TILE_ROWS: usize = 8;
    fn rows_to_tile(_: &[f32], _: usize, _: &mut [[f32; 8]]) -> bool {
        false
    }
    fn tile_to_rows(_: &[[f32; 8]], _: usize, _: &mut [f32]) -> bool {
        false
    }
    fn prefix_forward_tiles_steps(
        _: &[&[[f32; 6]]],
        _: &[f32],
        _: &[f32],
        _: &[&[f32]],
        _: &[f32],
        _: &mut [&mut [f32]],
        _: usize,
    ) -> usize {
        0
    }
    fn prefix_forward_tiles(
        _: &[[f32; 6]],
        _: &[f32],
        _: &[f32],
        _: &[f32],
        _: Option<&[f32]>,
        _: &mut [f32],
        _: usize,
    ) -> usize {
        0
    }
    fn prefix_wavefront(_: &WaveTables<f32>, _: &[f32], _: &[f32], _: &[f32], _: &mut [f32]) -> bool {
        false
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl TileKernel for f64 {
    const WAVE_STEPS: usize = 8;
    const TILE_ROWS: usize = 8;
    fn rows_to_tile(_: &[f64], _: usize, _: &mut [[f64; 8]]) -> bool {
        false
    }
    fn tile_to_rows(_: &[[f64; 8]], _: usize, _: &mut [f64]) -> bool {
        false
    }
    fn prefix_forward_tiles_steps(
        _: &[&[[f64; 6]]],
        _: &[f64],
        _: &[f64],
        _: &[&[f64]],
        _: &[f64],
        _: &mut [&mut [f64]],
        _: usize,
    ) -> usize {
        0
    }
    fn prefix_forward_tiles(
        _: &[[f64; 6]],
        _: &[f64],
        _: &[f64],
        _: &[f64],
        _: Option<&[f64]>,
        _: &mut [f64],
        _: usize,
    ) -> usize {
        0
    }
    fn prefix_wavefront(_: &WaveTables<f64>, _: &[f64], _: &[f64], _: &[f64], _: &mut [f64]) -> bool {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_to_tile_f32(rows: &[f32], n: usize, tile: &mut [[f32; 8]]) {
    let whole = n / 8 * 8;
    for i0 in (0..whole).step_by(8) {
        let mut v: [__m256; 8] = std::array::from_fn(|j| _mm256_loadu_ps(rows.as_ptr().add(j * n + i0)));
        transpose8_ps(&mut v);
        for (i, vi) in v.iter().enumerate() {
            _mm256_storeu_ps(tile[i0 + i].as_mut_ptr(), *vi);
        }
    }
    for i in whole..n {
        for j in 0..8 {
            tile[i][j] = rows[j * n + i];
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_to_rows_f32(tile: &[[f32; 8]], n: usize, rows: &mut [f32]) {
    let whole = n / 8 * 8;
    for i0 in (0..whole).step_by(8) {
        let mut v: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(tile[i0 + i].as_ptr()));
        transpose8_ps(&mut v);
        for (j, vj) in v.iter().enumerate() {
            _mm256_storeu_ps(rows.as_mut_ptr().add(j * n + i0), *vj);
        }
    }
    for i in whole..n {
        for j in 0..8 {
            rows[j * n + i] = tile[i][j];
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_to_tile_f64(rows: &[f64], n: usize, tile: &mut [[f64; 8]]) {
    let whole = n / 4 * 4;
    for i0 in (0..whole).step_by(4) {
        for g in 0..2 {
            let mut v: [__m256d; 4] = std::array::from_fn(|j| _mm256_loadu_pd(rows.as_ptr().add((4 * g + j) * n + i0)));
            transpose4_pd(&mut v);
            for (i, vi) in v.iter().enumerate() {
                _mm256_storeu_pd(tile[i0 + i].as_mut_ptr().add(4 * g), *vi);
            }
        }
    }
    for i in whole..n {
        for j in 0..8 {
            tile[i][j] = rows[j * n + i];
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_to_rows_f64(tile: &[[f64; 8]], n: usize, rows: &mut [f64]) {
    let whole = n / 4 * 4;
    for i0 in (0..whole).step_by(4) {
        for g in 0..2 {
            let mut v: [__m256d; 4] = std::array::from_fn(|i| _mm256_loadu_pd(tile[i0 + i].as_ptr().add(4 * g)));
            transpose4_pd(&mut v);
            for (j, vj) in v.iter().enumerate() {
                _mm256_storeu_pd(rows.as_mut_ptr().add((4 * g + j) * n + i0), *vj);
            }
        }
    }
    for i in whole..n {
        for j in 0..8 {
            rows[j * n + i] = tile[i][j];
        }
    }
}
