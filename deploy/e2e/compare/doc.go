// Package compare holds the multi-process test of `shoal-demo --compare
// aws`: a short profile of the side-by-side run of Shoal and the local
// cloud's AWS target tracking (build tag multiprocess; needs SHOAL_BIN).
package compare
