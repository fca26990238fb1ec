// Symbolic reverse-mode differentiation of formulas: the gradient of <F, g> with respect to
// a variable is built as new nodes of the same Graph (so shared sub-expressions stay shared),
// from the derivative written on each row of the operation table (ops.cpp), through the
// rewrite rules (simplify.cpp).
#pragma once
#include "ast.h"

namespace rkeops {

// Node computing d<F, g>/dv, of v's dimension; `v` is a Var node, `g` has F's dimension (or
// dimension 1: then it multiplies every component). g is an input of the gradient: it is not
// differentiated even when it depends on v (KeOps's Grad). Throws UserError("formula") when F
// uses an operation with no derivative, UserError("dimension") for a g of another dimension.
int gradient(Graph& g, int f, int v, int gin);

// Directional derivative dF/dv . dv (dv has v's dimension; the result has F's dimension).
int directional(Graph& g, int f, int v, int dv);
// Sum of the second derivatives of the scalar F with respect to each coordinate of v.
int laplacian(Graph& g, int f, int v);
// Sum over k of dF_k/dv_k (F and v of the same dimension).
int divergence(Graph& g, int f, int v);
// The Jacobian [dF_k/dv_l], row-major (dim F x dim v).
int grad_matrix(Graph& g, int f, int v);

// The adjoint of argument k of node `id` given the adjoint `go` of its output, from the
// operation's derivative template (-1 for none); exposed for the tests.
int arg_adjoint(Graph& g, int id, int k, int go);

}  // namespace rkeops
