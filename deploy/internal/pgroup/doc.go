// Package pgroup inspects and ends process groups through /proc.
//
// A process group is gone when none of its members runs. Members that have
// exited but are not yet reaped (zombies, often re-parented to init) count as
// gone: they run nothing, and when they are reaped depends on init, not on
// whoever killed them. kill(-pgid, 0) succeeds on such a group, so it must
// not be the test for "gone".
//
// Linux only; it never signals anything but the group it is given, and
// refuses group ids 0 and -1 (the caller's own group, everyone).
package pgroup
