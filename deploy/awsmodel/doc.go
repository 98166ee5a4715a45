// Package awsmodel is the one implementation of the EC2 Auto Scaling rules
// that AWS documents for target tracking and step scaling: the alarms a
// target tracking policy creates, how an alarm's datapoint turns into a new
// desired capacity (proportional scale-out that counts warming instances,
// conservative scale-in), and how step adjustments apply.
//
// Both the local cloud (deploy/internal/localcloud) and the simulator
// (coordinator/internal/simulate) import it, so the AWS baseline that Shoal
// is compared with and the AWS stand-in it runs against cannot drift apart.
//
// It must stay pure (no clock, no I/O, no CloudWatch store) and must never
// import anything of Shoal's own: it models AWS, not Shoal. Every constant
// cites the AWS page it comes from, or says "assumed" and why.
package awsmodel
