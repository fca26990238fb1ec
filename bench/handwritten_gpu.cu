// The GPU anchor of issue 15: plain hand-written tiled CUDA kernels for the Gaussian kernel sum
// (D = 3, b of dimension 1 or 3) and the log-sum-exp of -g |x_i - y_j|^2, float32, with the
// fast exponential (ex2.approx of the argument times log2(e)), one thread per row, the inner
// points through shared memory. Times the kernels alone (CUDA events, data already on the GPU).
//   nvcc -O3 -arch=sm_90 -o /tmp/hw bench/handwritten_gpu.cu && /tmp/hw 1000000
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

constexpr int kBlock = 256;

__device__ __forceinline__ float ex2(float y) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(y));
  return r;
}

template <int DB>
__global__ void gauss(const float* x, const float* y, const float* b, float g, int n, int m, float* out) {
  __shared__ float ty[kBlock][3 + DB];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float xi[3] = {0, 0, 0}, acc[DB] = {};
  if (i < n)
    for (int k = 0; k < 3; ++k) xi[k] = x[i * 3 + k];
  const float c = -g * 1.4426950408889634f;
  for (int j0 = 0; j0 < m; j0 += kBlock) {
    const int j = j0 + threadIdx.x;
    __syncthreads();
    if (j < m) {
      for (int k = 0; k < 3; ++k) ty[threadIdx.x][k] = y[j * 3 + k];
      for (int k = 0; k < DB; ++k) ty[threadIdx.x][3 + k] = b[j * DB + k];
    }
    __syncthreads();
    const int jn = min(kBlock, m - j0);
#pragma unroll 8
    for (int jj = 0; jj < jn; ++jj) {
      const float d0 = xi[0] - ty[jj][0], d1 = xi[1] - ty[jj][1], d2 = xi[2] - ty[jj][2];
      const float e = ex2(c * (d0 * d0 + d1 * d1 + d2 * d2));
      for (int k = 0; k < DB; ++k) acc[k] += e * ty[jj][3 + k];
    }
  }
  if (i < n)
    for (int k = 0; k < DB; ++k) out[i * DB + k] = acc[k];
}

__global__ void lse(const float* x, const float* y, float g, int n, int m, float* out) {
  __shared__ float ty[kBlock][4];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float xi[3] = {0, 0, 0};
  if (i < n)
    for (int k = 0; k < 3; ++k) xi[k] = x[i * 3 + k];
  const float c = -g * 1.4426950408889634f;  // the running maximum and terms in log2 units
  float mx = -INFINITY, s = 0.f;
  for (int j0 = 0; j0 < m; j0 += kBlock) {
    const int j = j0 + threadIdx.x;
    __syncthreads();
    if (j < m)
      for (int k = 0; k < 3; ++k) ty[threadIdx.x][k] = y[j * 3 + k];
    __syncthreads();
    const int jn = min(kBlock, m - j0);
#pragma unroll 8
    for (int jj = 0; jj < jn; ++jj) {
      const float d0 = xi[0] - ty[jj][0], d1 = xi[1] - ty[jj][1], d2 = xi[2] - ty[jj][2];
      const float f = c * (d0 * d0 + d1 * d1 + d2 * d2);
      if (f > mx) {
        s = s * ex2(mx - f) + 1.f;
        mx = f;
      } else {
        s += ex2(f - mx);
      }
    }
  }
  if (i < n) out[i] = (mx + log2f(s)) * 0.6931471805599453f;
}

template <typename F>
float time_ms(F f, int reps) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  f();
  cudaEventRecord(a);
  for (int r = 0; r < reps; ++r) f();
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  return ms / reps;
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1000000, m = n;
  std::vector<float> hx(3 * n), hy(3 * m), hb(3 * m);
  srand(1);
  for (auto* v : {&hx, &hy, &hb})
    for (auto& z : *v) z = rand() / (float)RAND_MAX;
  float *x, *y, *b, *o;
  cudaMalloc(&x, hx.size() * 4);
  cudaMalloc(&y, hy.size() * 4);
  cudaMalloc(&b, hb.size() * 4);
  cudaMalloc(&o, 3 * n * 4);
  cudaMemcpy(x, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(y, hy.data(), hy.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(b, hb.data(), hb.size() * 4, cudaMemcpyHostToDevice);
  const int grid = (n + kBlock - 1) / kBlock, reps = n >= 1000000 ? 3 : 20;
  const float g = 2.f;
  printf("handwritten N=M=%d gauss_b1_ms %.3f\n", n, time_ms([&] { gauss<1><<<grid, kBlock>>>(x, y, b, g, n, m, o); }, reps));
  printf("handwritten N=M=%d gauss_b3_ms %.3f\n", n, time_ms([&] { gauss<3><<<grid, kBlock>>>(x, y, b, g, n, m, o); }, reps));
  printf("handwritten N=M=%d lse_ms %.3f\n", n, time_ms([&] { lse<<<grid, kBlock>>>(x, y, g, n, m, o); }, reps));
  cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) {
    printf("CUDA error: %s\n", cudaGetErrorString(err));
    return 1;
  }
  return 0;
}
