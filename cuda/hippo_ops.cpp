// Python binding of the CUDA kernels (hippo_scan.cu, hippo_rnn.cu). hippo_rs.torch._cuda loads this
// extension with torch.utils.cpp_extension and registers the functions as the CUDA kernels of the ops
// torch.ops.hippo_rs.{gbt_scan, gbt_scan_backward, gbt_step, gbt_step_backward} (schemas in
// python/hippo_rs/torch/_ops.py) and torch.ops.hippo_rs.{rnn, rnn_backward} (python/hippo_rs/torch/_rnn.py);
// argument checks happen in C++ (TORCH_CHECK, messages name shapes and dtypes).

#include <torch/extension.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace hippo_cuda {
at::Tensor gbt_scan(const at::Tensor& f, const at::Tensor& c0, const at::Tensor& coef, const std::string& measure,
                    const std::vector<double>& params, bool return_all);
std::tuple<at::Tensor, at::Tensor> gbt_scan_backward(const at::Tensor& grad, const at::Tensor& coef,
                                                     const std::string& measure, const std::vector<double>& params,
                                                     bool return_all, int64_t N);
at::Tensor gbt_step(const at::Tensor& c, const at::Tensor& f, const at::Tensor& coef, const std::string& measure,
                    const std::vector<double>& params);
std::tuple<at::Tensor, at::Tensor> gbt_step_backward(const at::Tensor& grad, const at::Tensor& coef,
                                                     const std::string& measure, const std::vector<double>& params);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> rnn_forward(
    const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& coef,
    const at::Tensor& lengths, const at::Tensor& w_f, const at::Tensor& b_f, const at::Tensor& w_h,
    const at::Tensor& b_h, const std::optional<at::Tensor>& w_g, const std::optional<at::Tensor>& b_g,
    const std::string& measure, const std::vector<double>& params);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
           at::Tensor>
rnn_backward(const at::Tensor& grad_y, const at::Tensor& grad_h_n, const at::Tensor& grad_c_n, const at::Tensor& x,
             const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& coef, const at::Tensor& lengths,
             const at::Tensor& w_f, const at::Tensor& b_f, const at::Tensor& w_h, const at::Tensor& b_h,
             const std::optional<at::Tensor>& w_g, const std::optional<at::Tensor>& b_g, const at::Tensor& y,
             const at::Tensor& c, const at::Tensor& h_tilde, const at::Tensor& g, const std::string& measure,
             const std::vector<double>& params);
}  // namespace hippo_cuda

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() =
      "hippo_rs CUDA kernels: the GBT scan/step and their adjoints for legs, legt, lmu, lagt; the HiPPO-RNN layer";
  m.def("gbt_scan", &hippo_cuda::gbt_scan, "f (L, R), c0 (R, N), coef (L, 3) | (L, R, 3) -> (L, R, N) | (R, N)",
        py::arg("f"), py::arg("c0"), py::arg("coef"), py::arg("measure"), py::arg("params"), py::arg("return_all"));
  m.def("gbt_scan_backward", &hippo_cuda::gbt_scan_backward, "adjoint scan -> (grad_f (L, R), grad_c0 (R, N))",
        py::arg("grad"), py::arg("coef"), py::arg("measure"), py::arg("params"), py::arg("return_all"),
        py::arg("N"));
  m.def("gbt_step", &hippo_cuda::gbt_step, "c (R, N), f (R,), coef (3,) | (R, 3) -> (R, N)", py::arg("c"),
        py::arg("f"), py::arg("coef"), py::arg("measure"), py::arg("params"));
  m.def("gbt_step_backward", &hippo_cuda::gbt_step_backward, "adjoint step -> (grad_c (R, N), grad_f (R,))",
        py::arg("grad"), py::arg("coef"), py::arg("measure"), py::arg("params"));
  m.def("rnn_forward", &hippo_cuda::rnn_forward,
        "the HiPPO-RNN layer over a sequence -> (y, h_n, c_n, c, h_tilde, g)", py::arg("x"), py::arg("h0"),
        py::arg("c0"), py::arg("coef"), py::arg("lengths"), py::arg("w_f"), py::arg("b_f"), py::arg("w_h"),
        py::arg("b_h"), py::arg("w_g"), py::arg("b_g"), py::arg("measure"), py::arg("params"));
  m.def("rnn_backward", &hippo_cuda::rnn_backward,
        "backpropagation through time -> gradients of (x, h0, c0, w_f, b_f, w_h, b_h, w_g, b_g)",
        py::arg("grad_y"), py::arg("grad_h_n"), py::arg("grad_c_n"), py::arg("x"), py::arg("h0"), py::arg("c0"),
        py::arg("coef"), py::arg("lengths"), py::arg("w_f"), py::arg("b_f"), py::arg("w_h"), py::arg("b_h"),
        py::arg("w_g"), py::arg("b_g"), py::arg("y"), py::arg("c"), py::arg("h_tilde"), py::arg("g"),
        py::arg("measure"), py::arg("params"));
}
