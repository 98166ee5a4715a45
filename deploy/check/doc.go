// Package check holds the offline checks of deploy/'s AWS artefacts, run by
// `go test` in `make test` with no AWS access: Terraform and Packer parse and
// are canonical, every variable, local, module and file they reference
// exists, each IAM role's policy (the coordinator's and the operator's)
// grants exactly the operations its code lists, the systemd units parse and
// need no per-cluster edits, and the coordinator's secrets travel from SSM to
// its serve flags by a path that holds together. Its exported helpers read units and their environment files for the
// multi-process check in deploy/e2e, which runs each ExecStart binary.
//
// It must never call AWS or need a Terraform or Packer binary: everything is
// checked through hashicorp/hcl/v2 and the repository's own files.
package check
