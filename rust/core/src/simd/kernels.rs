//! The `Prefix` step kernels, generic over the vector type (`super::vector::Vector`), and their
//! entry points compiled for each instruction set.
//!
//! Every kernel does, lane by lane, the operations of the scalar step `PrefixTable::apply`
//! (one fused FMA wherever the scalar code has `mul_add`), so AVX2, AVX-512 and scalar results are
//! bitwise the same.

use super::vector::{Transpose, Vector};
use super::{PrefixTable, WaveTables, TILE_STEPS};
use crate::float::Real;

/// The scalar fused `Prefix` step on elements `from..n` of one row, continuing the running sums
/// (s, q) (the tail of a row whose first elements ran in vectors).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn scalar_tail<T: Real, const INPUT: bool>(
    table: &PrefixTable<T>,
    abf: T,
    src: *const T,
    dst: *mut T,
    from: usize,
    n: usize,
    mut s: T,
    mut q: T,
) {
    for i in from..n {
        *dst.add(i) = table.apply::<INPUT>(i, abf, *src.add(i), &mut s, &mut q);
    }
}

/// Lanes of a vector as an array (for the scalar tails).
#[inline(always)]
unsafe fn lanes<V: Vector>(v: V) -> [V::Elem; 16] {
    let mut out = [<V::Elem as num_traits::Zero>::zero(); 16];
    v.store(out.as_mut_ptr());
    out
}

/// `PrefixTable::apply` on K tiles, lane by lane: element i of every row of the tiles, x <- y, with
/// the running sums (s, q), from the table's `coef` and `input` columns. `i` < their lengths.
#[inline(always)]
unsafe fn element<V: Vector, const K: usize, const INPUT: bool>(
    coef: &[[V::Elem; 6]],
    input: &[V::Elem],
    i: usize,
    abf: &[V; K],
    x: &mut [V; K],
    s: &mut [V; K],
    q: &mut [V; K],
) {
    // Broadcasts straight from memory (load ports), not from registers (the shuffle ports do the
    // transposes).
    let t = coef.get_unchecked(i);
    let (sx, es, ex, ny, decay, r) =
        (V::splat(t[0]), V::splat(t[1]), V::splat(t[2]), V::splat(t[3]), V::splat(t[4]), V::splat(t[5]));
    let input = if INPUT { V::splat(*input.get_unchecked(i)) } else { V::zero() };
    for m in 0..K {
        let xm = x[m];
        s[m] = sx.mul_add(xm, s[m]);
        let mut u = es.mul_add(s[m], ex.mul(xm));
        if INPUT {
            u = input.mul_add(abf[m], u);
        }
        x[m] = ny.mul_add(q[m], u);
        q[m] = decay.mul_add(q[m], r.mul(u));
    }
}

/// The running sum S at the start of a tile's rows (`PrefixTable::start`, lane by lane).
#[inline(always)]
unsafe fn start<V: Vector, const INPUT: bool>(beta: V::Elem, abf: V) -> V {
    if INPUT {
        V::zero()
    } else {
        V::splat(beta).mul(abf)
    }
}

/// K consecutive tiles of W rows from tile index `first`: W/2 elements of each row at a time loaded
/// transposed (one vector = one element of W rows), stepped, and stored transposed back.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tiles<V: Transpose, const K: usize, const INPUT: bool>(
    table: &PrefixTable<V::Elem>,
    beta: V::Elem,
    abf: &[V::Elem],
    src: *const V::Elem,
    state: *mut V::Elem,
    n: usize,
    first: usize,
) {
    let w = V::LANES;
    let whole = n / w * w;
    // Local slices: the loop then keeps their pointers in registers.
    let (coef, input) = (&table.coef[..], &table.input[..]);
    let base: [*mut V::Elem; K] = std::array::from_fn(|m| state.add((first + m) * w * n));
    let from: [*const V::Elem; K] = std::array::from_fn(|m| src.add((first + m) * w * n));
    let abf_v: [V; K] = std::array::from_fn(|m| V::load(abf.as_ptr().add((first + m) * w)));
    let mut s: [V; K] = std::array::from_fn(|m| start::<V, INPUT>(beta, abf_v[m]));
    let mut q = [V::zero(); K];
    // Half blocks (W/2 elements of the tile's W rows): half the registers of a whole block.
    let half = V::HALF;
    for i0 in (0..whole).step_by(half) {
        // (Not `array::from_fn`: it may stay an out-of-line call, compiled without the CPU features.)
        let mut v = [V::load_half(from[0].add(i0), n); K];
        for m in 1..K {
            v[m] = V::load_half(from[m].add(i0), n);
        }
        for j in 0..half {
            let mut x: [V; K] = std::array::from_fn(|m| v[m].as_ref()[j]);
            element::<V, K, INPUT>(coef, input, i0 + j, &abf_v, &mut x, &mut s, &mut q);
            for m in 0..K {
                v[m].as_mut()[j] = x[m];
            }
        }
        for m in 0..K {
            V::store_half(&v[m], base[m].add(i0), n);
        }
    }
    if whole < n {
        for m in 0..K {
            let (sl, ql) = (lanes(s[m]), lanes(q[m]));
            for j in 0..w {
                let a = abf[(first + m) * w + j];
                scalar_tail::<_, INPUT>(table, a, from[m].add(j * n), base[m].add(j * n), whole, n, sl[j], ql[j]);
            }
        }
    }
}

/// One fused `Prefix` step on every whole tile of rows (see `TileKernel::prefix_forward_tiles`),
/// K tiles in flight (independent chains), the rest one at a time. Returns the rows done.
#[inline(always)]
unsafe fn forward_tiles<V: Transpose, const K: usize, const INPUT: bool>(
    table: &PrefixTable<V::Elem>,
    beta: V::Elem,
    abf: &[V::Elem],
    src: *const V::Elem,
    state: *mut V::Elem,
    n: usize,
) -> usize {
    let tiles_total = abf.len() / V::LANES;
    let mut tile = 0;
    while tile + K <= tiles_total {
        tiles::<V, K, INPUT>(table, beta, abf, src, state, n, tile);
        tile += K;
    }
    while tile < tiles_total {
        tiles::<V, 1, INPUT>(table, beta, abf, src, state, n, tile);
        tile += 1;
    }
    tiles_total * V::LANES
}

/// `TILE_STEPS` steps of every whole tile, each step's states stored (see
/// `TileKernel::prefix_forward_tiles_steps`); the tile stays transposed in registers between steps.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_tiles_steps<V: Transpose, const INPUT: bool>(
    tables: &[&PrefixTable<V::Elem>; TILE_STEPS],
    beta: V::Elem,
    abf: &[&[V::Elem]; TILE_STEPS],
    src: *const V::Elem,
    dst: &[*mut V::Elem; TILE_STEPS],
    rows: usize,
    n: usize,
) -> usize {
    const S: usize = TILE_STEPS;
    let w = V::LANES;
    let whole = n / w * w;
    let tiles_total = rows / w;
    let coefs: [&[[V::Elem; 6]]; S] = std::array::from_fn(|s| &tables[s].coef[..]);
    let inputs: [&[V::Elem]; S] = std::array::from_fn(|s| &tables[s].input[..]);
    for tile in 0..tiles_total {
        let off = tile * w * n;
        let abf_v: [[V; 1]; S] = std::array::from_fn(|s| [V::load(abf[s].as_ptr().add(tile * w))]);
        let mut s_sum: [[V; 1]; S] = std::array::from_fn(|s| [start::<V, INPUT>(beta, abf_v[s][0])]);
        let mut q_sum = [[V::zero()]; S];
        for i0 in (0..whole).step_by(w) {
            let mut v = V::load_block(src.add(off + i0), n);
            for s in 0..S {
                for (j, vj) in v.as_mut().iter_mut().enumerate() {
                    let mut x = [*vj];
                    element::<V, 1, INPUT>(
                        coefs[s],
                        inputs[s],
                        i0 + j,
                        &abf_v[s],
                        &mut x,
                        &mut s_sum[s],
                        &mut q_sum[s],
                    );
                    *vj = x[0];
                }
                V::store_block(&v, dst[s].add(off + i0), n);
            }
        }
        if whole < n {
            for s in 0..S {
                let (sl, ql) = (lanes(s_sum[s][0]), lanes(q_sum[s][0]));
                let from = if s == 0 { src } else { dst[s - 1] as *const V::Elem };
                for j in 0..w {
                    let a = abf[s][tile * w + j];
                    scalar_tail::<_, INPUT>(
                        tables[s],
                        a,
                        from.add(off + j * n),
                        dst[s].add(off + j * n),
                        whole,
                        n,
                        sl[j],
                        ql[j],
                    );
                }
            }
        }
    }
    tiles_total * w
}

/// `ai.len()` consecutive fused `Prefix` steps of one row, in continuous waves of S = M W steps, one
/// step per lane, skewed by one element (see the module docs of `crate::simd`). `state` has
/// `tb.n` >= S elements; `ai.len()` is a multiple of S.
#[inline(always)]
unsafe fn wavefront<V: Vector, const M: usize, const INPUT: bool>(
    tb: &WaveTables<V::Elem>,
    beta: V::Elem,
    ai: &[V::Elem],
    ae: &[V::Elem],
    abf: &[V::Elem],
    state: &mut [V::Elem],
) {
    let zero = <V::Elem as num_traits::Zero>::zero();
    let w = V::LANES;
    let s_steps = M * w;
    let n = tb.n;
    let waves = ai.len() / s_steps;
    let one = V::splat(<V::Elem as num_traits::One>::one());
    // Per lane: its step's (a_i, -a_i, -a_e, a_b f) and running sums, all set when the lane starts
    // its step (before that a lane computes on zeros, and nothing reads its outputs).
    let (mut ai_v, mut nai_v, mut nae_v, mut abf_v) = ([V::zero(); M], [V::zero(); M], [V::zero(); M], [V::zero(); M]);
    let (mut s, mut q) = ([V::zero(); M], [V::zero(); M]);
    // rotated[m] = the previous tick's outputs of vector m rotated up one lane (lane 0 = last lane).
    let mut rotated = [V::zero(); M];
    // tick = wave * n + phase; the last lane writes element `out` = (tick - (S - 1)) mod n.
    let (mut phase, mut wave, mut out) = (0usize, 0usize, n - (s_steps - 1));
    for tick in 0..waves * n + s_steps - 1 {
        if phase < s_steps {
            // Lane `phase` starts element 0 of step wave S + phase (past the last step: zeros).
            let (start_m, lane) = (phase / w, phase % w);
            let k = wave * s_steps + phase;
            let (a_i, a_e, a_bf) = if wave < waves {
                (*ai.get_unchecked(k), *ae.get_unchecked(k), *abf.get_unchecked(k))
            } else {
                (zero, zero, zero)
            };
            let s0 = if INPUT { zero } else { beta * a_bf };
            for m in 0..M {
                if m == start_m {
                    ai_v[m] = ai_v[m].with_lane(lane, a_i);
                    nai_v[m] = nai_v[m].with_lane(lane, -a_i);
                    nae_v[m] = nae_v[m].with_lane(lane, -a_e);
                    if INPUT {
                        abf_v[m] = abf_v[m].with_lane(lane, a_bf);
                    }
                    s[m] = s[m].with_lane(lane, s0);
                    q[m] = q[m].with_lane(lane, zero);
                }
            }
        }
        let mut carry = V::splat(*state.get_unchecked(phase));
        for m in 0..M {
            let x = rotated[m].with_first(carry);
            carry = rotated[m];
            // lane m W + j is at element (tick - m W - j) mod n: table index n - 1 - phase + m W + j.
            let at = n - 1 - phase + m * w;
            // crate::simd::prefix_row_step, operation for operation.
            let r = V::load(tb.r.as_ptr().add(at));
            let lrh = V::load(tb.lrh.as_ptr().add(at));
            let d = ai_v[m].mul_add(lrh, one);
            let g = nae_v[m].mul_add(lrh, one);
            let mut lp = V::load(tb.l.as_ptr().add(at)).mul(nai_v[m].mul_add(q[m], s[m]));
            if INPUT {
                lp = V::load(tb.b.as_ptr().add(at)).mul_add(abf_v[m], lp);
            }
            let y = g.mul_add(x, lp).div(d);
            s[m] = nae_v[m].mul(r).mul_add(x, s[m]);
            q[m] = r.mul_add(y, q[m]);
            rotated[m] = y.rotate_up();
        }
        // The last lane finished element `out` of its step.
        if tick + 1 >= s_steps {
            *state.get_unchecked_mut(out) = lanes(rotated[M - 1])[0];
        }
        out += 1;
        if out == n {
            out = 0;
        }
        phase += 1;
        if phase == n {
            phase = 0;
            wave += 1;
        }
    }
}

/// `tile[i][j] = rows[j * n + i]` for 8 rows of length n (8 / W transposes of W x W blocks).
#[inline(always)]
unsafe fn rows_to_tile<V: Transpose>(rows: &[V::Elem], n: usize, tile: &mut [[V::Elem; 8]]) {
    let w = V::LANES;
    let whole = n / w * w;
    for i0 in (0..whole).step_by(w) {
        for g in 0..8 / w {
            let mut v = V::zero_block();
            for (j, vj) in v.as_mut().iter_mut().enumerate() {
                *vj = V::load(rows.as_ptr().add((w * g + j) * n + i0));
            }
            V::transpose(&mut v);
            for (i, vi) in v.as_ref().iter().enumerate() {
                vi.store(tile[i0 + i].as_mut_ptr().add(w * g));
            }
        }
    }
    for i in whole..n {
        for j in 0..8 {
            tile[i][j] = rows[j * n + i];
        }
    }
}

/// The inverse of `rows_to_tile`.
#[inline(always)]
unsafe fn tile_to_rows<V: Transpose>(tile: &[[V::Elem; 8]], n: usize, rows: &mut [V::Elem]) {
    let w = V::LANES;
    let whole = n / w * w;
    for i0 in (0..whole).step_by(w) {
        for g in 0..8 / w {
            let mut v = V::zero_block();
            for (i, vi) in v.as_mut().iter_mut().enumerate() {
                *vi = V::load(tile[i0 + i].as_ptr().add(w * g));
            }
            V::transpose(&mut v);
            for (j, vj) in v.as_ref().iter().enumerate() {
                vj.store(rows.as_mut_ptr().add((w * g + j) * n + i0));
            }
        }
    }
    for i in whole..n {
        for j in 0..8 {
            rows[j * n + i] = tile[i][j];
        }
    }
}

/// Entry points compiled for AVX2 + FMA (`#[target_feature]`): the generic kernels above inline into
/// them, and so do the intrinsics of the vector type.
pub(crate) mod avx2 {
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn forward_tiles<V: Transpose, const K: usize, const INPUT: bool>(
        table: &PrefixTable<V::Elem>,
        beta: V::Elem,
        abf: &[V::Elem],
        src: *const V::Elem,
        state: *mut V::Elem,
        n: usize,
    ) -> usize {
        super::forward_tiles::<V, K, INPUT>(table, beta, abf, src, state, n)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn forward_tiles_steps<V: Transpose, const INPUT: bool>(
        tables: &[&PrefixTable<V::Elem>; TILE_STEPS],
        beta: V::Elem,
        abf: &[&[V::Elem]; TILE_STEPS],
        src: *const V::Elem,
        dst: &[*mut V::Elem; TILE_STEPS],
        rows: usize,
        n: usize,
    ) -> usize {
        super::forward_tiles_steps::<V, INPUT>(tables, beta, abf, src, dst, rows, n)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn wavefront<V: Vector, const M: usize, const INPUT: bool>(
        tb: &WaveTables<V::Elem>,
        beta: V::Elem,
        ai: &[V::Elem],
        ae: &[V::Elem],
        abf: &[V::Elem],
        state: &mut [V::Elem],
    ) {
        super::wavefront::<V, M, INPUT>(tb, beta, ai, ae, abf, state)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn rows_to_tile<V: Transpose>(rows: &[V::Elem], n: usize, tile: &mut [[V::Elem; 8]]) {
        super::rows_to_tile::<V>(rows, n, tile)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn tile_to_rows<V: Transpose>(tile: &[[V::Elem; 8]], n: usize, rows: &mut [V::Elem]) {
        super::tile_to_rows::<V>(tile, n, rows)
    }
}

/// The entry points compiled for AVX-512 (F, VL): the 512-bit time wavefront, and the multi-step row
/// tiles, whose 256-bit vectors gain from the EVEX encoding (broadcasts folded into the FMAs' memory
/// operands, {1to8}; measured ~5 % faster than their AVX2 build, unlike the single-step tiles).
pub(crate) mod avx512 {
    use super::*;

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(crate) unsafe fn forward_tiles_steps<V: Transpose, const INPUT: bool>(
        tables: &[&PrefixTable<V::Elem>; TILE_STEPS],
        beta: V::Elem,
        abf: &[&[V::Elem]; TILE_STEPS],
        src: *const V::Elem,
        dst: &[*mut V::Elem; TILE_STEPS],
        rows: usize,
        n: usize,
    ) -> usize {
        super::forward_tiles_steps::<V, INPUT>(tables, beta, abf, src, dst, rows, n)
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(crate) unsafe fn wavefront<V: Vector, const M: usize, const INPUT: bool>(
        tb: &WaveTables<V::Elem>,
        beta: V::Elem,
        ai: &[V::Elem],
        ae: &[V::Elem],
        abf: &[V::Elem],
        state: &mut [V::Elem],
    ) {
        super::wavefront::<V, M, INPUT>(tb, beta, ai, ae, abf, state)
    }
}
