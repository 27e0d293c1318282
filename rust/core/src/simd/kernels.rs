//! The `Prefix` step kernels, generic over the vector type (`super::vector::Vector`), and their
//! entry points compiled for each instruction set.
//!
//! Every kernel does, lane by lane, the operations of the scalar step `crate::scan::StepKernel`
//! (one fused FMA wherever the scalar code has `mul_add`), so AVX2, AVX-512 and scalar results are
//! bitwise the same.

use super::vector::{Transpose, Vector};
use super::{WaveTables, TILE_STEPS};
use crate::float::Real;

/// The scalar fused `Prefix` step on elements `from..n` of one row, continuing the running sums
/// (sx, sy) (the tail of a row whose first elements ran in vectors).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn scalar_tail<T: Real>(
    table: &[[T; 6]],
    r: &[T],
    b: &[T],
    abf: T,
    src: *const T,
    dst: *mut T,
    from: usize,
    n: usize,
    mut sx: T,
    mut sy: T,
) {
    for i in from..n {
        let [inv, e, nael, nk, decay, rinv] = *table.get_unchecked(i);
        let x = *src.add(i);
        sx = r.get_unchecked(i).mul_add(x, sx);
        let u = abf.mul_add(*b.get_unchecked(i), e.mul_add(x, nael * sx));
        *dst.add(i) = u.mul_add(inv, nk * sy);
        sy = decay.mul_add(sy, rinv * u);
    }
}

/// Lanes of a vector as an array (for the scalar tails).
#[inline(always)]
unsafe fn lanes<V: Vector>(v: V) -> [V::Elem; 16] {
    let mut out = [<V::Elem as num_traits::Zero>::zero(); 16];
    v.store(out.as_mut_ptr());
    out
}

/// One fused `Prefix` step of element `i` on K tiles: x <- y, with the running sums (see
/// `StepKernel::forward`: sum_x = r x + sum_x; u = abf b + (e x - a_e l sum_x); y = u inv - k sum_y;
/// sum_y = decay sum_y + r inv u).
#[inline(always)]
unsafe fn element<V: Vector, const K: usize>(
    t: &[V::Elem; 6],
    r: &V::Elem,
    b: &V::Elem,
    abf: &[V; K],
    x: &mut [V; K],
    sum_x: &mut [V; K],
    sum_y: &mut [V; K],
) {
    // Broadcasts straight from memory (load ports), not from registers (the shuffle port does the
    // transposes).
    let (inv, e, nael, nk, decay, rinv) =
        (V::splat(t[0]), V::splat(t[1]), V::splat(t[2]), V::splat(t[3]), V::splat(t[4]), V::splat(t[5]));
    let (rv, bv) = (V::splat(*r), V::splat(*b));
    for m in 0..K {
        let xm = x[m];
        sum_x[m] = rv.mul_add(xm, sum_x[m]);
        let t = e.mul_add(xm, nael.mul(sum_x[m]));
        let u = abf[m].mul_add(bv, t);
        x[m] = u.mul_add(inv, nk.mul(sum_y[m]));
        sum_y[m] = decay.mul_add(sum_y[m], rinv.mul(u));
    }
}

/// K consecutive tiles of W rows from tile index `first`: W/2 elements of each row at a time loaded
/// transposed (one vector = one element of W rows), stepped, and stored transposed back.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tiles<V: Transpose, const K: usize>(
    table: &[[V::Elem; 6]],
    r: &[V::Elem],
    b: &[V::Elem],
    abf: &[V::Elem],
    src: *const V::Elem,
    state: *mut V::Elem,
    n: usize,
    first: usize,
) {
    let w = V::LANES;
    let whole = n / w * w;
    let base: [*mut V::Elem; K] = std::array::from_fn(|m| state.add((first + m) * w * n));
    let from: [*const V::Elem; K] = std::array::from_fn(|m| src.add((first + m) * w * n));
    let abf_v: [V; K] = std::array::from_fn(|m| V::load(abf.as_ptr().add((first + m) * w)));
    let (mut sum_x, mut sum_y) = ([V::zero(); K], [V::zero(); K]);
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
            element::<V, K>(
                table.get_unchecked(i0 + j),
                r.get_unchecked(i0 + j),
                b.get_unchecked(i0 + j),
                &abf_v,
                &mut x,
                &mut sum_x,
                &mut sum_y,
            );
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
            let (sx, sy) = (lanes(sum_x[m]), lanes(sum_y[m]));
            for j in 0..w {
                let a = abf[(first + m) * w + j];
                scalar_tail(table, r, b, a, from[m].add(j * n), base[m].add(j * n), whole, n, sx[j], sy[j]);
            }
        }
    }
}

/// One fused `Prefix` step on every whole tile of rows (see `TileKernel::prefix_forward_tiles`),
/// K tiles in flight (independent chains), the rest one at a time. Returns the rows done.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_tiles<V: Transpose, const K: usize>(
    table: &[[V::Elem; 6]],
    r: &[V::Elem],
    b: &[V::Elem],
    abf: &[V::Elem],
    src: *const V::Elem,
    state: *mut V::Elem,
    n: usize,
) -> usize {
    let tiles_total = abf.len() / V::LANES;
    let mut tile = 0;
    while tile + K <= tiles_total {
        tiles::<V, K>(table, r, b, abf, src, state, n, tile);
        tile += K;
    }
    while tile < tiles_total {
        tiles::<V, 1>(table, r, b, abf, src, state, n, tile);
        tile += 1;
    }
    tiles_total * V::LANES
}

/// `TILE_STEPS` steps of every whole tile, each step's states stored (see
/// `TileKernel::prefix_forward_tiles_steps`); the tile stays transposed in registers between steps.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_tiles_steps<V: Transpose>(
    tables: &[&[[V::Elem; 6]]; TILE_STEPS],
    r: &[V::Elem],
    b: &[V::Elem],
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
    for tile in 0..tiles_total {
        let off = tile * w * n;
        let abf_v: [[V; 1]; S] = std::array::from_fn(|s| [V::load(abf[s].as_ptr().add(tile * w))]);
        let (mut sum_x, mut sum_y) = ([[V::zero()]; S], [[V::zero()]; S]);
        for i0 in (0..whole).step_by(w) {
            let mut v = V::load_block(src.add(off + i0), n);
            for s in 0..S {
                for (j, vj) in v.as_mut().iter_mut().enumerate() {
                    let i = i0 + j;
                    let mut x = [*vj];
                    element::<V, 1>(
                        tables[s].get_unchecked(i),
                        r.get_unchecked(i),
                        b.get_unchecked(i),
                        &abf_v[s],
                        &mut x,
                        &mut sum_x[s],
                        &mut sum_y[s],
                    );
                    *vj = x[0];
                }
                V::store_block(&v, dst[s].add(off + i0), n);
            }
        }
        if whole < n {
            for s in 0..S {
                let (sx, sy) = (lanes(sum_x[s][0]), lanes(sum_y[s][0]));
                let from = if s == 0 { src } else { dst[s - 1] as *const V::Elem };
                for j in 0..w {
                    let a = abf[s][tile * w + j];
                    scalar_tail(
                        tables[s],
                        r,
                        b,
                        a,
                        from.add(off + j * n),
                        dst[s].add(off + j * n),
                        whole,
                        n,
                        sx[j],
                        sy[j],
                    );
                }
            }
        }
    }
    tiles_total * w
}

/// `M * W` consecutive fused `Prefix` steps of one row, one step per lane, skewed by one element
/// (see the module docs of `crate::simd`).
#[inline(always)]
unsafe fn wavefront<V: Vector, const M: usize>(
    tb: &WaveTables<V::Elem>,
    ai: &[V::Elem],
    ae: &[V::Elem],
    abf: &[V::Elem],
    state: &mut [V::Elem],
) {
    let w = V::LANES;
    let n = tb.n;
    let one = V::splat(<V::Elem as num_traits::One>::one());
    let ai_v: [V; M] = std::array::from_fn(|m| V::load(ai.as_ptr().add(m * w)));
    let ae_v: [V; M] = std::array::from_fn(|m| V::load(ae.as_ptr().add(m * w)));
    let abf_v: [V; M] = std::array::from_fn(|m| V::load(abf.as_ptr().add(m * w)));
    let nai_v: [V; M] = std::array::from_fn(|m| V::zero().sub(ai_v[m]));
    let nae_v: [V; M] = std::array::from_fn(|m| V::zero().sub(ae_v[m]));
    let (mut sum_x, mut sum_y) = ([V::zero(); M], [V::zero(); M]);
    // rotated[m] = the previous tick's outputs of vector m rotated up one lane (lane 0 = last lane).
    let mut rotated = [V::zero(); M];
    for tick in 0..n + M * w - 1 {
        let incoming =
            V::splat(if tick < n { *state.get_unchecked(tick) } else { <V::Elem as num_traits::Zero>::zero() });
        let mut carry = incoming;
        for m in 0..M {
            let x = rotated[m].with_first(carry);
            carry = rotated[m];
            // lane q = m W + j is at element tick - q: table index pad + n - 1 - tick + q.
            let at = tb.pad + n - 1 - tick + m * w;
            let r = V::load(tb.r.as_ptr().add(at));
            let l = V::load(tb.l.as_ptr().add(at));
            // As StepKernel::prepare, with the exact negations nael = (-ae) l = -(ae l) and
            // nk = ((-ai) l) inv = -k, and decay = 1 + r nk = 1 - r k.
            let inv = one.div(ai_v[m].mul_add(V::load(tb.lrh.as_ptr().add(at)), one));
            let e = ae_v[m].mul_add(V::load(tb.h.as_ptr().add(at)), one);
            let nael = nae_v[m].mul(l);
            let nk = nai_v[m].mul(l).mul(inv);
            let decay = one.add(r.mul(nk));
            let rinv = r.mul(inv);
            sum_x[m] = r.mul_add(x, sum_x[m]);
            let t = e.mul_add(x, nael.mul(sum_x[m]));
            let u = abf_v[m].mul_add(V::load(tb.b.as_ptr().add(at)), t);
            let y = u.mul_add(inv, nk.mul(sum_y[m]));
            sum_y[m] = decay.mul_add(sum_y[m], rinv.mul(u));
            rotated[m] = y.rotate_up();
        }
        // The last lane finished element tick - (M W - 1) of the last step.
        if tick + 1 >= M * w {
            *state.get_unchecked_mut(tick + 1 - M * w) = lanes(rotated[M - 1])[0];
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
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn forward_tiles<V: Transpose, const K: usize>(
        table: &[[V::Elem; 6]],
        r: &[V::Elem],
        b: &[V::Elem],
        abf: &[V::Elem],
        src: *const V::Elem,
        state: *mut V::Elem,
        n: usize,
    ) -> usize {
        super::forward_tiles::<V, K>(table, r, b, abf, src, state, n)
    }

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn forward_tiles_steps<V: Transpose>(
        tables: &[&[[V::Elem; 6]]; TILE_STEPS],
        r: &[V::Elem],
        b: &[V::Elem],
        abf: &[&[V::Elem]; TILE_STEPS],
        src: *const V::Elem,
        dst: &[*mut V::Elem; TILE_STEPS],
        rows: usize,
        n: usize,
    ) -> usize {
        super::forward_tiles_steps::<V>(tables, r, b, abf, src, dst, rows, n)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn wavefront<V: Vector, const M: usize>(
        tb: &WaveTables<V::Elem>,
        ai: &[V::Elem],
        ae: &[V::Elem],
        abf: &[V::Elem],
        state: &mut [V::Elem],
    ) {
        super::wavefront::<V, M>(tb, ai, ae, abf, state)
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
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn forward_tiles_steps<V: Transpose>(
        tables: &[&[[V::Elem; 6]]; TILE_STEPS],
        r: &[V::Elem],
        b: &[V::Elem],
        abf: &[&[V::Elem]; TILE_STEPS],
        src: *const V::Elem,
        dst: &[*mut V::Elem; TILE_STEPS],
        rows: usize,
        n: usize,
    ) -> usize {
        super::forward_tiles_steps::<V>(tables, r, b, abf, src, dst, rows, n)
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(crate) unsafe fn wavefront<V: Vector, const M: usize>(
        tb: &WaveTables<V::Elem>,
        ai: &[V::Elem],
        ae: &[V::Elem],
        abf: &[V::Elem],
        state: &mut [V::Elem],
    ) {
        super::wavefront::<V, M>(tb, ai, ae, abf, state)
    }
}
