// TensorDot (and Kron, parsed into a TensorDot) and BSpline: the pieces of their rows in the
// operation table (ops.cpp), implemented in ops_tensor.cpp.
#pragma once
#include <string>
#include <vector>

namespace rkeops {

class Emitter;
class Graph;

int tensordot_dim(const std::vector<int>& dims, const std::vector<int>& params, std::string* why);
void emit_tensordot(Emitter& e, int id);
int tensordot_adjoint(Graph& g, int id, int k, int go);
// The TensorDot parameters of Kron(a, b, shape_a, shape_b) (shapes with as many axes): no
// contraction, output axes interleaved a0, b0, a1, b1, ...
std::vector<int> kron_params(const std::vector<int>& shape_a, const std::vector<int>& shape_b);

int bspline_dim(const std::vector<int>& dims, const std::vector<int>& params, std::string* why);
void emit_bspline(Emitter& e, int id);
int bspline_adjoint(Graph& g, int id, int k, int go);

}  // namespace rkeops
