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

int bspline_dim(const std::vector<int>& dims, const std::vector<int>& params, std::string* why);
void emit_bspline(Emitter& e, int id);
int bspline_adjoint(Graph& g, int id, int k, int go);

}  // namespace rkeops
