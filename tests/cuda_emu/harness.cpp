// C entry points running the hippo_rs CUDA kernels under the host emulation (emu.h), for
// tests/test_cuda_emulated.py (ctypes), through the launch() of hippo_scan.cu.
#define HIPPO_CUDA_EMULATION
#include "../../cuda/hippo_scan.cu"

namespace {
using namespace hippo_cuda;

template <typename T>
void scan(int kind, double param, const T* f, const T* c0, const double* coef, int per_row, int L, int R, int N,
          int return_all, T* out) {
  const MeasureArgs m{kind, param, param};
  launch<T>(KernelArgs<T>{f, c0, coef, out, nullptr, L, N, R, per_row != 0, return_all != 0, m}, false);
}

template <typename T>
void adjoint(int kind, double param, const T* grad, const double* coef, int per_row, int L, int R, int N,
             int return_all, T* grad_f, T* grad_c0) {
  const MeasureArgs m{kind, param, param};
  launch<T>(KernelArgs<T>{nullptr, grad, coef, grad_c0, grad_f, L, N, R, per_row != 0, return_all != 0, m}, true);
}
}  // namespace

// kind: 0 legs, 1 legt (param = theta), 2 lmu (theta), 3 lagt (beta).
extern "C" {
void scan_f64(int kind, double p, const double* f, const double* c0, const double* coef, int per_row, int L, int R,
              int N, int ra, double* out) { scan<double>(kind, p, f, c0, coef, per_row, L, R, N, ra, out); }
void scan_f32(int kind, double p, const float* f, const float* c0, const double* coef, int per_row, int L, int R,
              int N, int ra, float* out) { scan<float>(kind, p, f, c0, coef, per_row, L, R, N, ra, out); }
void adjoint_f64(int kind, double p, const double* g, const double* coef, int per_row, int L, int R, int N, int ra,
                 double* gf, double* gc) { adjoint<double>(kind, p, g, coef, per_row, L, R, N, ra, gf, gc); }
void adjoint_f32(int kind, double p, const float* g, const double* coef, int per_row, int L, int R, int N, int ra,
                 float* gf, float* gc) { adjoint<float>(kind, p, g, coef, per_row, L, R, N, ra, gf, gc); }
}
