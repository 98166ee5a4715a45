// Package iidtrust ships AWS's public certificates for instance identity
// document signatures, one PEM file per region, so the coordinator's tests,
// Packer and Terraform read the same bytes. <region>.pem is the RSA
// certificate for /latest/dynamic/instance-identity/signature;
// <region>-rsa2048.pem is the RSA-2048 one for /rsa2048 (PKCS7).
//
// The files are copied from AWS's EC2 user guide and must never be edited by
// hand or generated: a certificate here is trusted to vouch for instances.
// README.md says where each came from and how to add a region.
package iidtrust
