// Internal to the CUDA backend: the device state behind loom/backend/cuda/cuda.h (stream, allocator, pinned
// staging buffer, the cuBLAS handle loaded on first use) that the backend's entries use.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>

#include "loom/core/error.h"

namespace loom::cuda {

// Throws loom::Error "CUDA <what>: <error string>" for a failed runtime call.
void check(cudaError_t e, const char* what);
#define LOOM_CUDA_CHECK(call) ::loom::cuda::check((call), #call)

int current_index();  // the device chosen by device()

void* device_alloc(size_t nbytes);
void device_free(void* p, size_t nbytes);

// Copies between host memory and the device through a pinned staging buffer; both wait for completion.
void upload(void* dst_device, const void* src_host, size_t nbytes);
void download(void* dst_host, const void* src_device, size_t nbytes);

// cuBLAS, loaded with dlopen on first use (so the ~600 test processes that never touch a GPU do not map it).
struct Cublas {
  cublasHandle_t handle = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasDgemm_v2) dgemm = nullptr;
  // cublas_api.h overloads cublasGemmEx (a cudaDataType compute-type wrapper), so the type is spelled out.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
};
Cublas& cublas();
void check_cublas(int status, const char* what);

// A device int the index and target checks set on a bad value: reset() zeroes it, raised() reads it back (syncs).
int* error_flag_reset();
bool error_flag_raised();

}  // namespace loom::cuda
