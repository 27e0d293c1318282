// Host emulation of the few CUDA features the hippo_rs kernels use, so that the kernels of
// cuda/hippo_scan.cu run unchanged on a machine without a GPU (one
// std::thread per CUDA thread, one block at a time). Test-only: tests/test_cuda_emulated.py.
//   __shfl_*_sync: lanes exchange values through a per-warp slot array between two warp barriers;
//   __syncthreads: a block barrier; __shared__: a static (one block runs at a time).
#pragma once

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3() = default;
  dim3(unsigned x_) : x(x_) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) double2 { double x, y; };

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

using std::exp;
using std::fabs;
using std::fmax;
using std::isinf;
using std::max;
using std::min;
using std::sqrt;
using std::tanh;

namespace emu {
struct Warp {
  std::barrier<>* bar;
  alignas(16) unsigned char slot[32][16];
};
inline thread_local dim3 tid, bid, bdim, gdim;
inline thread_local Warp* warp;
inline thread_local std::barrier<>* block;

template <typename T>
T exchange(T v, int src) {
  const int lane = tid.x & 31;
  std::memcpy(warp->slot[lane], &v, sizeof(T));
  warp->bar->arrive_and_wait();
  T out;
  std::memcpy(&out, warp->slot[src], sizeof(T));
  warp->bar->arrive_and_wait();
  return out;
}

// Runs kernel(args) over grid x block threads, block after block.
template <typename Kernel, typename Args>
void launch(Kernel kernel, unsigned grid, unsigned threads, const Args& args) {
  for (unsigned b = 0; b < grid; ++b) {
    std::barrier<> block_bar(threads);
    std::vector<Warp> warps(threads / 32);
    std::vector<std::unique_ptr<std::barrier<>>> bars;
    for (unsigned w = 0; w < threads / 32; ++w) {
      bars.push_back(std::make_unique<std::barrier<>>(32));
      warps[w].bar = bars.back().get();
    }
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        tid = dim3(t);
        bid = dim3(b);
        bdim = dim3(threads);
        gdim = dim3(grid);
        warp = &warps[t / 32];
        block = &block_bar;
        kernel(args);
      });
    }
    for (auto& th : pool) th.join();
  }
}
}  // namespace emu

#define threadIdx (emu::tid)
#define blockIdx (emu::bid)
#define blockDim (emu::bdim)
#define gridDim (emu::gdim)

template <typename T>
T __shfl_sync(unsigned, T v, int src) { return emu::exchange(v, src & 31); }
template <typename T>
T __shfl_up_sync(unsigned, T v, unsigned d) {
  const int lane = emu::tid.x & 31;
  return emu::exchange(v, lane >= (int)d ? lane - (int)d : lane);
}
template <typename T>
T __shfl_down_sync(unsigned, T v, unsigned d) {
  const int lane = emu::tid.x & 31;
  return emu::exchange(v, lane + (int)d < 32 ? lane + (int)d : lane);
}
inline void __syncthreads() { emu::block->arrive_and_wait(); }
