// Package view is the one place where coordinator state becomes JSON for
// operators and scripts, and where that JSON becomes state again (so that
// `fleet get -o json` output can be fed back, e.g. to `simulate --policy`).
// Keys are snake_case and enum values are the vocabulary words of
// ARCHITECTURE.md (in_service, applied, retryable...). It never talks to the
// network and holds no state.
package view
