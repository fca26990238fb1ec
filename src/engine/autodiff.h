// Symbolic reverse-mode differentiation of formulas: the gradient of <F, g> with respect to
// a variable is built as new nodes of the same Graph (so shared sub-expressions stay shared).
#pragma once
#include "ast.h"

namespace rkeops {

// Node computing d<F, g>/dv, of v's dimension; `v` is a Var node, `g` has F's dimension.
// Throws UserError("formula") when F uses an operation with no derivative.
int gradient(Graph& g, int f, int v, int gin);

// Directional derivative of F along dv (dv has v's dimension).
int directional(Graph& g, int f, int v, int dv);
// Sum of the second derivatives of the scalar F with respect to each coordinate of v.
int laplacian(Graph& g, int f, int v);
// Sum over k of dF_k/dv_k (F and v of the same dimension).
int divergence(Graph& g, int f, int v);

}  // namespace rkeops
