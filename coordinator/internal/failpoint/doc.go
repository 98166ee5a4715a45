// Package failpoint lets multi-process tests crash the coordinator at exact
// points, such as between committing a decision and applying it:
//
//	SHOAL_FAILPOINT=scaler.after-commit=exit
//
// Failpoints act only in binaries built with `-tags failpoints`; in every
// other build Inject is a no-op and the environment is never read, so a
// production node cannot be crashed by a stray variable.
package failpoint
