// The elementwise kernels of the HiPPO-RNN loop (hippo_rnn.cu): the gates of one step and their
// gradients, one thread per (batch row b, hidden unit j). The cell (Gu et al. 2020, Sec. 5 and App. E):
//
//     h~_k = tanh(z_h),   g_k = sigmoid(z_g),   h_k = (1 - g_k) h_{k-1} + g_k h~_k   (h_k = h~_k without the gate)
//
// with [z_h, z_g] = W_h|W_g [x_k, vec c_k] + b computed by the caller. Row b runs lengths[b] steps:
// at steps k >= lengths[b] its hidden state is held and its output y_k is 0 (h~ and g are still
// written, from the held memory, as the CPU op does).
#pragma once

#include <cmath>
#include <cstdint>

namespace hippo_cuda {

constexpr int kGateThreads = 256;

// Blocks of kGateThreads threads for n elements (grid-stride loops cover any remainder).
inline unsigned gate_blocks(int64_t n) {
  const int64_t blocks = (n + kGateThreads - 1) / kGateThreads;
  return (unsigned)(blocks < 1 ? 1 : (blocks > 65535 ? 65535 : blocks));
}

template <typename T>
struct GateArgs {
  const T* z;               // [z_h, z_g] of step k: (B, G H), G = 2 with the gate, 1 without
  const int64_t* lengths;   // (B,)
  T* h;                     // (B, H): h_{k-1} on entry, h_k on exit
  T* h_tilde;               // (B, H) of step k
  T* g;                     // (B, H) of step k; unused without the gate
  T* y;                     // (B, H) of step k
  int64_t k, B;
  int H;
  bool gate;
};

template <typename T>
__global__ void rnn_gates_kernel(const GateArgs<T> a) {
  const int64_t n = a.B * a.H, G = a.gate ? 2 : 1;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = i / a.H, j = i - b * a.H;
    const T* z = a.z + b * G * a.H;
    const T ht = tanh(z[j]);
    const bool active = a.k < a.lengths[b];
    T h = a.h[i];
    a.h_tilde[i] = ht;
    if (a.gate) {
      const T g = T(1) / (T(1) + exp(-z[a.H + j]));
      a.g[i] = g;
      if (active) h = (T(1) - g) * h + g * ht;
    } else if (active) {
      h = ht;
    }
    a.h[i] = h;
    a.y[i] = active ? h : T(0);
  }
}

template <typename T>
struct GateGradArgs {
  const T* grad_y;          // (B, H) of step k
  const T* h_tilde;         // (B, H) of step k
  const T* g;               // (B, H) of step k; unused without the gate
  const T* h_before;        // h_{k-1} (B, H)
  const int64_t* lengths;   // (B,)
  T* dh;                    // (B, H): dL/dh_k from the later steps on entry; its part through the gate update on exit
  T* dz;                    // (B, G H): [dL/dz_h, dL/dz_g] of step k
  int64_t k, B;
  int H;
  bool gate;
};

// With d = dL/dh_k (+ grad_y_k):  dz_h = d g (1 - h~^2),  dz_g = d (h~ - h_{k-1}) g (1 - g),
// dL/dh_{k-1} = d (1 - g) (+ W_fh^T df_k, added by the caller); without the gate dz_h = d (1 - h~^2)
// and h_k does not depend on h_{k-1} directly. Held rows: dz = 0 and dL/dh passes through.
template <typename T>
__global__ void rnn_gates_grad_kernel(const GateGradArgs<T> a) {
  const int64_t n = a.B * a.H, G = a.gate ? 2 : 1;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = i / a.H, j = i - b * a.H;
    T* dz = a.dz + b * G * a.H;
    if (a.k >= a.lengths[b]) {
      dz[j] = T(0);
      if (a.gate) dz[a.H + j] = T(0);
      continue;
    }
    const T d = a.dh[i] + a.grad_y[i], ht = a.h_tilde[i];
    if (a.gate) {
      const T g = a.g[i];
      dz[j] = d * g * (T(1) - ht * ht);
      dz[a.H + j] = d * (ht - a.h_before[i]) * g * (T(1) - g);
      a.dh[i] = d * (T(1) - g);
    } else {
      dz[j] = d * (T(1) - ht * ht);
      a.dh[i] = T(0);
    }
  }
}

}  // namespace hippo_cuda
