package check

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

func pathContext(dir string) *hcl.EvalContext {
	return &hcl.EvalContext{Variables: map[string]cty.Value{
		"path": cty.ObjectVal(map[string]cty.Value{
			"module": cty.StringVal(dir),
			"root":   cty.StringVal(dir),
			"cwd":    cty.StringVal(dir),
		}),
	}}
}
