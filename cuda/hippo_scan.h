// What hippo_scan.cu offers to other translation units (the HiPPO-RNN loop of hippo_rnn.cu): the
// measure argument and one GBT memory step, or its adjoint, of R rows launched on the current
// stream. The recurrence and its adjoint are documented in the header of hippo_scan.cu.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hippo_cuda {

enum MeasureKind : int { kLegS = 0, kLegT = 1, kLmu = 2, kLagT = 3 };

struct MeasureArgs {
  int kind;
  double theta;  // legt, lmu
  double beta;   // lagt
};

// The largest memory order N the kernels support.
constexpr int kMaxN = 4096;

// The measure of the ops' (measure, params) arguments; ValueError / NotImplementedError otherwise.
MeasureArgs parse_measure(const std::string& measure, const std::vector<double>& params);

// One step of R rows of N coefficients with per-row coefficient rows (a_i, a_e, a_b) = coef[r]:
//     (I - a_i A) c_out = (I + a_e A) c_in + a_b B f      (a_i = +inf: c_out = f e_0).
// f (R,), c_in and c_out (R, N) distinct, all contiguous on the current device.
template <typename T>
void gbt_step_rows(const T* f, const T* c_in, const double* coef, T* c_out, int64_t R, int N, const MeasureArgs& m);

// Its adjoint: w = (I - a_i A)^{-T} grad, grad_f = a_b <B, w>, grad_c = (I + a_e A)^T w
// (reset rows: grad_f = grad[0], grad_c = 0). grad and grad_c (R, N) distinct, grad_f (R,).
template <typename T>
void gbt_step_rows_adjoint(const T* grad, const double* coef, T* grad_f, T* grad_c, int64_t R, int N,
                           const MeasureArgs& m);

}  // namespace hippo_cuda
