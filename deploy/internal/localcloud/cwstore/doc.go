// Package cwstore is the local cloud's CloudWatch model: stored datapoints,
// their aggregation into periods, and metric alarms evaluated against them
// the way CloudWatch does (EvaluationPeriods, DatapointsToAlarm,
// ComparisonOperator, TreatMissingData, state reasons and history).
//
// It is pure: it never reads a clock and never does I/O. Callers pass the
// evaluation time, which is what lets tests drive alarms with an injected
// clock. It must never be used as a metrics database for anything but the
// local cloud: it keeps a bounded, in-memory window only.
package cwstore
