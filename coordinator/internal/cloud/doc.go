// Package cloud is the small interface between Shoal and the cloud it scales:
// exactly the Auto Scaling and EC2 operations the scaler, the lifecycle-hook
// watcher and the bootstrap need, expressed in Shoal's own structs, plus the
// classification of cloud errors into retryable and fatal.
//
// It must never import an SDK: implementations (cloud/aws) translate to and
// from SDK types, so the scaler's tests run on a hand-written fake
// (cloud/cloudtest) and a second cloud would not change the scaler. It does
// no maths and takes no decisions.
package cloud
