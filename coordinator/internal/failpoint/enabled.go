//go:build failpoints

package failpoint

func init() { enabled = true }
