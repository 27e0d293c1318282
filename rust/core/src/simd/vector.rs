//! A small SIMD vector trait and its x86_64 implementations: `F32x8`/`F64x4` (AVX2 + FMA, with the
//! block transposes of the row tiles) and `F32x16`/`F64x8` (AVX-512F, for the time wavefront).
//!
//! Every method is `#[inline(always)]` and `unsafe`: it may only run on a CPU with the features of its
//! type, from a function compiled with them (`#[target_feature]`, see `super::kernels`), where the
//! intrinsics inline into single instructions.

use std::arch::x86_64::*;

use crate::float::Real;

/// Sign-bit masks selecting one lane: W consecutive entries from `ONE_HOT[W - 1 - lane]` are set in
/// lane `lane` only (the AVX2 `with_lane` blends).
static ONE_HOT_32: [f32; 15] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
static ONE_HOT_64: [f64; 7] = [0.0, 0.0, 0.0, -0.0, 0.0, 0.0, 0.0];

/// W lanes of one floating-point type, with the operations of the `Prefix` kernels.
pub(crate) trait Vector: Copy {
    type Elem: Real;
    /// The lane count W.
    const LANES: usize;

    unsafe fn zero() -> Self;
    unsafe fn splat(x: Self::Elem) -> Self;
    unsafe fn load(p: *const Self::Elem) -> Self;
    unsafe fn store(self, p: *mut Self::Elem);
    unsafe fn mul(self, o: Self) -> Self;
    unsafe fn div(self, o: Self) -> Self;
    /// self * m + a with one rounding (FMA).
    unsafe fn mul_add(self, m: Self, a: Self) -> Self;
    /// Lanes rotated up by one: out[j] = v[j - 1], out[0] = v[W - 1].
    unsafe fn rotate_up(self) -> Self;
    /// `self` with lane `lane` (< W) replaced by `x`.
    unsafe fn with_lane(self, lane: usize, x: Self::Elem) -> Self;
    /// `self` with lane 0 replaced by lane 0 of `carry`.
    unsafe fn with_first(self, carry: Self) -> Self;
}

/// Transposes of W x W blocks, for the tiles of rows (AVX2 vectors: see `super::TileKernel`).
pub(crate) trait Transpose: Vector {
    /// W vectors: a W x W block of elements (one row per vector).
    type Block: Copy + AsRef<[Self]> + AsMut<[Self]>;

    unsafe fn zero_block() -> Self::Block;
    /// Transposes the block in registers: element j of vector i moves to element i of vector j.
    unsafe fn transpose(block: &mut Self::Block);
    /// The W x W block of rows `p + j * stride` (j < W), elements 0..W, transposed: vector i holds
    /// element i of every row. Built from 128-bit row pieces (the load ports do the cross-lane part
    /// of the transpose), then transposed within each 128-bit lane.
    unsafe fn load_block(p: *const Self::Elem, stride: usize) -> Self::Block;
    /// The inverse of `load_block`: vector i (element i of W rows) stored into the W rows.
    unsafe fn store_block(block: &Self::Block, p: *mut Self::Elem, stride: usize);

    /// Elements per half block (W / 2).
    const HALF: usize;
    /// W / 2 vectors: half a block (half the registers of a whole one).
    type Half: Copy + AsRef<[Self]> + AsMut<[Self]>;
    /// Elements 0..W/2 of the W rows `p + j * stride`, transposed (vector i = element i of every row),
    /// in the lane order of `load_block`.
    unsafe fn load_half(p: *const Self::Elem, stride: usize) -> Self::Half;
    /// The inverse of `load_half`.
    unsafe fn store_half(half: &Self::Half, p: *mut Self::Elem, stride: usize);
}

#[derive(Clone, Copy)]
pub(crate) struct F32x8(__m256);
#[derive(Clone, Copy)]
pub(crate) struct F64x4(__m256d);
#[derive(Clone, Copy)]
pub(crate) struct F32x16(__m512);
#[derive(Clone, Copy)]
pub(crate) struct F64x8(__m512d);

/// The element-wise operations of one vector type from its intrinsics.
macro_rules! arithmetic {
    ($load:ident, $store:ident, $set1:ident, $zero:ident, $mul:ident, $div:ident, $fma:ident) => {
        #[inline(always)]
        unsafe fn zero() -> Self {
            Self($zero())
        }
        #[inline(always)]
        unsafe fn splat(x: Self::Elem) -> Self {
            Self($set1(x))
        }
        #[inline(always)]
        unsafe fn load(p: *const Self::Elem) -> Self {
            Self($load(p))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut Self::Elem) {
            $store(p, self.0)
        }
        #[inline(always)]
        unsafe fn mul(self, o: Self) -> Self {
            Self($mul(self.0, o.0))
        }
        #[inline(always)]
        unsafe fn div(self, o: Self) -> Self {
            Self($div(self.0, o.0))
        }
        #[inline(always)]
        unsafe fn mul_add(self, m: Self, a: Self) -> Self {
            Self($fma(self.0, m.0, a.0))
        }
    };
}

impl Vector for F32x8 {
    type Elem = f32;
    const LANES: usize = 8;
    arithmetic!(
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_setzero_ps,
        _mm256_mul_ps,
        _mm256_div_ps,
        _mm256_fmadd_ps
    );

    #[inline(always)]
    unsafe fn rotate_up(self) -> Self {
        F32x8(_mm256_permutevar8x32_ps(self.0, _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6)))
    }

    #[inline(always)]
    unsafe fn with_lane(self, lane: usize, x: f32) -> Self {
        F32x8(_mm256_blendv_ps(self.0, _mm256_set1_ps(x), _mm256_loadu_ps(ONE_HOT_32.as_ptr().add(7 - lane))))
    }

    #[inline(always)]
    unsafe fn with_first(self, carry: Self) -> Self {
        F32x8(_mm256_blend_ps::<1>(self.0, carry.0))
    }
}

impl Transpose for F32x8 {
    type Block = [F32x8; 8];

    #[inline(always)]
    unsafe fn zero_block() -> Self::Block {
        [F32x8(_mm256_setzero_ps()); 8]
    }

    #[inline(always)]
    unsafe fn transpose(b: &mut [Self; 8]) {
        let v: [__m256; 8] = std::array::from_fn(|j| b[j].0);
        let t: [__m256; 8] = std::array::from_fn(|j| {
            let (x, y) = (v[j / 2 * 2], v[j / 2 * 2 + 1]);
            if j % 2 == 0 {
                _mm256_unpacklo_ps(x, y)
            } else {
                _mm256_unpackhi_ps(x, y)
            }
        });
        // s[4g + m]: column m of each 4 x 4 block of rows 4g .. 4g + 3 (per 128-bit half).
        let mut s = [_mm256_setzero_ps(); 8];
        for g in 0..2 {
            s[4 * g] = _mm256_shuffle_ps::<0x44>(t[4 * g], t[4 * g + 2]);
            s[4 * g + 1] = _mm256_shuffle_ps::<0xEE>(t[4 * g], t[4 * g + 2]);
            s[4 * g + 2] = _mm256_shuffle_ps::<0x44>(t[4 * g + 1], t[4 * g + 3]);
            s[4 * g + 3] = _mm256_shuffle_ps::<0xEE>(t[4 * g + 1], t[4 * g + 3]);
        }
        for m in 0..4 {
            b[m] = F32x8(_mm256_permute2f128_ps::<0x20>(s[m], s[4 + m]));
            b[4 + m] = F32x8(_mm256_permute2f128_ps::<0x31>(s[m], s[4 + m]));
        }
    }

    #[inline(always)]
    unsafe fn load_block(p: *const f32, stride: usize) -> [Self; 8] {
        let (lo, hi) = (Self::load_half(p, stride), Self::load_half(p.add(4), stride));
        std::array::from_fn(|m| if m < 4 { lo[m] } else { hi[m - 4] })
    }

    #[inline(always)]
    unsafe fn store_block(b: &[Self; 8], p: *mut f32, stride: usize) {
        Self::store_half(&[b[0], b[1], b[2], b[3]], p, stride);
        Self::store_half(&[b[4], b[5], b[6], b[7]], p.add(4), stride);
    }

    const HALF: usize = 4;
    type Half = [F32x8; 4];

    #[inline(always)]
    unsafe fn load_half(p: *const f32, stride: usize) -> [Self; 4] {
        // a[s]: row s (low half) and row 4 + s (high half), elements 0 .. 3.
        let a: [__m256; 4] = std::array::from_fn(|s| {
            let lo = _mm_loadu_ps(p.add(s * stride));
            _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(lo), _mm_loadu_ps(p.add((4 + s) * stride)))
        });
        let t = transpose4_ps(a);
        [F32x8(t[0]), F32x8(t[1]), F32x8(t[2]), F32x8(t[3])]
    }

    #[inline(always)]
    unsafe fn store_half(h: &[Self; 4], p: *mut f32, stride: usize) {
        let a = transpose4_ps([h[0].0, h[1].0, h[2].0, h[3].0]);
        for (s, v) in a.iter().enumerate() {
            _mm_storeu_ps(p.add(s * stride), _mm256_castps256_ps128(*v));
            _mm_storeu_ps(p.add((4 + s) * stride), _mm256_extractf128_ps::<1>(*v));
        }
    }
}

impl Vector for F64x4 {
    type Elem = f64;
    const LANES: usize = 4;
    arithmetic!(
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_set1_pd,
        _mm256_setzero_pd,
        _mm256_mul_pd,
        _mm256_div_pd,
        _mm256_fmadd_pd
    );

    #[inline(always)]
    unsafe fn rotate_up(self) -> Self {
        F64x4(_mm256_permute4x64_pd::<0b10_01_00_11>(self.0))
    }

    #[inline(always)]
    unsafe fn with_lane(self, lane: usize, x: f64) -> Self {
        F64x4(_mm256_blendv_pd(self.0, _mm256_set1_pd(x), _mm256_loadu_pd(ONE_HOT_64.as_ptr().add(3 - lane))))
    }

    #[inline(always)]
    unsafe fn with_first(self, carry: Self) -> Self {
        F64x4(_mm256_blend_pd::<1>(self.0, carry.0))
    }
}

impl Transpose for F64x4 {
    type Block = [F64x4; 4];

    #[inline(always)]
    unsafe fn zero_block() -> Self::Block {
        [F64x4(_mm256_setzero_pd()); 4]
    }

    #[inline(always)]
    unsafe fn transpose(b: &mut [Self; 4]) {
        let t0 = _mm256_unpacklo_pd(b[0].0, b[1].0);
        let t1 = _mm256_unpackhi_pd(b[0].0, b[1].0);
        let t2 = _mm256_unpacklo_pd(b[2].0, b[3].0);
        let t3 = _mm256_unpackhi_pd(b[2].0, b[3].0);
        b[0] = F64x4(_mm256_permute2f128_pd::<0x20>(t0, t2));
        b[1] = F64x4(_mm256_permute2f128_pd::<0x20>(t1, t3));
        b[2] = F64x4(_mm256_permute2f128_pd::<0x31>(t0, t2));
        b[3] = F64x4(_mm256_permute2f128_pd::<0x31>(t1, t3));
    }

    #[inline(always)]
    unsafe fn load_block(p: *const f64, stride: usize) -> [Self; 4] {
        let (lo, hi) = (Self::load_half(p, stride), Self::load_half(p.add(2), stride));
        [lo[0], lo[1], hi[0], hi[1]]
    }

    #[inline(always)]
    unsafe fn store_block(b: &[Self; 4], p: *mut f64, stride: usize) {
        Self::store_half(&[b[0], b[1]], p, stride);
        Self::store_half(&[b[2], b[3]], p.add(2), stride);
    }

    const HALF: usize = 2;
    type Half = [F64x4; 2];

    #[inline(always)]
    unsafe fn load_half(p: *const f64, stride: usize) -> [Self; 2] {
        // a[s]: row s (low half) and row 2 + s (high half), elements 0, 1.
        let a: [__m256d; 2] = std::array::from_fn(|s| {
            let lo = _mm_loadu_pd(p.add(s * stride));
            _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(lo), _mm_loadu_pd(p.add((2 + s) * stride)))
        });
        [F64x4(_mm256_unpacklo_pd(a[0], a[1])), F64x4(_mm256_unpackhi_pd(a[0], a[1]))]
    }

    #[inline(always)]
    unsafe fn store_half(h: &[Self; 2], p: *mut f64, stride: usize) {
        let a = [_mm256_unpacklo_pd(h[0].0, h[1].0), _mm256_unpackhi_pd(h[0].0, h[1].0)];
        for (s, v) in a.iter().enumerate() {
            _mm_storeu_pd(p.add(s * stride), _mm256_castpd256_pd128(*v));
            _mm_storeu_pd(p.add((2 + s) * stride), _mm256_extractf128_pd::<1>(*v));
        }
    }
}

impl Vector for F32x16 {
    type Elem = f32;
    const LANES: usize = 16;
    arithmetic!(
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_setzero_ps,
        _mm512_mul_ps,
        _mm512_div_ps,
        _mm512_fmadd_ps
    );

    #[inline(always)]
    unsafe fn rotate_up(self) -> Self {
        let idx = _mm512_setr_epi32(15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
        F32x16(_mm512_permutexvar_ps(idx, self.0))
    }

    #[inline(always)]
    unsafe fn with_lane(self, lane: usize, x: f32) -> Self {
        F32x16(_mm512_mask_mov_ps(self.0, 1 << lane, _mm512_set1_ps(x)))
    }

    #[inline(always)]
    unsafe fn with_first(self, carry: Self) -> Self {
        F32x16(_mm512_mask_blend_ps(1, self.0, carry.0))
    }
}

impl Vector for F64x8 {
    type Elem = f64;
    const LANES: usize = 8;
    arithmetic!(
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_set1_pd,
        _mm512_setzero_pd,
        _mm512_mul_pd,
        _mm512_div_pd,
        _mm512_fmadd_pd
    );

    #[inline(always)]
    unsafe fn rotate_up(self) -> Self {
        F64x8(_mm512_permutexvar_pd(_mm512_set_epi64(6, 5, 4, 3, 2, 1, 0, 7), self.0))
    }

    #[inline(always)]
    unsafe fn with_lane(self, lane: usize, x: f64) -> Self {
        F64x8(_mm512_mask_mov_pd(self.0, 1 << lane, _mm512_set1_pd(x)))
    }

    #[inline(always)]
    unsafe fn with_first(self, carry: Self) -> Self {
        F64x8(_mm512_mask_blend_pd(1, self.0, carry.0))
    }
}

/// The 4 x 4 transpose within each 128-bit lane of four float32 vectors (ymm).
#[inline(always)]
unsafe fn transpose4_ps(a: [__m256; 4]) -> [__m256; 4] {
    let t0 = _mm256_unpacklo_ps(a[0], a[1]);
    let t1 = _mm256_unpackhi_ps(a[0], a[1]);
    let t2 = _mm256_unpacklo_ps(a[2], a[3]);
    let t3 = _mm256_unpackhi_ps(a[2], a[3]);
    [
        _mm256_shuffle_ps::<0x44>(t0, t2),
        _mm256_shuffle_ps::<0xEE>(t0, t2),
        _mm256_shuffle_ps::<0x44>(t1, t3),
        _mm256_shuffle_ps::<0xEE>(t1, t3),
    ]
}
