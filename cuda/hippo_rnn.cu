// hippo_rs::rnn and hippo_rs::rnn_backward on CUDA: the HiPPO-RNN layer over a whole sequence
// (Gu et al. 2020, Sec. 5 and App. E), forward and backpropagation through time, each one C++ loop
// on the current stream (schemas and the saved tensors: python/hippo_rs/torch/_rnn.py):
//
//     f_k  = W_f [x_k, h_{k-1}] + b_f                       (M scalars, identity activation)
//     c_k  = GBT step of c_{k-1} (M rows of N) with f_k       (the kernels of hippo_scan.cu)
//     h~_k = tanh(W_h [x_k, vec c_k] + b_h),  g_k = sigmoid(W_g [x_k, vec c_k] + b_g)
//     h_k  = (1 - g_k) h_{k-1} + g_k h~_k                     (h_k = h~_k without the gate)
//
// Forward: the input projections of all steps are one cuBLAS product each (x W_fx^T, x [W_hx; W_gx]^T);
// per step one product h_{k-1} W_fh^T into f_k, the memory step, one product c_k [W_hc; W_gc]^T into
// [z_h, z_g], and one elementwise kernel (hippo_rnn_kernels.cuh). Backward, steps in reverse: the gate
// kernel (dz), dc_k += dz_k [W_hc; W_gc], the adjoint memory step (df_k, dc_{k-1}), dh_{k-1} += df_k W_fh;
// every chunk of steps then adds its weight gradients and writes its dx as products over all its
// (step, row) pairs at once (dW_c += dz^T c, dW_x += dp^T x, dW_fh += df^T h, dx = dp W_x) and its bias
// gradients as column sums.
//
// Lengths: row b runs lengths[b] steps, then holds its state and outputs zeros. The memory step of a
// held row uses the coefficient row (0, 0, 0), the identity c_k = c_{k-1} (exact for LegS and LagT and for
// float32 LegT and LMU; float64 LegT and LMU, whose sweep scales by D_n and back, within a rounding per
// held step); its adjoint
// passes the gradient through and gives f_k none. The gate kernels mask the hidden update. Nothing
// reads lengths on the host: no synchronisation inside the loops, every workspace allocated before
// them, so a forward and backward pass can be captured in a CUDA graph.

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#ifdef HIPPO_CUDA_EMULATION
// tests/cuda_emu: the loops on ATen's CPU tensors, the kernels as host code (one std::thread per CUDA thread).
#include "emu.h"
#else
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "hippo_rnn_kernels.cuh"
#include "hippo_scan.h"

namespace hippo_cuda {
namespace {

// Rows (step, batch row) per product of a chunk of steps in the backward pass.
#ifndef HIPPO_RNN_CHUNK_ROWS
#define HIPPO_RNN_CHUNK_ROWS 16384
#endif
constexpr int64_t kChunkRows = HIPPO_RNN_CHUNK_ROWS;

#ifdef HIPPO_CUDA_EMULATION
struct DeviceGuard {
  explicit DeviceGuard(const at::Device&) {}
};
bool on_kernel_device(const at::Tensor& t) { return t.is_cpu(); }
#else
using DeviceGuard = c10::cuda::CUDAGuard;
bool on_kernel_device(const at::Tensor& t) { return t.is_cuda(); }
#endif

struct Dims {
  int64_t L, B, I, H, M, N, MN, GH;
  bool gate;
};

void check_same(const at::Tensor& t, const at::Tensor& x, const char* name) {
  TORCH_CHECK(t.device() == x.device(), name, ": expected a tensor on ", x.device(), " (the device of x), got one on ",
              t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == x.scalar_type(), name, ": expected the dtype of x (", x.scalar_type(), "), got ",
                   t.scalar_type());
}

void check_shape(const at::Tensor& t, at::IntArrayRef want, const char* name) {
  TORCH_CHECK_VALUE(t.sizes() == want, name, ": expected shape ", want, ", got ", t.sizes());
}

Dims check_layer(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& coef,
                 const at::Tensor& lengths, const at::Tensor& w_f, const at::Tensor& b_f, const at::Tensor& w_h,
                 const at::Tensor& b_h, const std::optional<at::Tensor>& w_g, const std::optional<at::Tensor>& b_g) {
  TORCH_CHECK(on_kernel_device(x), "x: expected a CUDA tensor, got one on ", x.device());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                   "x: expected a float32 or float64 tensor, got ", x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() == 3 && h0.dim() == 2 && c0.dim() == 3,
                    "x, h0, c0: expected shapes (L, B, I), (B, H), (B, M, N), got ", x.sizes(), ", ", h0.sizes(),
                    ", ", c0.sizes());
  Dims d{x.size(0), x.size(1), x.size(2), h0.size(1), c0.size(1), c0.size(2), c0.size(1) * c0.size(2), 0,
         w_g.has_value()};
  d.GH = d.gate ? 2 * d.H : d.H;
  TORCH_CHECK_VALUE(w_g.has_value() == b_g.has_value(), "w_g, b_g: expected both (the gate) or neither");
  check_same(h0, x, "h0");
  check_same(c0, x, "c0");
  check_shape(h0, {d.B, d.H}, "h0");
  TORCH_CHECK_VALUE(c0.size(0) == d.B, "c0: expected shape (", d.B, ", M, N), got ", c0.sizes());
  TORCH_CHECK_VALUE(d.N >= 1 && d.N <= kMaxN, "N: the CUDA kernels support 1 <= N <= ", kMaxN, ", got ", d.N,
                    " (larger N: run on the CPU, tensor.cpu())");
  TORCH_CHECK_TYPE(coef.scalar_type() == at::kDouble, "coef: expected a float64 tensor, got ", coef.scalar_type());
  TORCH_CHECK(coef.device() == x.device(), "coef: expected a tensor on ", x.device(), ", got one on ", coef.device());
  const bool shared = coef.dim() == 2 && coef.size(0) == d.L && coef.size(1) == 3;
  const bool per_row = coef.dim() == 3 && coef.size(0) == d.L && coef.size(1) == d.B && coef.size(2) == 3;
  TORCH_CHECK_VALUE(shared || per_row, "coef: expected shape (", d.L, ", 3) or (", d.L, ", ", d.B, ", 3), got ",
                    coef.sizes());
  TORCH_CHECK(lengths.device() == x.device(), "lengths: expected a tensor on ", x.device(), ", got one on ",
              lengths.device());
  TORCH_CHECK_VALUE(lengths.scalar_type() == at::kLong && lengths.dim() == 1 && lengths.size(0) == d.B,
                    "lengths: expected an int64 tensor of shape (", d.B, ",), got ", lengths.scalar_type(), " ",
                    lengths.sizes());
  check_same(w_f, x, "w_f");
  check_same(b_f, x, "b_f");
  check_same(w_h, x, "w_h");
  check_same(b_h, x, "b_h");
  check_shape(w_f, {d.M, d.I + d.H}, "w_f");
  check_shape(b_f, {d.M}, "b_f");
  check_shape(w_h, {d.H, d.I + d.MN}, "w_h");
  check_shape(b_h, {d.H}, "b_h");
  if (d.gate) {
    check_same(*w_g, x, "w_g");
    check_same(*b_g, x, "b_g");
    check_shape(*w_g, {d.H, d.I + d.MN}, "w_g");
    check_shape(*b_g, {d.H}, "b_g");
  }
  return d;
}

// The memory step's coefficient rows of every (step, memory row), (L, B M, 3) float64: coef[k] or
// coef[k, b] for the M units of row b, and (0, 0, 0) (the identity step) where k >= lengths[b].
at::Tensor memory_rows(const at::Tensor& coef, const at::Tensor& lengths, const Dims& d) {
  const at::Tensor rows = coef.dim() == 2 ? coef.unsqueeze(1).expand({d.L, d.B, 3}) : coef;
  const at::Tensor active = at::arange(d.L, lengths.options()).unsqueeze(1) < lengths.unsqueeze(0);  // (L, B)
  const at::Tensor held = at::zeros({}, coef.options());
  return at::where(active.unsqueeze(2), rows, held).unsqueeze(2).expand({d.L, d.B, d.M, 3}).reshape({d.L, d.B * d.M, 3})
      .contiguous();
}

// The weights split by what they multiply, each contiguous (copies made once per call):
// W_fx (M, I), W_fh (M, H); W_zx = [W_hx; W_gx] (G H, I), W_c = [W_hc; W_gc] (G H, M N), b_z = [b_h; b_g].
struct SplitWeights {
  at::Tensor w_fx, w_fh, w_zx, w_c, b_z;
};

SplitWeights split(const Dims& d, const at::Tensor& w_f, const at::Tensor& w_h, const at::Tensor& b_h,
                   const std::optional<at::Tensor>& w_g, const std::optional<at::Tensor>& b_g) {
  const at::Tensor w_z = d.gate ? at::cat({w_h, *w_g}, 0) : w_h;
  return {w_f.narrow(1, 0, d.I).contiguous(), w_f.narrow(1, d.I, d.H).contiguous(),
          w_z.narrow(1, 0, d.I).contiguous(), w_z.narrow(1, d.I, d.MN).contiguous(),
          d.gate ? at::cat({b_h, *b_g}, 0) : b_h.contiguous()};
}

template <typename Kernel, typename Args>
void launch_elementwise(Kernel kernel, int64_t n, const Args& args) {
#ifdef HIPPO_CUDA_EMULATION
  emu::launch(kernel, gate_blocks(n), kGateThreads, args);
#else
  kernel<<<gate_blocks(n), kGateThreads, 0, at::cuda::getCurrentCUDAStream()>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
}

}  // namespace

// hippo_rs::rnn: -> (y (L, B, H), h_n (B, H), c_n (B, M, N), c (L, B, M, N), h~ (L, B, H), g (L, B, H) | (0,)).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> rnn_forward(
    const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& coef,
    const at::Tensor& lengths, const at::Tensor& w_f, const at::Tensor& b_f, const at::Tensor& w_h,
    const at::Tensor& b_h, const std::optional<at::Tensor>& w_g, const std::optional<at::Tensor>& b_g,
    const std::string& measure, const std::vector<double>& params) {
  const Dims d = check_layer(x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g, b_g);
  const MeasureArgs m = parse_measure(measure, params);
  const DeviceGuard guard(x.device());
  const auto opt = x.options();
  at::Tensor y = at::empty({d.L, d.B, d.H}, opt), c = at::empty({d.L, d.B, d.M, d.N}, opt);
  at::Tensor h_tilde = at::empty({d.L, d.B, d.H}, opt);
  at::Tensor g = d.gate ? at::empty({d.L, d.B, d.H}, opt) : at::empty({0}, opt);
  at::Tensor h = h0.contiguous().clone();  // h_{k-1}, updated in place to h_k by the gate kernel
  if (d.L == 0 || d.B == 0) return {y, h, c0.contiguous().clone(), c, h_tilde, g};
  const at::Tensor c0c = c0.contiguous(), len = lengths.contiguous(), rows = memory_rows(coef, lengths, d);
  const SplitWeights w = split(d, w_f, w_h, b_h, w_g, b_g);
  // Input projections of all steps: pre_f = x W_fx^T + b_f (L B, M), pre_z = x W_zx^T + b_z (L B, G H).
  const at::Tensor x2 = x.contiguous().view({d.L * d.B, d.I});
  at::Tensor pre_f = at::addmm(b_f, x2, w.w_fx.t()), pre_z = at::addmm(w.b_z, x2, w.w_zx.t());
  const at::Tensor c2 = c.view({d.L, d.B, d.MN});
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hippo_rs::rnn", [&] {
    scalar_t* c_all = c.data_ptr<scalar_t>();
    for (int64_t k = 0; k < d.L; ++k) {
      at::Tensor f_k = pre_f.narrow(0, k * d.B, d.B), z_k = pre_z.narrow(0, k * d.B, d.B);
      f_k.addmm_(h, w.w_fh.t());  // f_k = W_f [x_k, h_{k-1}] + b_f
      const scalar_t* c_prev = k == 0 ? c0c.data_ptr<scalar_t>() : c_all + (k - 1) * d.B * d.MN;
      gbt_step_rows<scalar_t>(f_k.data_ptr<scalar_t>(), c_prev, rows.data_ptr<double>() + k * d.B * d.M * 3,
                              c_all + k * d.B * d.MN, d.B * d.M, (int)d.N, m);
      z_k.addmm_(c2[k], w.w_c.t());  // [z_h, z_g] = [W_h; W_g] [x_k, vec c_k] + [b_h; b_g]
      const GateArgs<scalar_t> args{z_k.data_ptr<scalar_t>(), len.data_ptr<int64_t>(), h.data_ptr<scalar_t>(),
                                    h_tilde.data_ptr<scalar_t>() + k * d.B * d.H,
                                    d.gate ? g.data_ptr<scalar_t>() + k * d.B * d.H : nullptr,
                                    y.data_ptr<scalar_t>() + k * d.B * d.H, k, d.B, (int)d.H, d.gate};
      launch_elementwise(rnn_gates_kernel<scalar_t>, d.B * d.H, args);
    }
  });
  return {y, h, c[d.L - 1].clone(), c, h_tilde, g};
}

// hippo_rs::rnn_backward: -> the gradients of (x, h0, c0, w_f, b_f, w_h, b_h, w_g, b_g) (those of
// w_g, b_g empty without the gate).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
           at::Tensor>
rnn_backward(const at::Tensor& grad_y, const at::Tensor& grad_h_n, const at::Tensor& grad_c_n, const at::Tensor& x,
             const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& coef, const at::Tensor& lengths,
             const at::Tensor& w_f, const at::Tensor& b_f, const at::Tensor& w_h, const at::Tensor& b_h,
             const std::optional<at::Tensor>& w_g, const std::optional<at::Tensor>& b_g, const at::Tensor& y,
             const at::Tensor& c, const at::Tensor& h_tilde, const at::Tensor& g, const std::string& measure,
             const std::vector<double>& params) {
  const Dims d = check_layer(x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g, b_g);
  const MeasureArgs m = parse_measure(measure, params);
  const auto check_steps = [&](const at::Tensor& t, const char* name) {
    check_same(t, x, name);
    check_shape(t, {d.L, d.B, d.H}, name);
  };
  check_steps(grad_y, "grad_y");
  check_steps(y, "y");
  check_steps(h_tilde, "h_tilde");
  check_same(g, x, "g");
  if (d.gate) check_shape(g, {d.L, d.B, d.H}, "g");
  check_same(c, x, "c");
  check_shape(c, {d.L, d.B, d.M, d.N}, "c");
  check_same(grad_h_n, x, "grad_h_n");
  check_shape(grad_h_n, {d.B, d.H}, "grad_h_n");
  check_same(grad_c_n, x, "grad_c_n");
  check_shape(grad_c_n, {d.B, d.M, d.N}, "grad_c_n");
  const DeviceGuard guard(x.device());
  at::Tensor gx = at::zeros({d.L, d.B, d.I}, x.options());
  at::Tensor gw_f = at::zeros_like(w_f, at::MemoryFormat::Contiguous), gb_f = at::zeros_like(b_f);
  at::Tensor gw_h = at::zeros_like(w_h, at::MemoryFormat::Contiguous), gb_h = at::zeros_like(b_h);
  at::Tensor gw_g = d.gate ? at::zeros_like(*w_g, at::MemoryFormat::Contiguous) : at::empty({0}, x.options());
  at::Tensor gb_g = d.gate ? at::zeros_like(*b_g) : at::empty({0}, x.options());
  at::Tensor dh = grad_h_n.contiguous().clone();                            // dL/dh_k
  at::Tensor dc = grad_c_n.contiguous().clone().view({d.B, d.MN});          // dL/dc_k
  if (d.L == 0 || d.B == 0) return {gx, dh, dc.view({d.B, d.M, d.N}), gw_f, gb_f, gw_h, gb_h, gw_g, gb_g};
  at::Tensor dc_prev = at::empty_like(dc);
  const at::Tensor len = lengths.contiguous(), rows = memory_rows(coef, lengths, d);
  const SplitWeights w = split(d, w_f, w_h, b_h, w_g, b_g);
  const at::Tensor gyc = grad_y.contiguous(), htc = h_tilde.contiguous(), gc = g.contiguous(), h0c = h0.contiguous();
  const at::Tensor x2 = x.contiguous().view({d.L * d.B, d.I}), y2 = y.contiguous().view({d.L * d.B, d.H});
  const at::Tensor c2 = c.contiguous().view({d.L * d.B, d.MN});
  const at::Tensor gx2 = gx.view({d.L * d.B, d.I});
  const int64_t K = std::clamp<int64_t>(kChunkRows / d.B, 1, d.L);  // steps per chunk
  at::Tensor df = at::empty({K * d.B, d.M}, x.options()), dz = at::empty({K * d.B, d.GH}, x.options());
  // Gradient parts: W_f = [W_fx | W_fh], W_h = [W_hx | W_hc], W_g = [W_gx | W_gc] (column blocks).
  at::Tensor gw_fx = gw_f.narrow(1, 0, d.I), gw_fh = gw_f.narrow(1, d.I, d.H);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hippo_rs::rnn_backward", [&] {
    for (int64_t k1 = d.L; k1 > 0;) {
      const int64_t k0 = std::max<int64_t>(0, k1 - K), n = (k1 - k0) * d.B;
      for (int64_t k = k1 - 1; k >= k0; --k) {
        at::Tensor dz_k = dz.narrow(0, (k - k0) * d.B, d.B), df_k = df.narrow(0, (k - k0) * d.B, d.B);
        const int64_t at_k = k * d.B * d.H;
        const scalar_t* h_before = k == 0 ? h0c.data_ptr<scalar_t>() : y2.data_ptr<scalar_t>() + at_k - d.B * d.H;
        const GateGradArgs<scalar_t> args{gyc.data_ptr<scalar_t>() + at_k, htc.data_ptr<scalar_t>() + at_k,
                                          d.gate ? gc.data_ptr<scalar_t>() + at_k : nullptr, h_before,
                                          len.data_ptr<int64_t>(), dh.data_ptr<scalar_t>(),
                                          dz_k.data_ptr<scalar_t>(), k, d.B, (int)d.H, d.gate};
        launch_elementwise(rnn_gates_grad_kernel<scalar_t>, d.B * d.H, args);
        dc.addmm_(dz_k, w.w_c);  // dc_k += [dz_h, dz_g] [W_hc; W_gc]
        gbt_step_rows_adjoint<scalar_t>(dc.data_ptr<scalar_t>(), rows.data_ptr<double>() + k * d.B * d.M * 3,
                                        df_k.data_ptr<scalar_t>(), dc_prev.data_ptr<scalar_t>(), d.B * d.M,
                                        (int)d.N, m);
        std::swap(dc, dc_prev);  // dc = dL/dc_{k-1}
        dh.addmm_(df_k, w.w_fh);  // dL/dh_{k-1} += df_k W_fh
      }
      // The chunk's steps k0..k1 at once: (step, row) pairs are the rows of every product.
      const at::Tensor dfc = df.narrow(0, 0, n), dzc = dz.narrow(0, 0, n);
      const at::Tensor xc = x2.narrow(0, k0 * d.B, n), cc = c2.narrow(0, k0 * d.B, n);
      at::Tensor dxc = gx2.narrow(0, k0 * d.B, n);
      at::mm_out(dxc, dfc, w.w_fx);  // dx_k = df_k W_fx + dz_k [W_hx; W_gx]
      dxc.addmm_(dzc, w.w_zx);
      gw_fx.addmm_(dfc.t(), xc);  // dW_fx += df^T x
      // dW_fh += df^T h_{k-1}: h_{k-1} = y_{k-1} for rows still running at k (held rows have df = 0), h0 at k = 0.
      if (k0 == 0) {
        gw_fh.addmm_(dfc.narrow(0, 0, d.B).t(), h0c);
        if (n > d.B) gw_fh.addmm_(dfc.narrow(0, d.B, n - d.B).t(), y2.narrow(0, 0, n - d.B));
      } else {
        gw_fh.addmm_(dfc.t(), y2.narrow(0, (k0 - 1) * d.B, n));
      }
      gb_f.add_(dfc.sum(0));
      for (int part = 0; part < (d.gate ? 2 : 1); ++part) {  // W_h, then W_g: dW_x += dz^T x, dW_c += dz^T c
        at::Tensor gw = part == 0 ? gw_h : gw_g, gb = part == 0 ? gb_h : gb_g;
        const at::Tensor dzp = dzc.narrow(1, part * d.H, d.H);
        gw.narrow(1, 0, d.I).addmm_(dzp.t(), xc);
        gw.narrow(1, d.I, d.MN).addmm_(dzp.t(), cc);
        gb.add_(dzp.sum(0));
      }
      k1 = k0;
    }
  });
  return {gx, dh, dc.view({d.B, d.M, d.N}), gw_f, gb_f, gw_h, gb_h, gw_g, gb_g};
}

}  // namespace hippo_cuda
