// The HiPPO-RNN loops of cuda/hippo_rnn.cu on the CPU, for tests/test_cuda_emulated.py: ATen's CPU
// tensors stand in for the device's (the cuBLAS products become ATen's CPU products) and the kernels
// of hippo_scan.cu and hippo_rnn_kernels.cuh run under the host emulation (emu.h). Built with
// torch.utils.cpp_extension; HIPPO_RNN_CHUNK_ROWS is set small by the build so that the backward
// pass runs several chunks of steps.
#include <torch/extension.h>

#define HIPPO_CUDA_EMULATION
#include "../../cuda/hippo_scan.cu"

namespace hippo_cuda {
// The measure argument (the host side of hippo_scan.cu, not compiled under the emulation, parses it
// with the same names and parameter order).
MeasureArgs parse_measure(const std::string& measure, const std::vector<double>& params) {
  if (measure == "legs") return {kLegS, 1.0, 1.0};
  if (measure == "legt") return {kLegT, params.at(0), 1.0};
  if (measure == "lmu") return {kLmu, params.at(0), 1.0};
  TORCH_CHECK_VALUE(measure == "lagt", "measure: no CUDA kernel for '", measure, "'");
  return {kLagT, 1.0, params.at(0)};
}
}  // namespace hippo_cuda

#include "../../cuda/hippo_rnn.cu"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rnn_forward", &hippo_cuda::rnn_forward);
  m.def("rnn_backward", &hippo_cuda::rnn_backward);
}
