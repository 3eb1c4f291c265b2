// Dequantize-multiply kernels. Both kernels decode weights in "units" of 8 values of one block
// (two runs of 4 consecutive positions) straight from the row bytes, with loads no wider than
// the block's natural alignment, so GGUF rows of 18/20/34-byte blocks are read in place.
#include "engine/kernels/cuda/quant_matmul.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include "engine/kernels/cuda/device_math.cuh"
#include "engine/quant/blocks.h"

namespace lorad::cuda {
namespace {

using internal::FromFloat;
using internal::Load4;
using internal::WarpSum;
using quant::kNF4Codebook;

__constant__ float kNF4Lut[16] = {
    kNF4Codebook[0],  kNF4Codebook[1],  kNF4Codebook[2],  kNF4Codebook[3],
    kNF4Codebook[4],  kNF4Codebook[5],  kNF4Codebook[6],  kNF4Codebook[7],
    kNF4Codebook[8],  kNF4Codebook[9],  kNF4Codebook[10], kNF4Codebook[11],
    kNF4Codebook[12], kNF4Codebook[13], kNF4Codebook[14], kNF4Codebook[15],
};

// 8 decoded values of one block: value i = q[i] * d + mn, at block positions Elem0(k) + i
// (i < 4) and Elem1(k) + i - 4 (i >= 4).
struct Unit {
  float q[8];
  float d;
  float mn;
};

__device__ __forceinline__ uint32_t Ld16(const uint8_t* p) {
  return *reinterpret_cast<const uint16_t*>(p);
}
__device__ __forceinline__ uint32_t Ld32(const uint8_t* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}
__device__ __forceinline__ float HalfBits(uint32_t bits) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(bits & 0xffffu)));
}
// Exact (float)q - offset for 0 <= q < 2^16, without an int->float conversion instruction.
__device__ __forceinline__ float IntToFloat(uint32_t q, float offset) {
  return __uint_as_float(0x4B000000u | q) - (8388608.0f + offset);
}

struct FmtQ4_0 {  // 18 bytes: fp16 d, 16 bytes; byte j: element j (low), j + 16 (high)
  static constexpr int kElems = 32, kBytes = 18, kUnits = 4, kAlign = 2;
  static constexpr bool kHasMin = false;
  __device__ static int Elem0(int k) { return 4 * k; }
  __device__ static int Elem1(int k) { return 16 + 4 * k; }
  __device__ static void Decode(const uint8_t* blk, int k, const float*, Unit* u) {
    u->d = HalfBits(Ld16(blk));
    u->mn = 0.0f;
    const uint32_t w = Ld16(blk + 2 + 4 * k) | (Ld16(blk + 4 + 4 * k) << 16);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      u->q[i] = IntToFloat((w >> (8 * i)) & 0xfu, 8.0f);
      u->q[4 + i] = IntToFloat((w >> (8 * i + 4)) & 0xfu, 8.0f);
    }
  }
};

struct FmtQ4_1 {  // 20 bytes: fp16 d, fp16 m, 16 bytes in Q4_0's nibble order
  static constexpr int kElems = 32, kBytes = 20, kUnits = 4, kAlign = 4;
  static constexpr bool kHasMin = true;
  __device__ static int Elem0(int k) { return 4 * k; }
  __device__ static int Elem1(int k) { return 16 + 4 * k; }
  __device__ static void Decode(const uint8_t* blk, int k, const float*, Unit* u) {
    const uint32_t dm = Ld32(blk);
    u->d = HalfBits(dm);
    u->mn = HalfBits(dm >> 16);
    const uint32_t w = Ld32(blk + 4 + 4 * k);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      u->q[i] = IntToFloat((w >> (8 * i)) & 0xfu, 0.0f);
      u->q[4 + i] = IntToFloat((w >> (8 * i + 4)) & 0xfu, 0.0f);
    }
  }
};

struct FmtQ8_0 {  // 34 bytes: fp16 d, 32 int8
  static constexpr int kElems = 32, kBytes = 34, kUnits = 4, kAlign = 2;
  static constexpr bool kHasMin = false;
  __device__ static int Elem0(int k) { return 8 * k; }
  __device__ static int Elem1(int k) { return 8 * k + 4; }
  __device__ static void Decode(const uint8_t* blk, int k, const float*, Unit* u) {
    u->d = HalfBits(Ld16(blk));
    u->mn = 0.0f;
    const uint8_t* qs = blk + 2 + 8 * k;
    const uint32_t w0 = Ld16(qs) | (Ld16(qs + 2) << 16);
    const uint32_t w1 = Ld16(qs + 4) | (Ld16(qs + 6) << 16);
#pragma unroll
    for (int i = 0; i < 4; ++i) {  // int8 b -> (b ^ 0x80) = b + 128
      u->q[i] = IntToFloat(((w0 >> (8 * i)) & 0xffu) ^ 0x80u, 128.0f);
      u->q[4 + i] = IntToFloat(((w1 >> (8 * i)) & 0xffu) ^ 0x80u, 128.0f);
    }
  }
};

struct FmtNF4 {  // 36 bytes: fp32 absmax, 32 bytes; byte j: element 2j (high), 2j + 1 (low)
  static constexpr int kElems = 64, kBytes = 36, kUnits = 8, kAlign = 4;
  static constexpr bool kHasMin = false;
  __device__ static int Elem0(int k) { return 8 * k; }
  __device__ static int Elem1(int k) { return 8 * k + 4; }
  __device__ static void Decode(const uint8_t* blk, int k, const float* lut, Unit* u) {
    u->d = __uint_as_float(Ld32(blk));
    u->mn = 0.0f;
    const uint32_t w = Ld32(blk + 4 + 4 * k);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      u->q[2 * j] = lut[(w >> (8 * j + 4)) & 0xfu];
      u->q[2 * j + 1] = lut[(w >> (8 * j)) & 0xfu];
    }
  }
};

// ---- matrix-vector (decode): one warp per weight row, lanes over consecutive units ----------

constexpr int kMvWarps = 8;

template <typename T, typename F, int kM>
__global__ void __launch_bounds__(kMvWarps * 32)
    MatvecKernel(const uint8_t* __restrict__ w, int64_t row_bytes, int rows, int cols,
                 const T* __restrict__ x, int64_t ldx, int m, T* __restrict__ y, int64_t ldy) {
  __shared__ float lut[16];
  if (threadIdx.x < 16) lut[threadIdx.x] = kNF4Lut[threadIdx.x];
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = blockIdx.x * kMvWarps + warp;
  if (row >= rows) return;
  const uint8_t* wrow = w + static_cast<int64_t>(row) * row_bytes;
  const int units = cols / 8;
  float acc[kM];
#pragma unroll
  for (int i = 0; i < kM; ++i) acc[i] = 0.0f;
#pragma unroll 4
  for (int u = lane; u < units; u += 32) {
    const int blk = u / F::kUnits, k = u % F::kUnits;
    Unit q;
    F::Decode(wrow + static_cast<int64_t>(blk) * F::kBytes, k, lut, &q);
    const int e0 = blk * F::kElems + F::Elem0(k);
    const int e1 = blk * F::kElems + F::Elem1(k);
#pragma unroll
    for (int i = 0; i < kM; ++i) {
      // Rows past m repeat row m - 1 (no divergence); their sums are never stored.
      const T* xr = x + static_cast<int64_t>(min(i, m - 1)) * ldx;
      float xa[4], xb[4];
      Load4(xr + e0, xa);
      Load4(xr + e1, xb);
      float s = 0.0f;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s = fmaf(q.q[e], xa[e], s);
        s = fmaf(q.q[4 + e], xb[e], s);
      }
      acc[i] = fmaf(q.d, s, acc[i]);
      if constexpr (F::kHasMin) {  // Q4_1: + m * sum(x)
        const float sx = (xa[0] + xa[1]) + (xa[2] + xa[3]) + (xb[0] + xb[1]) + (xb[2] + xb[3]);
        acc[i] = fmaf(q.mn, sx, acc[i]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kM; ++i) {
    const float s = WarpSum(acc[i]);
    if (lane == 0 && i < m) y[i * ldy + row] = FromFloat<T>(s);
  }
}

// ---- tiled matrix-matrix (prefill): 64x64 output tile, K step 64, WMMA 16x16x16 -------------

constexpr int kTile = 64;           // m, n and k extent of a block tile
constexpr int kLdT = kTile + 8;     // smem row pitch of the x and W tiles (elements)
constexpr int kLdC = kTile + 4;     // smem row pitch of the fp32 output tile
constexpr int kTiledThreads = 256;  // 8 warps: 4 along m x 2 along n, 16x32 outputs each

template <typename T, typename F>
__global__ void __launch_bounds__(kTiledThreads)
    TiledKernel(const uint8_t* __restrict__ w, int64_t row_bytes, int rows, int cols,
                const T* __restrict__ x, int64_t ldx, int m, T* __restrict__ y, int64_t ldy) {
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) T xs[kTile * kLdT];
  __shared__ __align__(32) T ws[kTile * kLdT];
  __shared__ __align__(32) float cs[kTile * kLdC];
  __shared__ float lut[16];
  const int tid = threadIdx.x;
  if (tid < 16) lut[tid] = kNF4Lut[tid];
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int warp = tid / 32, wm = warp / 2, wn = (warp % 2) * 2;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2];
  wmma::fill_fragment(acc[0], 0.0f);
  wmma::fill_fragment(acc[1], 0.0f);
  const int units_per_row = cols / 8;
  const T zero = FromFloat<T>(0.0f);
  __syncthreads();  // lut

  for (int k0 = 0; k0 < cols; k0 += kTile) {
    // x tile [64 m][64 k]: 1024 runs of 4 values, 4 per thread; zero outside [m, cols).
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int idx = tid + i * kTiledThreads;
      const int r = idx / 16, c = (idx % 16) * 4;
      uint2 val = make_uint2(0u, 0u);
      if (m0 + r < m && k0 + c < cols) {
        val = __ldg(reinterpret_cast<const uint2*>(x + (m0 + r) * ldx + k0 + c));
      }
      *reinterpret_cast<uint2*>(&xs[r * kLdT + c]) = val;
    }
    // W tile [64 n][64 k]: 512 units of 8 values, 2 per thread. The step is block-aligned
    // (32 and 64 divide 64), so a unit's positions always fall inside [k0, k0 + 64).
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int idx = tid + i * kTiledThreads;
      const int r = idx / 8;
      const int gu = k0 / 8 + idx % 8;
      const int blk = gu / F::kUnits, k = gu % F::kUnits;
      const int base = blk * F::kElems - k0;
      T* dst = &ws[r * kLdT];
      if (n0 + r < rows && gu < units_per_row) {
        Unit q;
        F::Decode(w + (n0 + r) * row_bytes + static_cast<int64_t>(blk) * F::kBytes, k, lut, &q);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          dst[base + F::Elem0(k) + e] = FromFloat<T>(fmaf(q.q[e], q.d, q.mn));
          dst[base + F::Elem1(k) + e] = FromFloat<T>(fmaf(q.q[4 + e], q.d, q.mn));
        }
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          dst[base + F::Elem0(k) + e] = zero;
          dst[base + F::Elem1(k) + e] = zero;
        }
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTile; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
      wmma::load_matrix_sync(a, xs + wm * 16 * kLdT + kk, kLdT);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        // B[k][n] = W[n][k]: the W tile read column-major.
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
        wmma::load_matrix_sync(b, ws + (wn + j) * 16 * kLdT + kk, kLdT);
        wmma::mma_sync(acc[j], a, b, acc[j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    wmma::store_matrix_sync(cs + wm * 16 * kLdC + (wn + j) * 16, acc[j], kLdC, wmma::mem_row_major);
  }
  __syncthreads();
  for (int idx = tid; idx < kTile * kTile; idx += kTiledThreads) {
    const int r = idx / kTile, c = idx % kTile;
    if (m0 + r < m && n0 + c < rows) y[(m0 + r) * ldy + n0 + c] = FromFloat<T>(cs[r * kLdC + c]);
  }
}

// ---- host dispatch ---------------------------------------------------------------------------

struct Args {
  const uint8_t* w;
  int64_t row_bytes;
  int rows, cols;
  const void* x;
  int64_t ldx;
  int64_t m;
  void* y;
  int64_t ldy;
  cudaStream_t stream;
};

template <typename T, typename F, int kM>
cudaError_t LaunchMatvec(const Args& a, const T* x, T* y, int m) {
  const unsigned blocks = static_cast<unsigned>((a.rows + kMvWarps - 1) / kMvWarps);
  MatvecKernel<T, F, kM><<<blocks, kMvWarps * 32, 0, a.stream>>>(a.w, a.row_bytes, a.rows, a.cols,
                                                                 x, a.ldx, m, y, a.ldy);
  return cudaGetLastError();
}

template <typename T, typename F>
cudaError_t RunTyped(const Args& a, QuantMatmulAlgo algo) {
  if (a.rows == 0 || a.m == 0) return cudaSuccess;
  const T* x = static_cast<const T*>(a.x);
  T* y = static_cast<T*>(a.y);
  if (algo == QuantMatmulAlgo::kAuto) {
    algo = a.m <= kQuantMatvecMaxM ? QuantMatmulAlgo::kMatvec : QuantMatmulAlgo::kTiled;
  }
  if (algo == QuantMatmulAlgo::kTiled) {
    const dim3 grid(static_cast<unsigned>((a.rows + kTile - 1) / kTile),
                    static_cast<unsigned>((a.m + kTile - 1) / kTile));
    TiledKernel<T, F><<<grid, kTiledThreads, 0, a.stream>>>(a.w, a.row_bytes, a.rows, a.cols, x,
                                                            a.ldx, static_cast<int>(a.m), y, a.ldy);
    return cudaGetLastError();
  }
  for (int64_t i0 = 0; i0 < a.m; i0 += kQuantMatvecMaxM) {
    const int mc = static_cast<int>(a.m - i0 < kQuantMatvecMaxM ? a.m - i0 : kQuantMatvecMaxM);
    const T* xc = x + i0 * a.ldx;
    T* yc = y + i0 * a.ldy;
    cudaError_t err;
    if (mc == 1) {
      err = LaunchMatvec<T, F, 1>(a, xc, yc, mc);
    } else if (mc == 2) {
      err = LaunchMatvec<T, F, 2>(a, xc, yc, mc);
    } else if (mc <= 4) {
      err = LaunchMatvec<T, F, 4>(a, xc, yc, mc);
    } else {
      err = LaunchMatvec<T, F, 8>(a, xc, yc, mc);
    }
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <typename F>
cudaError_t RunFormat(DType act_dtype, const Args& a, QuantMatmulAlgo algo) {
  if (a.cols % F::kElems != 0 ||
      a.row_bytes < static_cast<int64_t>(a.cols / F::kElems) * F::kBytes ||
      a.row_bytes % F::kAlign != 0 || reinterpret_cast<uintptr_t>(a.w) % F::kAlign != 0) {
    return cudaErrorInvalidValue;
  }
  if (act_dtype == DType::kF16) return RunTyped<__half, F>(a, algo);
  return RunTyped<__nv_bfloat16, F>(a, algo);
}

}  // namespace

cudaError_t QuantMatmul(DType act_dtype, DType weight_dtype, const void* w, int64_t row_bytes,
                        int64_t rows, int64_t cols, const void* x, int64_t ldx, int64_t m, void* y,
                        int64_t ldy, cudaStream_t stream, QuantMatmulAlgo algo) {
  if (act_dtype != DType::kF16 && act_dtype != DType::kBF16) return cudaErrorInvalidValue;
  if (rows < 0 || cols < 0 || m < 0 || rows > INT32_MAX || cols > INT32_MAX || ldx < cols ||
      ldx % 4 != 0 || ldy < rows || row_bytes < 0 || (m + kTile - 1) / kTile > 65535) {
    return cudaErrorInvalidValue;
  }
  if (reinterpret_cast<uintptr_t>(x) % 8 != 0) return cudaErrorInvalidValue;
  if (algo != QuantMatmulAlgo::kAuto && algo != QuantMatmulAlgo::kMatvec &&
      algo != QuantMatmulAlgo::kTiled) {
    return cudaErrorInvalidValue;
  }
  const Args a{static_cast<const uint8_t*>(w),
               row_bytes,
               static_cast<int>(rows),
               static_cast<int>(cols),
               x,
               ldx,
               m,
               y,
               ldy,
               stream};
  cudaError_t err = cudaErrorInvalidValue;
  switch (weight_dtype) {
    case DType::kNF4:
      err = RunFormat<FmtNF4>(act_dtype, a, algo);
      break;
    case DType::kQ4_0:
      err = RunFormat<FmtQ4_0>(act_dtype, a, algo);
      break;
    case DType::kQ4_1:
      err = RunFormat<FmtQ4_1>(act_dtype, a, algo);
      break;
    case DType::kQ8_0:
      err = RunFormat<FmtQ8_0>(act_dtype, a, algo);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return err;
}

}  // namespace lorad::cuda
