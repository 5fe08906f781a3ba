// Shared by the compiled sources: run an FFI handler's body for the buffers' element type.
#pragma once

#include <string>

#include "xla/ffi/api/ffi.h"

namespace bntt_jax {

// Runs body(F{}) with F = float or double, the element type of the buffers; any other type is
// an InvalidArgument error naming the target.
template <typename Body>
xla::ffi::Error ByDtype(xla::ffi::DataType dtype, const char* target, Body body) {
  switch (dtype) {
    case xla::ffi::F32:
      body(float{});
      return xla::ffi::Error::Success();
    case xla::ffi::F64:
      body(double{});
      return xla::ffi::Error::Success();
    default:
      return xla::ffi::Error::InvalidArgument(std::string(target) +
                                              ": only float32 and float64 are supported");
  }
}

}  // namespace bntt_jax
