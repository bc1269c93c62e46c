// oneDNN (the CPU engine PyTorch uses) kernels for cmkg's tfjs backend, as a
// synchronous N-API addon: convolutions (forward, data and weight gradients)
// on NHWC activations with HWIO filters, and training-mode batch norm
// (forward with batch statistics, backward) over channel-last data; plus relu
// and its gradient (one pass each instead of tfjs's Relu, and Step then
// Multiply) and max pooling and its gradient (tfjs's cpu MaxPoolGrad took 35 s
// on ResNet-18's stem) as plain vectorised loops.
//
// Every function takes Float32Arrays (inputs and preallocated outputs, no
// copies) and an Int32Array of geometry; it throws a JS Error on bad input or
// when oneDNN rejects the problem (the caller then falls back).
#include <node_api.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

engine& cpu() {
  static engine e(engine::kind::cpu, 0);
  return e;
}
stream& queue() {
  static stream s(cpu());
  return s;
}

struct Fail {
  std::string message;
};

// A typed array's element type, length and data. Callers build their error message only when it
// fails (they run on every kernel call).
struct Typed {
  napi_typedarray_type type;
  size_t length;
  void* data;
};

bool typed(napi_env env, napi_value v, Typed& t) {
  napi_value buffer;
  size_t offset;
  return napi_get_typedarray_info(env, v, &t.type, &t.length, &t.data, &buffer, &offset) == napi_ok;
}

float* floats(napi_env env, napi_value v, size_t want, const char* name) {
  Typed t;
  if (!typed(env, v, t) || t.type != napi_float32_array) throw Fail{std::string(name) + ": expected a Float32Array"};
  if (want != 0 && t.length != want)
    throw Fail{std::string(name) + ": expected " + std::to_string(want) + " floats, got " + std::to_string(t.length)};
  return static_cast<float*>(t.data);
}

size_t lengthOf(napi_env env, napi_value v, const char* name) {
  Typed t;
  if (!typed(env, v, t)) throw Fail{std::string(name) + ": expected a typed array"};
  return t.length;
}

std::vector<int64_t> ints(napi_env env, napi_value v, size_t want) {
  Typed t;
  if (!typed(env, v, t) || t.type != napi_int32_array || t.length != want)
    throw Fail{"geometry: expected an Int32Array of " + std::to_string(want)};
  const int32_t* p = static_cast<int32_t*>(t.data);
  return std::vector<int64_t>(p, p + t.length);
}

double number(napi_env env, napi_value v) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) throw Fail{"expected a number"};
  return d;
}

std::vector<napi_value> args(napi_env env, napi_callback_info info, size_t n) {
  std::vector<napi_value> a(n);
  size_t got = n;
  napi_get_cb_info(env, info, &got, a.data(), nullptr, nullptr);
  if (got != n) throw Fail{"expected " + std::to_string(n) + " arguments, got " + std::to_string(got)};
  return a;
}

// Geometry: N H W C  OH OW OC  KH KW  SH SW  DH DW  PT PL PB PR (tfjs conventions, dilation 1 = none).
struct Conv {
  memory::dim n, h, w, c, oh, ow, oc, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  explicit Conv(const std::vector<int64_t>& g)
      : n(g[0]), h(g[1]), w(g[2]), c(g[3]), oh(g[4]), ow(g[5]), oc(g[6]), kh(g[7]), kw(g[8]), sh(g[9]),
        sw(g[10]), dh(g[11]), dw(g[12]), pt(g[13]), pl(g[14]), pb(g[15]), pr(g[16]) {}
  memory::desc src() const { return {{n, c, h, w}, dt::f32, tag::nhwc}; }
  memory::desc dst() const { return {{n, oc, oh, ow}, dt::f32, tag::nhwc}; }
  memory::desc hwio() const { return {{oc, c, kh, kw}, dt::f32, tag::hwio}; }
  memory::desc any() const { return {{oc, c, kh, kw}, dt::f32, tag::any}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims dilation() const { return {dh - 1, dw - 1}; }  // oneDNN counts the gaps
  memory::dims left() const { return {pt, pl}; }
  memory::dims right() const { return {pb, pr}; }
  enum Array { Src, Dst, Weights };
  size_t size(Array a) const { return a == Src ? n * h * w * c : a == Dst ? n * oh * ow * oc : kh * kw * c * oc; }
  convolution_forward::primitive_desc forward() const {
    convolution_forward::desc d(prop_kind::forward_training, algorithm::convolution_direct, src(), any(), dst(),
                                strides(), dilation(), left(), right());
    return convolution_forward::primitive_desc(d, cpu());
  }
};

// Weights in the layout `want`, reordered from the user's HWIO array when it differs.
memory weightsIn(const memory::desc& want, const memory::desc& user, float* data) {
  memory u(user, cpu(), data);
  if (want == user) return u;
  memory m(want, cpu());
  reorder(u, m).execute(queue(), u, m);
  return m;
}

// Every conv entry point takes (in0, in1, out, geometry): three float arrays, each checked against the
// size the geometry gives its role, e.g. {{Conv::Src, "x"}, {Conv::Weights, "filter"}, {Conv::Dst, "y"}}.
struct ConvCall {
  Conv g;
  float* in0;
  float* in1;
  float* out;
};
ConvCall convCall(napi_env env, napi_callback_info info, std::pair<Conv::Array, const char*> in0,
                  std::pair<Conv::Array, const char*> in1, std::pair<Conv::Array, const char*> out) {
  auto a = args(env, info, 4);
  Conv g(ints(env, a[3], 17));
  return {g, floats(env, a[0], g.size(in0.first), in0.second), floats(env, a[1], g.size(in1.first), in1.second),
          floats(env, a[2], g.size(out.first), out.second)};
}

napi_value convForward(napi_env env, napi_callback_info info) {
  auto [g, x, w, y] = convCall(env, info, {Conv::Src, "x"}, {Conv::Weights, "filter"}, {Conv::Dst, "y"});
  auto pd = g.forward();
  memory src(g.src(), cpu(), x), dst(g.dst(), cpu(), y);
  memory wei = weightsIn(pd.weights_desc(), g.hwio(), w);
  convolution_forward(pd).execute(queue(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
  queue().wait();
  return nullptr;
}

napi_value convBackwardData(napi_env env, napi_callback_info info) {
  auto [g, dy, w, dx] = convCall(env, info, {Conv::Dst, "dy"}, {Conv::Weights, "filter"}, {Conv::Src, "dx"});
  convolution_backward_data::desc d(algorithm::convolution_direct, g.src(), g.any(), g.dst(), g.strides(),
                                    g.dilation(), g.left(), g.right());
  convolution_backward_data::primitive_desc pd(d, cpu(), g.forward());
  memory diffDst(g.dst(), cpu(), dy), diffSrc(g.src(), cpu(), dx);
  memory wei = weightsIn(pd.weights_desc(), g.hwio(), w);
  convolution_backward_data(pd).execute(
      queue(), {{DNNL_ARG_DIFF_DST, diffDst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, diffSrc}});
  queue().wait();
  return nullptr;
}

napi_value convBackwardWeights(napi_env env, napi_callback_info info) {
  auto [g, x, dy, dw] = convCall(env, info, {Conv::Src, "x"}, {Conv::Dst, "dy"}, {Conv::Weights, "dw"});
  convolution_backward_weights::desc d(algorithm::convolution_direct, g.src(), g.any(), g.dst(), g.strides(),
                                       g.dilation(), g.left(), g.right());
  convolution_backward_weights::primitive_desc pd(d, cpu(), g.forward());
  memory src(g.src(), cpu(), x), diffDst(g.dst(), cpu(), dy), user(g.hwio(), cpu(), dw);
  const bool direct = pd.diff_weights_desc() == g.hwio();
  memory diffWei = direct ? user : memory(pd.diff_weights_desc(), cpu());
  convolution_backward_weights(pd).execute(
      queue(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diffDst}, {DNNL_ARG_DIFF_WEIGHTS, diffWei}});
  if (!direct) reorder(diffWei, user).execute(queue(), diffWei, user);
  queue().wait();
  return nullptr;
}

// Batch norm over channel-last data [N, H, W, C] (oneDNN's NHWC; other ranks come as [rows, 1, 1, C]:
// its kernels split the work over N and the spatial positions, so the real shape is faster).
struct Norm {
  memory::dim n, h, w, c;
  float eps;
  memory::desc data() const { return {{n, c, h, w}, dt::f32, tag::nhwc}; }
  memory::desc vec() const { return {{c}, dt::f32, tag::x}; }
  // The caller's arrays as oneDNN memory, each checked against its size: [N, H, W, C] data or a [C] vector.
  memory data(napi_env env, napi_value v, const char* name) const {
    return {data(), cpu(), floats(env, v, n * h * w * c, name)};
  }
  memory vec(napi_env env, napi_value v, const char* name) const { return {vec(), cpu(), floats(env, v, c, name)}; }
  static normalization_flags flags() { return normalization_flags::use_scale | normalization_flags::use_shift; }
  batch_normalization_forward::primitive_desc forward() const {
    batch_normalization_forward::desc d(prop_kind::forward_training, data(), eps, flags());
    return batch_normalization_forward::primitive_desc(d, cpu());
  }
};

Norm norm(napi_env env, napi_value geometry, napi_value eps) {
  auto g = ints(env, geometry, 4);
  return Norm{g[0], g[1], g[2], g[3], static_cast<float>(number(env, eps))};
}

// (x, gamma, beta, y, mean, variance, [N, H, W, C], eps)
napi_value batchNormForward(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 8);
  Norm g = norm(env, a[6], a[7]);
  memory src = g.data(env, a[0], "x"), scale = g.vec(env, a[1], "gamma"), shift = g.vec(env, a[2], "beta"),
         dst = g.data(env, a[3], "y"), mean = g.vec(env, a[4], "mean"), variance = g.vec(env, a[5], "variance");
  batch_normalization_forward(g.forward())
      .execute(queue(), {{DNNL_ARG_SRC, src},
                         {DNNL_ARG_SCALE, scale},
                         {DNNL_ARG_SHIFT, shift},
                         {DNNL_ARG_DST, dst},
                         {DNNL_ARG_MEAN, mean},
                         {DNNL_ARG_VARIANCE, variance}});
  queue().wait();
  return nullptr;
}

// (x, gamma, dy, mean, variance, dx, dgamma, dbeta, [N, H, W, C], eps)
napi_value batchNormBackward(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 10);
  Norm g = norm(env, a[8], a[9]);
  memory src = g.data(env, a[0], "x"), scale = g.vec(env, a[1], "gamma"), diffDst = g.data(env, a[2], "dy"),
         mean = g.vec(env, a[3], "mean"), variance = g.vec(env, a[4], "variance"),
         diffSrc = g.data(env, a[5], "dx"), diffScale = g.vec(env, a[6], "dgamma"),
         diffShift = g.vec(env, a[7], "dbeta");
  batch_normalization_backward::desc d(prop_kind::backward, g.data(), g.data(), g.eps, Norm::flags());
  batch_normalization_backward::primitive_desc pd(d, cpu(), g.forward());
  // oneDNN 2.6 wants the shift among the arguments though the gradients do not depend on it.
  memory shift(g.vec(), cpu());
  batch_normalization_backward(pd).execute(queue(), {{DNNL_ARG_SRC, src},
                                                     {DNNL_ARG_SCALE, scale},
                                                     {DNNL_ARG_SHIFT, shift},
                                                     {DNNL_ARG_DIFF_DST, diffDst},
                                                     {DNNL_ARG_MEAN, mean},
                                                     {DNNL_ARG_VARIANCE, variance},
                                                     {DNNL_ARG_DIFF_SRC, diffSrc},
                                                     {DNNL_ARG_DIFF_SCALE, diffScale},
                                                     {DNNL_ARG_DIFF_SHIFT, diffShift}});
  queue().wait();
  return nullptr;
}

template <napi_value (*F)(napi_env, napi_callback_info)>
napi_value guarded(napi_env env, napi_callback_info info) {
  try {
    return F(env, info);
  } catch (const Fail& f) {
    napi_throw_error(env, "CMKG_DNNL_INPUT", f.message.c_str());
  } catch (const dnnl::error& e) {
    napi_throw_error(env, "CMKG_DNNL_UNSUPPORTED", e.what());
  } catch (const std::exception& e) {
    napi_throw_error(env, "CMKG_DNNL", e.what());
  }
  return nullptr;
}

napi_value version(napi_env env, napi_callback_info) {
  const dnnl_version_t* v = dnnl_version();
  std::string s = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  napi_value r;
  napi_create_string_utf8(env, s.c_str(), s.size(), &r);
  return r;
}

// Below this many elements an elementwise loop runs on one thread: a second one costs more than it
// saves (waking it, the barrier). Set by setParallelAbove (the bench measures where it pays).
long long kParallelAbove = 1 << 20;

// f(i) for i in [0, n): on every OpenMP thread from kParallelAbove elements, else on this one, and
// vectorised either way. Not `parallel for simd if (...)`: an if clause without a modifier applies
// to the simd construct too, so below the threshold the loop ran scalar, 3–50× slower (relu of
// 2^18 floats on one thread: 1.4 ms, against 27 µs vectorised). test/backend/elementwise.test.ts
// checks both paths bit for bit against onnxruntime and tfjs's cpu kernels.
template <typename F>
inline void forEach(long long n, F&& f) {
  if (n >= kParallelAbove) {
#pragma omp parallel for simd schedule(static)
    for (long long i = 0; i < n; i++) f(i);
  } else {
#pragma omp simd
    for (long long i = 0; i < n; i++) f(i);
  }
}

// y = relu(x) with tfjs's semantics (NaN stays NaN: a diverging run must stay visible).
napi_value relu(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 2);
  const size_t n = lengthOf(env, a[0], "input");
  const float* x = floats(env, a[0], n, "x");
  float* y = floats(env, a[1], n, "y");
  const long long count = static_cast<long long>(n);
  forEach(count, [&](long long i) { y[i] = (x[i] > 0.0f || std::isnan(x[i])) ? x[i] : 0.0f; });
  return nullptr;
}

// dx = dy * step(x) as tfjs's relu gradient computes it (step(NaN) = NaN).
napi_value reluBackward(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 3);
  const size_t n = lengthOf(env, a[1], "input");
  const float* dy = floats(env, a[0], n, "dy");
  const float* x = floats(env, a[1], n, "x");
  float* dx = floats(env, a[2], n, "dx");
  const long long count = static_cast<long long>(n);
  forEach(count, [&](long long i) {
    const float s = x[i] > 0.0f ? 1.0f : (std::isnan(x[i]) ? x[i] : 0.0f);
    dx[i] = dy[i] * s;
  });
  return nullptr;
}

// out = op(big, small) over float32, for the broadcast patterns a conv net's step is made of:
// `small` of the same length (pattern 0), one value (1), or a vector along the last axis (2).
// op: 0 add, 1 sub, 2 mul, 3 div, 4 squared difference ((x - y) * (x - y), rounded after the
// subtraction as onnxruntime's Sub then Mul); `bigFirst` 0 computes op(small, big). Plain IEEE
// float32 arithmetic (no contraction under -std=c++17), the same values as onnxruntime's and the
// JS loops' (a float64 +, −, × or ÷ of two float32 values rounds to the same float32).
template <typename F>
void broadcast(const float* big, const float* small, float* out, long long n, long long c, int pattern,
               bool bigFirst, F f) {
  if (pattern == 0) {
    if (bigFirst) {
      forEach(n, [&](long long i) { out[i] = f(big[i], small[i]); });
    } else {
      forEach(n, [&](long long i) { out[i] = f(small[i], big[i]); });
    }
  } else if (pattern == 1) {
    const float y = small[0];
    if (bigFirst) {
      forEach(n, [&](long long i) { out[i] = f(big[i], y); });
    } else {
      forEach(n, [&](long long i) { out[i] = f(y, big[i]); });
    }
  } else {
    const long long rows = n / c;
#pragma omp parallel for schedule(static) if (n >= kParallelAbove)
    for (long long r = 0; r < rows; r++) {
      const float* b = big + r * c;
      float* o = out + r * c;
      if (bigFirst) {
#pragma omp simd
        for (long long j = 0; j < c; j++) o[j] = f(b[j], small[j]);
      } else {
#pragma omp simd
        for (long long j = 0; j < c; j++) o[j] = f(small[j], b[j]);
      }
    }
  }
}

napi_value elementwiseBinary(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 6);
  const int op = static_cast<int>(number(env, a[0]));
  const int pattern = static_cast<int>(number(env, a[1]));
  const bool bigFirst = number(env, a[2]) != 0;
  const size_t n = lengthOf(env, a[3], "big");
  const float* big = floats(env, a[3], n, "big");
  const size_t m = lengthOf(env, a[4], "small");
  const float* small = floats(env, a[4], m, "small");
  float* out = floats(env, a[5], n, "out");
  if (pattern < 0 || pattern > 2) throw Fail{"binary: pattern must be 0, 1 or 2"};
  if ((pattern == 0 && m != n) || (pattern == 1 && m != 1) || (pattern == 2 && (m == 0 || n % m != 0)))
    throw Fail{"binary: operand lengths " + std::to_string(n) + " and " + std::to_string(m) +
               " do not fit the pattern"};
  const long long count = static_cast<long long>(n);
  const long long c = static_cast<long long>(m);
  switch (op) {
    case 0: broadcast(big, small, out, count, c, pattern, bigFirst, [](float x, float y) { return x + y; }); break;
    case 1: broadcast(big, small, out, count, c, pattern, bigFirst, [](float x, float y) { return x - y; }); break;
    case 2: broadcast(big, small, out, count, c, pattern, bigFirst, [](float x, float y) { return x * y; }); break;
    case 3: broadcast(big, small, out, count, c, pattern, bigFirst, [](float x, float y) { return x / y; }); break;
    case 4:
      broadcast(big, small, out, count, c, pattern, bigFirst, [](float x, float y) {
        const float d = x - y;
        return d * d;
      });
      break;
    default: throw Fail{"binary: unknown op " + std::to_string(op)};
  }
  return nullptr;
}

// out = op(x): 0 square (x * x), 1 neg, 2 sqrt, 3 rsqrt (1 / sqrt(x), each rounded to float32, as
// onnxruntime's Sqrt then Reciprocal).
napi_value elementwiseUnary(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 3);
  const int op = static_cast<int>(number(env, a[0]));
  const size_t n = lengthOf(env, a[1], "x");
  const float* x = floats(env, a[1], n, "x");
  float* y = floats(env, a[2], n, "y");
  const long long count = static_cast<long long>(n);
  switch (op) {
    case 0:
      forEach(count, [&](long long i) { y[i] = x[i] * x[i]; });
      break;
    case 1:
      forEach(count, [&](long long i) { y[i] = -x[i]; });
      break;
    case 2:
      forEach(count, [&](long long i) { y[i] = std::sqrt(x[i]); });
      break;
    case 3:
      forEach(count, [&](long long i) {
        const float s = std::sqrt(x[i]);
        y[i] = 1.0f / s;
      });
      break;
    default: throw Fail{"unary: unknown op " + std::to_string(op)};
  }
  return nullptr;
}

// Max pooling, NHWC, with tfjs's semantics: in-bounds window positions only, the first strictly
// greatest value wins (NaN never does), -Infinity when none. Geometry:
// N H W C  OH OW  KH KW  SH SW  PT PL.
struct Pool {
  long long n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl;
  explicit Pool(const std::vector<int64_t>& g)
      : n(g[0]), h(g[1]), w(g[2]), c(g[3]), oh(g[4]), ow(g[5]), kh(g[6]), kw(g[7]), sh(g[8]), sw(g[9]),
        pt(g[10]), pl(g[11]) {}
  size_t inSize() const { return n * h * w * c; }
  size_t outSize() const { return n * oh * ow * c; }
};

napi_value maxPool(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 3);
  Pool g(ints(env, a[2], 12));
  const float* x = floats(env, a[0], g.inSize(), "x");
  float* y = floats(env, a[1], g.outSize(), "y");
  const float lowest = -std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(static) if (g.outSize() >= kParallelAbove)
  for (long long b = 0; b < g.n; b++)
    for (long long r = 0; r < g.oh; r++)
      for (long long q = 0; q < g.ow; q++) {
        float* out = y + ((b * g.oh + r) * g.ow + q) * g.c;
        for (long long d = 0; d < g.c; d++) out[d] = lowest;
        for (long long i = std::max(0LL, r * g.sh - g.pt); i < std::min(g.h, r * g.sh - g.pt + g.kh); i++)
          for (long long j = std::max(0LL, q * g.sw - g.pl); j < std::min(g.w, q * g.sw - g.pl + g.kw); j++) {
            const float* in = x + ((b * g.h + i) * g.w + j) * g.c;
            for (long long d = 0; d < g.c; d++)
              if (in[d] > out[d]) out[d] = in[d];
          }
      }
  return nullptr;
}

// dx: each output's gradient goes to the position tfjs's forward picked.
napi_value maxPoolBackward(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 4);
  Pool g(ints(env, a[3], 12));
  const float* dy = floats(env, a[0], g.outSize(), "dy");
  const float* x = floats(env, a[1], g.inSize(), "x");
  float* dx = floats(env, a[2], g.inSize(), "dx");
  std::memset(dx, 0, g.inSize() * sizeof(float));
  const float lowest = -std::numeric_limits<float>::infinity();
  // Parallel over the batch only: windows of one image overlap, so their updates must not race.
#pragma omp parallel if (g.inSize() >= kParallelAbove)
  {
    std::vector<float> best(g.c);
    std::vector<long long> where(g.c);
#pragma omp for schedule(static)
    for (long long b = 0; b < g.n; b++)
      for (long long r = 0; r < g.oh; r++)
        for (long long q = 0; q < g.ow; q++) {
          for (long long d = 0; d < g.c; d++) {
            best[d] = lowest;
            where[d] = -1;
          }
          for (long long i = std::max(0LL, r * g.sh - g.pt); i < std::min(g.h, r * g.sh - g.pt + g.kh); i++)
            for (long long j = std::max(0LL, q * g.sw - g.pl); j < std::min(g.w, q * g.sw - g.pl + g.kw); j++) {
              const long long base = ((b * g.h + i) * g.w + j) * g.c;
              for (long long d = 0; d < g.c; d++)
                if (x[base + d] > best[d]) {
                  best[d] = x[base + d];
                  where[d] = base + d;
                }
            }
          const float* grad = dy + ((b * g.oh + r) * g.ow + q) * g.c;
          for (long long d = 0; d < g.c; d++)
            if (where[d] >= 0) dx[where[d]] += grad[d];
        }
  }
  return nullptr;
}

// Adam's moments and update in one pass (cmkg's ScaleByAdam): (g, mu, nu, u, mu', nu', b1, b2, eps, c1, c2).
napi_value scaleByAdam(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 11);
  const size_t n = lengthOf(env, a[0], "input");
  const float* g = floats(env, a[0], n, "g");
  const float* mu = floats(env, a[1], n, "mu");
  const float* nu = floats(env, a[2], n, "nu");
  float* u = floats(env, a[3], n, "update");
  float* m2 = floats(env, a[4], n, "mu'");
  float* v2 = floats(env, a[5], n, "nu'");
  const double b1 = number(env, a[6]), b2 = number(env, a[7]);
  const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2), ob1 = static_cast<float>(1 - b1),
              ob2 = static_cast<float>(1 - b2), eps = static_cast<float>(number(env, a[8])),
              c1 = static_cast<float>(number(env, a[9])), c2 = static_cast<float>(number(env, a[10]));
  const long long count = static_cast<long long>(n);
  forEach(count, [&](long long i) {
    const float m = mu[i] * fb1 + g[i] * ob1;
    const float v = nu[i] * fb2 + (g[i] * g[i]) * ob2;
    m2[i] = m;
    v2[i] = v;
    u[i] = (m / c1) / (std::sqrt(v / c2) + eps);
  });
  return nullptr;
}

// Sums over every axis but the last: out[j] = Σ_r x[r·c + j] for the c channels (c = 1: the sum of
// everything), in float64 like the JS loop it replaces. The rows are cut into fixed chunks whose
// partial sums are added in chunk order, so the result does not depend on the thread count.
constexpr long long kSumChunk = 1 << 14;

double* doubles(napi_env env, napi_value v, size_t want, const char* name) {
  Typed t;
  if (!typed(env, v, t) || t.type != napi_float64_array || t.length != want)
    throw Fail{std::string(name) + ": expected a Float64Array of " + std::to_string(want)};
  return static_cast<double*>(t.data);
}

napi_value sumRows(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 2);
  const size_t n = lengthOf(env, a[0], "x");
  const float* x = floats(env, a[0], n, "x");
  const size_t m = lengthOf(env, a[1], "out");
  double* out = doubles(env, a[1], m, "out");
  const long long c = static_cast<long long>(m);
  if (c == 0 || n % m != 0)
    throw Fail{"sumRows: " + std::to_string(n) + " values are no whole number of rows of " + std::to_string(m)};
  const long long rows = static_cast<long long>(n) / c;
  const long long perChunk = std::max(1LL, kSumChunk / c);
  const long long chunks = (rows + perChunk - 1) / perChunk;
  std::vector<double> part(static_cast<size_t>(chunks * c), 0.0);
#pragma omp parallel for schedule(static) if (static_cast<long long>(n) >= kParallelAbove)
  for (long long k = 0; k < chunks; k++) {
    double* acc = part.data() + k * c;
    const long long lo = k * perChunk, hi = std::min(rows, lo + perChunk);
    if (c == 1) {
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (long long r = lo; r < hi; r++) s += x[r];
      acc[0] = s;
    } else {
      for (long long r = lo; r < hi; r++) {
        const float* row = x + r * c;
#pragma omp simd
        for (long long j = 0; j < c; j++) acc[j] += row[j];
      }
    }
  }
  for (long long j = 0; j < c; j++) out[j] = 0.0;
  for (long long k = 0; k < chunks; k++)
    for (long long j = 0; j < c; j++) out[j] += part[k * c + j];
  return nullptr;
}

// oneDNN's OpenMP thread count (the caller's --threads, like onnxruntime's intra-op threads).
napi_value setThreads(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 1);
  const int n = static_cast<int>(number(env, a[0]));
  if (n < 1) throw Fail{"threads must be positive"};
  omp_set_num_threads(n);
  return nullptr;
}

// The element count from which elementwise loops use every OpenMP thread.
napi_value setParallelAbove(napi_env env, napi_callback_info info) {
  auto a = args(env, info, 1);
  const double n = number(env, a[0]);
  if (!(n >= 0)) throw Fail{"parallelAbove must be a non-negative element count"};
  kParallelAbove = static_cast<long long>(n);
  return nullptr;
}

}  // namespace

NAPI_MODULE_INIT() {
  const napi_property_descriptor fns[] = {
      {"convForward", nullptr, guarded<convForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"convBackwardData", nullptr, guarded<convBackwardData>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"convBackwardWeights", nullptr, guarded<convBackwardWeights>, nullptr, nullptr, nullptr, napi_default,
       nullptr},
      {"batchNormForward", nullptr, guarded<batchNormForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormBackward", nullptr, guarded<batchNormBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, guarded<elementwiseBinary>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, guarded<elementwiseUnary>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"relu", nullptr, guarded<relu>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reluBackward", nullptr, guarded<reluBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPool", nullptr, guarded<maxPool>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolBackward", nullptr, guarded<maxPoolBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"scaleByAdam", nullptr, guarded<scaleByAdam>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumRows", nullptr, guarded<sumRows>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, guarded<setThreads>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setParallelAbove", nullptr, guarded<setParallelAbove>, nullptr, nullptr, nullptr, napi_default,
       nullptr},
      {"version", nullptr, version, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(fns) / sizeof(fns[0]), fns);
  return exports;
}
