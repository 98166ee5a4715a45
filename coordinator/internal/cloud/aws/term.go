package aws

import (
	"context"
	"strconv"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

// TermMiddleware sets cloud.TermHeader on every request whose context
// carries a leadership term (cloud.WithTerm). It runs in the build step,
// before signing and before the retry loop, so every attempt of a call
// carries the term of the leadership that made it.
func TermMiddleware() func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Build.Add(middleware.BuildMiddlewareFunc("ShoalTerm",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				if term, ok := cloud.TermFrom(ctx); ok {
					if req, ok := in.Request.(*smithyhttp.Request); ok {
						req.Header.Set(cloud.TermHeader, strconv.FormatUint(term, 10))
					}
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
	}
}
